"""Running a trained model: build it from a checkpoint, feed it batches of lines, decode the output.

Two backends give the same per-line log-probabilities (:mod:`htr.runtime`): PyTorch (:class:`LoadedModel`, from
a ``.pt`` checkpoint) and onnxruntime (:class:`OnnxModel`, from a ``.onnx`` file written by ``python -m
htr.export``, or exported on the fly from a ``.pt`` checkpoint and cached next to it as ``CKPT.onnx``, see
:func:`htr.export.onnx_for_checkpoint`). PyTorch is imported only when the torch backend is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from htr.decode import DecodeConfig, Hypothesis, make_decoder
from htr.errors import CheckpointError, HTRError
from htr.runtime import (
    DEFAULT_MODEL,
    DEFAULT_ONNX,
    LoadedModel,
    OnnxModel,
    forward_log_probs,
    lines_to_batch,
    load_torch,
    physical_cores,
    resolve_checkpoint,
)

if TYPE_CHECKING:
    import torch

__all__ = [  # with what htr.runtime offers, so that callers need one import
    "BACKENDS", "DEFAULT_MODEL", "DEFAULT_ONNX", "LoadedModel", "OnnxModel", "forward_log_probs", "line_log_probs",
    "lines_to_batch", "load_model", "load_onnx", "load_torch", "physical_cores", "recognize_lines",
    "resolve_checkpoint",
]  # fmt: skip

BACKENDS = ("torch", "onnxruntime")


def load_model(
    path: str | Path, device: str | torch.device = "cpu", backend: str | None = None
) -> LoadedModel | OnnxModel:
    """Load a model for inference; ``"default"`` names the model shipped with htr.

    ``backend`` is ``"torch"`` or ``"onnxruntime"``; by default onnxruntime for a ``.onnx`` file and for the
    default model on the CPU (its export ships with it), else torch. onnxruntime with a ``.pt`` checkpoint exports
    it first (cached as ``CKPT.onnx`` next to it when possible).
    """
    if str(path) == "default" and backend is None and str(device).split(":")[0] == "cpu" and DEFAULT_ONNX.is_file():
        return OnnxModel(DEFAULT_ONNX)
    path = resolve_checkpoint(path)
    backend = backend or ("onnxruntime" if path.suffix == ".onnx" else "torch")
    if backend not in BACKENDS:
        raise HTRError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "onnxruntime":
        return load_onnx(path, device)
    return load_torch(path, device)


def load_onnx(path: Path, device: str | torch.device = "cpu") -> OnnxModel:
    """An :class:`OnnxModel` from a ``.onnx`` file, or from a ``.pt`` checkpoint exported (and cached) first."""
    if str(device).split(":")[0] != "cpu":
        raise HTRError(f"the onnxruntime backend runs on the CPU, not {device}; use the torch backend for it")
    if not path.is_file():
        raise CheckpointError("model file not found", path)
    if path.suffix == ".onnx":
        return OnnxModel(path)
    from htr.export import onnx_for_checkpoint  # here: it imports torch and onnx

    return OnnxModel(onnx_for_checkpoint(path), path=path)


def line_log_probs(
    loaded: LoadedModel | OnnxModel, arrays: Sequence[np.ndarray], batch_size: int = 16
) -> list[np.ndarray]:
    """Per-line log-probabilities (T_i, C) of preprocessed lines, batched by similar width; in input order."""
    order = sorted(range(len(arrays)), key=lambda i: arrays[i].shape[1])
    results: list[np.ndarray | None] = [None] * len(arrays)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = lines_to_batch([arrays[i] for i in idx])
        for i, lp in zip(idx, loaded.log_probs(batch["images"], batch["widths"]), strict=True):
            results[i] = lp
    return results  # type: ignore[return-value]


def recognize_lines(
    loaded: LoadedModel | OnnxModel,
    arrays: Sequence[np.ndarray],
    decode_cfg: DecodeConfig | None = None,
    batch_size: int = 16,
    decoder: Any = None,
) -> list[Hypothesis]:
    """Recognize preprocessed lines; results in input order."""
    decoder = decoder or make_decoder(decode_cfg or DecodeConfig(), loaded.charset.labels)
    return [decoder.decode(lp) for lp in line_log_probs(loaded, arrays, batch_size)]
