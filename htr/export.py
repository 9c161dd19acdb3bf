"""``python -m htr.export CHECKPOINT OUT.onnx``: the model as an ONNX file that onnxruntime runs on its own.

The graph takes ``images`` float32 (N, 1, H, W), preprocessed lines padded on the right with 0, and ``widths``
int64 (N,); it gives ``log_probs`` float32 (T, N, C) and ``lengths`` int64 (N,), the valid frames of each line.
N and W are dynamic. Preprocessing stays in Python: the charset, the preprocessing settings, the model config
and the htr version travel in the file's metadata (``metadata_props``, each value a JSON string), so
``python -m htr.recognize --checkpoint OUT.onnx`` needs nothing else. The metadata also records the file's own
checksum, checked on load (:mod:`htr.onnx_file`), and the SHA-256 of the checkpoint it came from.

Padding: the model's LSTMs run on packed sequences. The TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``; the dynamo exporter needs ``onnxscript``, which htr does not
depend on) turns ``pack_padded_sequence`` into the ``sequence_lens`` input of ONNX's ``LSTM``, so each line's
backward LSTM starts at that line's own last frame, as in PyTorch: lines of different widths may share a
batch. Every export is checked with ``onnx.checker`` and against PyTorch on a batch of lines of different
widths before it is written.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from htr import __version__
from htr.bundle import onnx_provenance
from htr.cli import run, writable_output
from htr.errors import CheckpointError, HTRError
from htr.model import CRNN
from htr.onnx_file import CHECKSUM_KEY, read_metadata, stamped
from htr.runtime import LoadedModel, OnnxModel, forward_log_probs, load_torch, resolve_checkpoint

OPSET = 17
INPUTS = ("images", "widths")
OUTPUTS = ("log_probs", "lengths")
DYNAMIC_AXES = {"images": {0: "batch", 3: "width"}, "widths": {0: "batch"}}
DYNAMIC_AXES |= {"log_probs": {0: "frames", 1: "batch"}, "lengths": {0: "batch"}}
#: Largest difference of log-probabilities between PyTorch and onnxruntime that an export may show.
TOLERANCE = 1e-3


def example_batch(model: CRNN, frames: tuple[int, ...] = (24, 15), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random lines of ``frames`` output frames each (one column short of the next frame), zero-padded."""
    s, g = model.width_stride, torch.Generator().manual_seed(seed)
    widths = torch.tensor([f * s + s - 1 for f in frames])
    images = torch.zeros(len(frames), 1, model.cfg.height, int(widths.max()))
    for i, w in enumerate(widths.tolist()):
        images[i, :, :, :w] = torch.rand(1, model.cfg.height, w, generator=g)
    return images, widths


@contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """Hold back what native code writes to stderr (fd 2) in the block; replay it only if the block fails.

    The exporter's C++ side warns that ``prim::PackPadded`` has no shape inference; the exported graph is
    checked instead (``onnx.checker`` and :func:`check_against_torch`).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def to_onnx(loaded: LoadedModel, metadata: dict[str, Any] | None = None) -> onnx.ModelProto:
    """Export ``loaded``'s model with its charset, preprocessing and config as metadata; checked, not written."""
    model = copy.deepcopy(loaded.model).cpu().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), native_stderr_quiet():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation, the LSTM batch-size caution
        torch.onnx.export(
            model, example_batch(model), buf, input_names=list(INPUTS), output_names=list(OUTPUTS),
            dynamic_axes=DYNAMIC_AXES, opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    proto = onnx.load_from_string(buf.getvalue())
    halve_exact_weights(proto)
    onnx.helper.set_model_props(proto, loaded.bundle.onnx_metadata(**(metadata or {})))
    onnx.checker.check_model(proto, full_check=True)
    check_against_torch(model, proto)
    for key, value in stamped(proto.SerializeToString()).items():  # last: it covers all of the above
        proto.metadata_props.add(key=key, value=value)
    return proto


def halve_exact_weights(proto: onnx.ModelProto, min_size: int = 1024) -> int:
    """Store each float32 weight whose every value is exact in float16 as float16, with a ``Cast`` back to
    float32 in front of the graph; return how many. Lossless by construction, so the file shrinks without the
    model changing: the shipped checkpoint keeps its weights in float16 (scripts/ship_model.py), so its export
    halves. onnxruntime folds the casts once when it builds the session (constant folding, on by default), so
    inference runs on the same float32 weights as before. Weights under ``min_size`` values are left alone."""
    graph = proto.graph
    inputs = {i.name for i in graph.input}
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or init.name in inputs:
            continue
        values = onnx.numpy_helper.to_array(init)
        half = values.astype(np.float16)
        if values.size < min_size or not np.array_equal(half.astype(np.float32), values):
            continue
        name = init.name
        init.CopyFrom(onnx.numpy_helper.from_array(half, f"{name}.float16"))
        casts.append(onnx.helper.make_node("Cast", [f"{name}.float16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    return len(casts)


def check_against_torch(model: CRNN, proto: onnx.ModelProto) -> float:
    """Largest log-probability difference between PyTorch and onnxruntime on lines of three widths (batch of 3
    and one line alone); raises :class:`HTRError` above :data:`TOLERANCE`."""
    ort_model = OnnxModel(proto.SerializeToString(), threads=1)
    images, widths = example_batch(model, (31, 9, 20), seed=1)
    worst = 0.0
    for x, w in ((images, widths), (images[1:2, :, :, : int(widths[1])], widths[1:2])):
        for a, b in zip(forward_log_probs(model, x, w), ort_model.log_probs(x, w), strict=True):
            if a.shape != b.shape:
                raise HTRError(f"the ONNX export gives {b.shape[0]} frames where PyTorch gives {a.shape[0]}")
            worst = max(worst, float(np.abs(a - b).max()))
    if worst > TOLERANCE:
        raise HTRError(f"the ONNX export differs from PyTorch by {worst:.2g} in log-probability")
    return worst


def save_onnx(proto: onnx.ModelProto, path: str | Path) -> Path:
    """Write ``proto`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(proto.SerializeToString())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_checkpoint(checkpoint: str | Path) -> onnx.ModelProto:
    """The ONNX model of a PyTorch checkpoint; its metadata names the checkpoint file's SHA-256
    (``source_sha256``, what the cache is keyed on) and the SHA-256 its weights were saved with
    (``source_weights_sha256``, see :func:`htr.checkpoint.weights_sha256`)."""
    loaded = load_torch(resolve_checkpoint(checkpoint))
    return to_onnx(loaded, {"source_sha256": file_sha256(loaded.path), "source_weights_sha256": loaded.weights_sha256})


def cache_path(checkpoint: str | Path) -> Path:
    """Where :func:`onnx_for_checkpoint` keeps the export of ``checkpoint``: ``best.pt`` -> ``best.pt.onnx``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + ".onnx")


def cache_is_current(cache: Path, checkpoint: Path) -> bool:
    """Whether ``cache`` is an intact export of ``checkpoint`` as it is now, by this htr version: it records the
    checkpoint file's SHA-256 and its own checksum, and its bytes match that checksum."""
    try:
        meta, digest = read_metadata(cache.read_bytes())
        provenance = onnx_provenance(meta)
        return (
            provenance["htr_version"] == __version__
            and provenance["source_sha256"] == file_sha256(checkpoint)
            and meta.get(CHECKSUM_KEY) == json.dumps(digest)
        )
    except (OSError, ValueError):  # unreadable or damaged just means "export again"
        return False


def onnx_for_checkpoint(checkpoint: str | Path) -> Path | bytes:
    """The ONNX model of a PyTorch checkpoint for onnxruntime, exported once and cached next to it.

    The cache ``CKPT.onnx`` (e.g. ``best.pt.onnx``) is used when :func:`cache_is_current`; otherwise (another
    checkpoint, another htr version, a damaged or hand-edited file) the checkpoint is exported again and the
    cache rewritten. When the folder is not writable the export is returned as bytes and kept in memory only.
    """
    checkpoint = Path(checkpoint)
    cache = cache_path(checkpoint)
    if cache.is_file() and cache_is_current(cache, checkpoint):
        return cache
    proto = export_checkpoint(checkpoint)
    try:
        return save_onnx(proto, cache)
    except OSError:
        return proto.SerializeToString()


def main() -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m htr.export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a checkpoint (best.pt), or 'default' for the model shipped with htr")
    p.add_argument("output", help="the .onnx file to write")
    args = p.parse_args()
    if Path(args.output).suffix != ".onnx":
        raise CheckpointError("the output file name must end in .onnx", args.output)
    writable_output(args.output)  # before the export, not after it
    proto = export_checkpoint(args.checkpoint)
    save_onnx(proto, args.output)
    print(f"wrote {args.output} (opset {OPSET}, {len(proto.SerializeToString()) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    run(main)
