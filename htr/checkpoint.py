"""Self-describing checkpoints: weights, charset, resolved config, version and full training state.

Checkpoints hold only tensors and plain Python values, so they load with ``torch.load(weights_only=True)``;
a file carrying pickled objects is refused. They are written to a temporary file, flushed and fsynced, then
renamed over the old one, so a crash at any point leaves the previous checkpoint intact. The SHA-256 of the
``model`` weights is stored beside them and checked on load, so a damaged file is an error, not a model that
reads garbage.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import random
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from htr import CHECKPOINT_FORMAT, __version__
from htr.errors import CheckpointError

_ZIP_MAGIC = b"PK\x03\x04"
_TMP_INFIX = ".tmp"  # a checkpoint is written to ``.NAME.tmpPID`` first, then renamed


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


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over a state dict: each entry's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` plus format/version and the checksum of its ``model`` weights atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "htr_version": __version__, **payload}
    if isinstance(payload.get("model"), dict):
        payload["weights_sha256"] = weights_sha256(payload["model"])
    tmp = path.with_name(f".{path.name}{_TMP_INFIX}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # a full disk, a quota, a vanished folder (torch.save wraps them)
        why = e.strerror if isinstance(e, OSError) and e.strerror else _first_sentence(e)
        raise CheckpointError(
            f"could not write the checkpoint ({why}{_free_space_note(path.parent)}); the previous one, if any, "
            "is intact",
            path,
        ) from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def copy_checkpoint(src: str | Path, dst: str | Path) -> None:
    """Copy a checkpoint file as :func:`save_checkpoint` writes one: through a temporary file, then renamed, so
    ``dst`` is the old file or the whole new one, never a part."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}{_TMP_INFIX}{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except OSError as e:
        raise CheckpointError(f"could not copy {src} here ({e.strerror or e})", dst) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    _fsync_dir(dst.parent)


def remove_stale_temporaries(folder: str | Path) -> None:
    """Remove the temporary files :func:`save_checkpoint` leaves when killed between writing and renaming (the
    checkpoints themselves are intact); call it where no other process is writing to ``folder``."""
    for orphan in Path(folder).glob(f".*.pt{_TMP_INFIX}*"):
        with contextlib.suppress(OSError):
            orphan.unlink()


def _free_space_note(folder: Path) -> str:
    """``', 12 MB free on the disk'`` when the disk holding ``folder`` is nearly full, else ''."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    return f", {free // 2**20} MB free on the disk" if free < 256 * 2**20 else ""


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by htr, or raise :class:`CheckpointError` saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            "checkpoint file not found" if not path.is_dir() else "is a folder, not a checkpoint", path
        )
    _check_container(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load: the checkpoint holds pickled Python objects, not only tensors and plain values"
            f"{_unsupported_global(str(e))}; htr loads checkpoints with weights_only=True",
            path,
        ) from None
    except Exception as e:  # noqa: BLE001 - torch.load raises anything on a damaged file
        raise CheckpointError(f"not a readable checkpoint, perhaps truncated ({_first_sentence(e)})", path) from None
    if not isinstance(ckpt, dict) or "format" not in ckpt or "model" not in ckpt:
        raise CheckpointError("not an htr checkpoint (no format/model entries)", path)
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint format {ckpt['format']} (htr {ckpt.get('htr_version', '?')}) is not the format "
            f"{CHECKPOINT_FORMAT} this htr {__version__} reads",
            path,
        )
    recorded = ckpt.get("weights_sha256")  # files written before htr recorded it load unchecked
    if recorded is not None and recorded != weights_sha256(ckpt["model"]):
        raise CheckpointError(
            "the weights do not match the checksum recorded when the file was written: the file is damaged", path
        )
    return ckpt


def _check_container(path: Path) -> None:
    """Refuse an empty, truncated or foreign file before torch reads it (torch.save writes a zip archive)."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"checkpoint file cannot be read ({e.strerror})", path) from None
    if not head:
        raise CheckpointError("checkpoint file is empty (0 bytes)", path)
    if head != _ZIP_MAGIC:
        raise CheckpointError("not a checkpoint: the file is not in the format torch.save writes", path)
    if not zipfile.is_zipfile(path):
        raise CheckpointError("checkpoint is truncated or damaged (its zip directory is missing)", path)


def _unsupported_global(message: str) -> str:
    """``' (GLOBAL module.Class)'`` from torch's weights-only refusal, if it names the offending object."""
    for line in message.splitlines():
        if "GLOBAL" in line:
            return f" ({line[line.index('GLOBAL') :].split(' was ')[0].strip()})"
    return ""


def _first_sentence(e: BaseException) -> str:
    """The first line of an exception message, cut at its first sentence."""
    line = (str(e).splitlines() or [type(e).__name__])[0]
    return line.split(". ")[0].rstrip(".") or type(e).__name__
