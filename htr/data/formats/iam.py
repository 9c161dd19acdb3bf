"""The IAM database reader: ``lines.txt`` (with ``forms.txt`` writers and split id lists).

Texts are passed through :func:`htr.charset.normalize_text`. Problems with the input are reported as
:class:`DataError` naming the file and the line; nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

from htr.charset import normalize_text
from htr.data.formats.textfile import _read_text
from htr.data.samples import Sample, check_unique
from htr.errors import DataError

IAM_STATUS_FLAGS = {"ok": (), "err": ("err",), "er": ("err",)}


def read_iam(path: str | Path, split: str | None = None, split_file: str | Path | None = None) -> list[Sample]:
    """Read IAM from its ``lines.txt``, or from a folder holding ``lines.txt`` or ``ascii/lines.txt``.

    Images are ``<root>/lines/a01/a01-000u/a01-000u-00.png``, root being the folder of ``lines.txt`` (its
    parent when that folder is ``ascii``). Lines marked ``err`` are kept with ``flags=("err",)``. Writers are
    taken from ``forms.txt`` next to ``lines.txt`` when present. ``split_file`` lists line or form ids, one a
    line; with only ``split``, ``<root>/splits/<split>.lst`` (or ``.txt``, or the same in ``<root>``) is used.
    """
    lines_txt = _find_iam_lines(Path(os.path.abspath(path)))
    root = lines_txt.parent.parent if lines_txt.parent.name == "ascii" else lines_txt.parent
    writers = _read_iam_writers(lines_txt.parent / "forms.txt")
    samples = [
        _iam_sample(lineno, fields, root, writers, lines_txt)
        for lineno, fields in _iam_records(_read_text(lines_txt, "IAM lines.txt"))
    ]
    if not samples:
        raise DataError("IAM lines.txt lists no lines", lines_txt)
    check_unique(samples, lines_txt)
    if split is None and split_file is None:
        return samples
    list_path = Path(split_file) if split_file is not None else _find_split_file(root, str(split))
    listed = _read_id_list(list_path)
    kept = [dataclasses.replace(s, split=split) for s in samples if s.id in listed or _iam_form(s.id) in listed]
    if not kept:
        raise DataError(f"none of the {len(listed)} ids listed matches a line of {lines_txt}", list_path)
    return kept


def _find_iam_lines(path: Path) -> Path:
    """Locate ``lines.txt`` given the file itself or a folder holding it (directly or in ``ascii/``)."""
    if path.is_dir():
        for candidate in (path / "lines.txt", path / "ascii" / "lines.txt"):
            if candidate.is_file():
                return candidate
        raise DataError("folder holds neither lines.txt nor ascii/lines.txt", path)
    if not path.exists():
        raise DataError("IAM lines.txt does not exist", path)
    return path


def _iam_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, fields)`` for each non-comment, non-blank line of an IAM list file."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield lineno, stripped.split()


def _iam_sample(lineno: int, fields: list[str], root: Path, writers: dict[str, str], path: Path) -> Sample:
    """Build one sample from a ``lines.txt`` record."""
    if len(fields) < 9:
        raise DataError(f"line {lineno}: expected at least 9 space-separated fields, found {len(fields)}", path)
    line_id, status = fields[0], fields[1]
    parts = line_id.split("-")
    if len(parts) < 3 or not all(parts):
        raise DataError(f"line {lineno}: line id {line_id!r} is not of the form a01-000u-00", path)
    if status not in IAM_STATUS_FLAGS:
        raise DataError(f"line {lineno}: segmentation result {status!r} is neither 'ok' nor 'err'", path)
    form = _iam_form(line_id)
    return Sample(
        id=line_id,
        image=root / "lines" / parts[0] / form / f"{line_id}.png",
        text=normalize_text(_iam_text(" ".join(fields[8:]))),
        writer=writers.get(form),
        flags=IAM_STATUS_FLAGS[status],
    )


def _iam_form(line_id: str) -> str:
    """Form id of an IAM line id: ``a01-000u-00`` -> ``a01-000u``."""
    return line_id.rsplit("-", 1)[0]


def _iam_text(transcription: str) -> str:
    """Decode an IAM transcription: ``|`` separates words; ``&quot;`` and ``&amp;`` are XML escapes."""
    return transcription.replace("|", " ").replace("&quot;", '"').replace("&amp;", "&")


def _read_iam_writers(forms_txt: Path) -> dict[str, str]:
    """Map form id -> writer id from IAM ``forms.txt`` (``a01-000u 000 2 prt 7 5 52 36``); empty if absent."""
    if not forms_txt.is_file():
        return {}
    writers: dict[str, str] = {}
    for lineno, fields in _iam_records(_read_text(forms_txt, "IAM forms.txt")):
        if len(fields) < 2:
            raise DataError(f"line {lineno}: expected a form id and a writer id", forms_txt)
        writers[fields[0]] = fields[1]
    return writers


def _find_split_file(root: Path, split: str) -> Path:
    """Find the id list of ``split`` under the IAM root."""
    candidates = [root / d / f"{split}{ext}" for d in ("splits", ".") for ext in (".lst", ".txt")]
    for candidate in candidates:
        if candidate.is_file():
            return Path(os.path.normpath(candidate))
    tried = ", ".join(str(c.relative_to(root)) for c in candidates)
    raise DataError(f"no list of the {split!r} split found (tried {tried}); pass split_file", root)


def _read_id_list(path: Path) -> set[str]:
    """Ids of a split list: the first word of each non-blank, non-comment line."""
    ids = {fields[0] for _, fields in _iam_records(_read_text(path, "split list"))}
    if not ids:
        raise DataError("split list is empty", path)
    return ids
