"""Write a generated dataset folder atomically: build it beside the target, then swap it in."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_dir_atomically(out_dir: Path, write: Callable[[Path], None], done: Callable[[], bool]) -> None:
    """Build a folder with ``write(tmp)`` in a temporary sibling of ``out_dir``, then rename it to ``out_dir``.

    An interrupted build leaves only a hidden temporary folder, never a half dataset that looks complete. If
    ``done()`` says another process finished the same dataset meanwhile, the new copy is discarded. An old
    ``out_dir`` is moved aside first and removed after the swap.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        write(tmp)
        if done():
            return
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rename(out_dir, old / out_dir.name)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
