"""Reading a dataset's text files (manifests, IAM lists, transcriptions): UTF-8 with the failing line named.

Shared by the readers of :mod:`htr.data.formats` and by :mod:`htr.data.check`.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from htr.errors import DataError


def _read_text(path: Path, what: str) -> str:
    """Read a UTF-8 file (a leading BOM is dropped), naming the line of the first invalid byte on failure."""
    if not path.exists():
        raise DataError(f"{what} does not exist", path)
    if path.is_dir():
        raise DataError(f"{what} is a directory, not a file", path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{what} cannot be read ({e.strerror})", path) from e
    data = data.removeprefix(codecs.BOM_UTF8)  # here, not by utf-8-sig: its error offsets skip the BOM
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"line {line}: {what} is not valid UTF-8 (byte 0x{data[e.start]:02x})", path) from e
