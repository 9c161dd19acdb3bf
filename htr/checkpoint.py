"""Self-describing checkpoints: weights, charset, resolved config, version and full training state.

Checkpoints hold only tensors and plain Python values, so they load with ``torch.load(weights_only=True)``;
a file carrying pickled objects is refused. They are written to a temporary file, flushed and fsynced, then
renamed over the old one, so a crash at any point leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from htr import CHECKPOINT_FORMAT, __version__
from htr.errors import CheckpointError


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch random states, as plain values and tensors."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` plus format/version atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "htr_version": __version__, **payload}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by htr, or raise :class:`CheckpointError` saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint file not found", path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load: the file holds pickled objects, not an htr checkpoint ({str(e).splitlines()[0]})",
            path,
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(
            f"not a readable checkpoint, perhaps truncated ({str(e).splitlines()[0]})", path
        ) from None
    if not isinstance(ckpt, dict) or "format" not in ckpt or "model" not in ckpt:
        raise CheckpointError("not an htr checkpoint (no format/model entries)", path)
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint format {ckpt['format']} (htr {ckpt.get('htr_version', '?')}) is not the format "
            f"{CHECKPOINT_FORMAT} this htr {__version__} reads",
            path,
        )
    return ckpt
