"""The TSV manifest reader: columns ``id``, ``image``, ``text``, optional ``writer`` and ``split``.

Texts are passed through :func:`htr.charset.normalize_text`. Problems with the input are reported as
:class:`DataError` naming the file and the line; nothing is dropped silently. Empty transcriptions are kept.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from htr.charset import normalize_text
from htr.data.formats.textfile import _read_text
from htr.data.samples import Sample
from htr.errors import DataError

TSV_REQUIRED = ("id", "image", "text")
TSV_OPTIONAL = ("writer", "split")


def read_tsv(path: str | Path, split: str | None = None) -> list[Sample]:
    """Read a tab-separated manifest: columns ``id``, ``image``, ``text``, optional ``writer`` and ``split``.

    Image paths are relative to the manifest's folder and may not leave it. Quotes in texts are literal.
    With ``split``, only rows of that split are returned (the manifest must have a ``split`` column and at
    least one such row).
    """
    path = Path(path)
    text = _read_text(path, "manifest")
    if not text.strip():
        raise DataError("manifest is empty", path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows = _tsv_rows(reader, path)
    columns = _tsv_header(*next(rows), path)
    if split is not None and "split" not in columns:
        raise DataError(f"split {split!r} was asked for but the manifest has no 'split' column", path)
    root = Path(os.path.abspath(path.parent))
    samples: list[Sample] = []
    first_line: dict[str, int] = {}
    for lineno, row in rows:
        if len(row) != len(columns):
            raise DataError(f"line {lineno}: expected {len(columns)} tab-separated fields, found {len(row)}", path)
        sample = _tsv_sample(dict(zip(columns, row, strict=True)), root, lineno, path)
        if sample.id in first_line:
            raise DataError(f"line {lineno}: duplicate id {sample.id!r} (first on line {first_line[sample.id]})", path)
        first_line[sample.id] = lineno
        samples.append(sample)
    if not samples:  # a header alone: lines were lost (a truncated copy) or never written
        raise DataError("the manifest has a header but no lines", path)
    if split is not None:
        samples = _filter_split(samples, split, path)
    return samples


def _tsv_header(lineno: int, header: list[str], path: Path) -> list[str]:
    """Validate the header row and return the column names."""
    columns = [c.strip() for c in header]
    missing = [c for c in TSV_REQUIRED if c not in columns]
    if missing:
        raise DataError(
            f"line {lineno}: header lacks required column(s) {', '.join(missing)} "
            f"(found: {', '.join(repr(c) for c in columns)}; expected tab-separated id, image, text)",
            path,
        )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise DataError(f"line {lineno}: header repeats column(s) {', '.join(duplicated)}", path)
    return columns


def _tsv_rows(reader: Any, path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, fields)`` for each non-blank row of a ``csv.reader``."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"line {reader.line_num}: cannot be parsed ({e})", path) from e
        if row and (len(row) > 1 or row[0].strip()):
            yield reader.line_num, row


def _tsv_sample(fields: dict[str, str], root: Path, lineno: int, path: Path) -> Sample:
    """Build one sample from a manifest row."""
    sample_id = fields["id"].strip()
    if not sample_id:
        raise DataError(f"line {lineno}: empty id", path)
    image = _image_under(fields["image"].strip(), root, lineno, path)
    return Sample(
        id=sample_id,
        image=image,
        text=normalize_text(fields["text"]),
        writer=fields.get("writer", "").strip() or None,
        split=fields.get("split", "").strip() or None,
    )


def _image_under(rel: str, root: Path, lineno: int, path: Path) -> Path:
    """Resolve a manifest image path against ``root``, refusing one that is empty, absolute or escapes it.

    Windows separators (``lines\\a01.png``, a manifest written on Windows) are read as ``/`` unless a file of
    that very name exists. The check is made on the normalized path (``..`` collapsed) without following
    symbolic links, so a dataset whose image folder is a symlink still reads.
    """
    if not rel:
        raise DataError(f"line {lineno}: empty image path", path)
    if "\0" in rel:  # no file name holds one; the file system calls would raise ValueError
        raise DataError(f"line {lineno}: image path {rel!r} contains a NUL byte", path)
    if Path(rel).is_absolute() or rel.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", rel):
        raise DataError(f"line {lineno}: image path {rel!r} is absolute; it must be relative to the manifest", path)
    if "\\" in rel and os.sep == "/" and not _exists(root / rel):
        rel = rel.replace("\\", "/")
    image = Path(os.path.normpath(root / rel))
    if image == root or not image.is_relative_to(root):
        raise DataError(f"line {lineno}: image path {rel!r} does not name a file inside the manifest's folder", path)
    return image


def _exists(path: Path) -> bool:
    """``path.exists()``, false for a name no file can have (too long, a NUL byte) instead of an exception."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _filter_split(samples: list[Sample], split: str, path: Path) -> list[Sample]:
    """Keep the samples of ``split``; refuse a split that has none."""
    kept = [s for s in samples if s.split == split]
    if not kept:
        present = sorted({s.split for s in samples if s.split is not None})
        raise DataError(f"no rows with split {split!r} (splits present: {', '.join(present) or 'none'})", path)
    return kept
