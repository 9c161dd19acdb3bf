"""Files written whole or not at all: a temporary sibling, then a rename.

A crash, a kill or a full disk mid-write then leaves the previous file (or none), never half of one. Checkpoints
have their own writer (``htr.checkpoint``: fsync, and the clean-up of temporaries a ``kill -9`` left).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from htr.errors import HTRError


def temporary_name(path: Path) -> Path:
    """The sibling that ``path`` is written to before the rename."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_whole(path: Path, write: Callable[[Path], None], what: str) -> None:
    """Call ``write(tmp)`` and rename ``tmp`` to ``path``; an ``OSError`` becomes one sentence naming ``path``.

    Raises:
        HTRError: "cannot write {what} (reason)", with the temporary file removed.
    """
    tmp = temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise HTRError(f"cannot write {what} ({e.strerror or e})", path) from None
    finally:
        tmp.unlink(missing_ok=True)


def trial_write(folder: Path) -> None:
    """Create and remove a file in ``folder``, raising the ``OSError`` if that fails.

    ``os.access`` would not do: it says yes to root on a read-only mount.
    """
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".htr-", suffix=".trial"):
        pass
