"""Progress bars: tqdm, with a usable width where the terminal reports none."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from tqdm import tqdm


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``; on a terminal that reports a size of 0 (a pseudo-terminal nobody sized, as
    under ``script`` or some job runners) tqdm prints empty bars, so the size falls back to ``$COLUMNS`` and
    ``$LINES``, or 100 x 20."""
    stream = kwargs.get("file") or sys.stderr
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, AttributeError, ValueError):
        size = None  # not a terminal: tqdm's own defaults
    if size is not None and 0 in size:
        fallback = shutil.get_terminal_size((100, 20))
        kwargs.setdefault("ncols", size.columns or fallback.columns)
        kwargs.setdefault("nrows", size.lines or fallback.lines)
    return tqdm(iterable, **kwargs)
