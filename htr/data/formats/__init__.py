"""Dataset formats: a TSV manifest, the IAM database, a folder of image / ``.gt.txt`` pairs, PAGE XML / ALTO.

Every reader returns ``list[Sample]`` in a deterministic order, with texts passed through
:func:`htr.charset.normalize_text`. Problems with the input are reported as :class:`DataError` naming the file
(and the line, where there is one); nothing is dropped silently. Empty transcriptions are kept (text ``""``).
:func:`read_dataset` picks the reader from what a path is.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from htr.data.formats.folder import read_folder
from htr.data.formats.iam import read_iam
from htr.data.formats.manifest import read_tsv
from htr.data.formats.pages import read_page_dataset
from htr.data.samples import Sample
from htr.errors import DataError

__all__ = ["read_dataset", "read_folder", "read_iam", "read_tsv"]


def read_dataset(path: str | Path, split: str | None = None) -> list[Sample]:
    """Read a dataset of any supported layout, chosen by what ``path`` is.

    A ``.tsv`` file is a manifest; ``lines.txt``, or a folder holding ``lines.txt`` or ``ascii/lines.txt``,
    is IAM; a folder holding ``lines.tsv`` is a manifest; an ``.xml`` file or a folder of PAGE/ALTO XML files
    is read by :func:`htr.data.formats.pages.read_pages`; any other folder holds image/``.gt.txt`` pairs (with
    ``split``, a page folder's or a folder of pairs' sub-folder named after the split is read).
    """
    path = Path(path)
    if not path.exists():
        raise DataError("dataset path does not exist", path)
    if path.is_file():
        if path.suffix.lower() == ".tsv":
            return read_tsv(path, split)
        if path.name == "lines.txt":
            return read_iam(path, split)
        if (pages := read_page_dataset(path, split)) is not None:
            return pages
        raise DataError("unrecognized dataset file; expected a .tsv manifest, an IAM lines.txt or a page XML", path)
    if (path / "lines.txt").is_file() or (path / "ascii" / "lines.txt").is_file():
        return read_iam(path, split)
    if (path / "lines.tsv").is_file():
        return read_tsv(path / "lines.tsv", split)
    if (pages := read_page_dataset(path, split)) is not None:
        return pages
    if split is None:
        return read_folder(path)
    if not (path / split).is_dir():
        raise DataError(f"folder of pairs has no {split!r} sub-folder for the requested split", path)
    return [dataclasses.replace(s, split=split) for s in read_folder(path / split)]
