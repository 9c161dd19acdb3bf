"""The two runtimes of a trained model, each giving the same per-line log-probabilities for a padded batch:
PyTorch (:class:`LoadedModel`, from a ``.pt`` checkpoint) and onnxruntime (:class:`OnnxModel`, from an ONNX file
written by ``python -m htr.export``). :mod:`htr.inference` chooses between them and decodes; :mod:`htr.export`
builds on :class:`LoadedModel` and checks its exports with :class:`OnnxModel`.

PyTorch is imported only when the torch backend is used: importing it takes about 1.5 s, three quarters of a cold
``python -m htr.recognize`` of one line, and the onnxruntime backend does not need it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from htr.bundle import ModelBundle
from htr.charset import Charset
from htr.errors import CheckpointError, HTRError
from htr.onnx_file import checked_bytes
from htr.preprocess.pipeline import PreprocessConfig

if TYPE_CHECKING:
    import torch

    from htr.model import CRNN

DEFAULT_MODEL = Path(__file__).parent / "pretrained" / "default.pt"
#: Its ONNX export (written by scripts/ship_model.py, the cache name htr.export.onnx_for_checkpoint uses).
DEFAULT_ONNX = DEFAULT_MODEL.with_name(DEFAULT_MODEL.name + ".onnx")


@dataclass
class LoadedModel:
    """A model ready for inference with everything needed to feed it and read its output."""

    model: CRNN
    bundle: ModelBundle
    path: Path

    @property
    def charset(self) -> Charset:
        return self.bundle.charset

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.bundle.preprocess

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config of the run that trained the model."""
        return self.bundle.config

    @property
    def weights_sha256(self) -> str | None:
        """The SHA-256 recorded with the checkpoint's weights (:func:`htr.checkpoint.weights_sha256`), if any."""
        return self.bundle.weights_sha256

    def log_probs(self, images: np.ndarray | torch.Tensor, widths: np.ndarray | torch.Tensor) -> list[np.ndarray]:
        """Per-line log-probabilities, each (T_i, C) float32, for a padded batch (see :func:`lines_to_batch`)."""
        import torch

        return forward_log_probs(self.model, torch.as_tensor(images), torch.as_tensor(widths))


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads counted once)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topo / "physical_package_id").read_text(), (topo / "core_id").read_text()))
        except OSError:
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))


def training_threads(requested: int) -> int:
    """PyTorch's CPU threads for training: ``requested``, or for 0 every physical core but one (at least one),
    shared among the processes torchrun starts on this machine.

    With a thread on every core, OpenMP's threads spin-wait for each other, so training slows several-fold as soon
    as any other process wants a core; one core fewer keeps its speed (measured in docs/results.md, "Training
    threads"). A dedicated machine may set ``train.threads`` to all of its cores.
    """
    if requested > 0:
        return requested
    local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, (physical_cores() - 1) // local_processes)


class OnnxModel:
    """An exported model run by onnxruntime on the CPU, with what :class:`LoadedModel` offers besides ``model``:
    ``charset``, ``preprocess``, ``config`` (``{"model": ...}``), ``path`` and :meth:`log_probs`.

    The file's recorded checksum is checked first (:mod:`htr.onnx_file`). The session runs nodes sequentially,
    each on ``threads`` intra-op threads (default: one per physical core).
    """

    def __init__(self, source: str | Path | bytes, path: str | Path | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort  # only this backend needs it

        self.path = Path(path if path is not None else source if not isinstance(source, bytes) else "<memory>")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or physical_cores()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3  # errors only
        data, meta = checked_bytes(source, self.path)  # a damaged file is an error, not a model reading garbage
        try:
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's errors derive from Exception only
            raise CheckpointError(f"not a readable ONNX model ({str(e).splitlines()[0]})", self.path) from None
        self.bundle = ModelBundle.from_onnx_metadata(meta, self.path)
        self.charset, self.preprocess, self.config = self.bundle.charset, self.bundle.preprocess, self.bundle.config

    def log_probs(self, images: torch.Tensor | np.ndarray, widths: torch.Tensor | np.ndarray) -> list[np.ndarray]:
        """Per-line log-probabilities, each (T_i, C) float32, for a padded batch (see :func:`lines_to_batch`)."""
        feed = {"images": np.asarray(images, dtype=np.float32), "widths": np.asarray(widths, dtype=np.int64)}
        log_probs, lengths = self.session.run(["log_probs", "lengths"], feed)  # (T, N, C), (N,)
        return [log_probs[: int(n), i] for i, n in enumerate(lengths)]


def resolve_checkpoint(path: str | Path) -> Path:
    """``path``, or the model shipped with htr for ``"default"``."""
    if str(path) != "default":
        return Path(path)
    if not DEFAULT_MODEL.is_file():
        raise CheckpointError(
            "no default model is installed with this copy of htr; train one with `python -m htr.train` "
            "and pass --checkpoint runs/<run>/best.pt"
        )
    return DEFAULT_MODEL


def load_torch(path: Path, device: str | torch.device = "cpu") -> LoadedModel:
    """A :class:`LoadedModel` from a checkpoint written by ``python -m htr.train``."""
    from htr.checkpoint import load_checkpoint
    from htr.model import CRNN

    if path.suffix == ".onnx":
        raise CheckpointError("an ONNX model runs with the onnxruntime backend, not torch", path)
    ckpt = load_checkpoint(path)
    bundle = ModelBundle.from_checkpoint(ckpt, path)
    try:
        model = CRNN(bundle.model, len(bundle.charset))
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(
            f"the checkpoint does not match this htr's model ({str(e).splitlines()[0]})", path
        ) from None
    try:
        model.to(device).eval()
    except (RuntimeError, AssertionError, ValueError) as e:  # no CUDA, no such device, a malformed name
        raise HTRError(f"cannot run the model on device {str(device)!r} ({str(e).splitlines()[0]})") from None
    return LoadedModel(model, bundle, Path(path))


def lines_to_batch(arrays: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Preprocessed (H, W) line arrays (uint8 0-255 or float 0-1) as a batch padded on the right with background
    0, as training's ``collate`` pads: ``images`` float32 (N, 1, H, W) and ``widths`` int64 (N,)."""
    widths = np.array([a.shape[1] for a in arrays], dtype=np.int64)
    images = np.zeros((len(arrays), 1, arrays[0].shape[0], int(widths.max())), dtype=np.float32)  # (N, 1, H, W)
    for i, a in enumerate(arrays):
        images[i, 0, :, : a.shape[1]] = a / np.float32(255.0) if a.dtype == np.uint8 else a
    return {"images": images, "widths": widths}


def forward_log_probs(model: CRNN, images: torch.Tensor, widths: torch.Tensor) -> list[np.ndarray]:
    """Per-line log-probabilities, each (T_i, C) float32 on the CPU, for a padded batch."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        log_probs, lengths = model(images.to(device, non_blocking=True), widths.to(device))  # (T, N, C)
    log_probs = log_probs.float().cpu().numpy()
    return [log_probs[: int(n), i] for i, n in enumerate(lengths.tolist())]
