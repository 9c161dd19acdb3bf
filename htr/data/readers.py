"""Dataset readers: a TSV manifest, the IAM database, or a folder of image / ``.gt.txt`` pairs.

Every reader returns ``list[Sample]`` in a deterministic order, with texts passed through
:func:`htr.charset.normalize_text`. Problems with the input are reported as :class:`DataError` naming the file
(and the line, where there is one); nothing is dropped silently. Empty transcriptions are kept (text ``""``).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from htr.charset import normalize_text
from htr.data.pages import read_page_dataset
from htr.data.samples import Sample, check_unique
from htr.errors import DataError
from htr.imageio import IMAGE_SUFFIXES

GT_SUFFIX = ".gt.txt"
TSV_REQUIRED = ("id", "image", "text")
TSV_OPTIONAL = ("writer", "split")
IAM_STATUS_FLAGS = {"ok": (), "err": ("err",), "er": ("err",)}
_MAX_LISTED = 5


# -------------------------------------------------------------------------------------- shared helpers


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


def _listing(names: Iterable[str]) -> str:
    """The first few of ``names``, comma-separated, with '...' when there are more."""
    names = list(names)
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (", ..." if len(names) > _MAX_LISTED else "")


# ---------------------------------------------------------------------------------------- TSV manifest


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


# ------------------------------------------------------------------------------------------------- IAM


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


# ------------------------------------------------------------------------------------- folder of pairs


def read_folder(path: str | Path) -> list[Sample]:
    """Read a folder (recursively) of ``NAME.<image>`` + ``NAME.gt.txt`` pairs, sorted by id.

    The id is the image's path relative to ``path`` without its extension, with ``/`` separators. Hidden
    files and folders are ignored. Images without a transcription, or transcriptions without an image, are
    an error listing them.
    """
    path = Path(os.path.abspath(path))
    if not path.is_dir():
        raise DataError("dataset folder does not exist" if not path.exists() else "is not a folder", path)
    images, gts = _scan_pairs(path)
    _check_pairs(images, gts, path)
    if not images:
        raise DataError(f"folder holds no image + {GT_SUFFIX} pairs", path)
    return [
        Sample(id=key, image=images[key], text=normalize_text(_read_text(gts[key], "transcription")))
        for key in sorted(images)
    ]


def _scan_pairs(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Map id -> image file and id -> ``.gt.txt`` file for every non-hidden file under ``root``."""
    images: dict[str, Path] = {}
    gts: dict[str, Path] = {}
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not file.is_file():
            continue
        name = rel.as_posix()
        if name.lower().endswith(GT_SUFFIX):
            gts[name[: -len(GT_SUFFIX)]] = file
        elif file.suffix.lower() in IMAGE_SUFFIXES:
            key = name[: -len(file.suffix)]
            if key in images:
                raise DataError(f"two images for id {key!r}: {images[key].name} and {file.name}", root)
            images[key] = file
    return images, gts


def _check_pairs(images: dict[str, Path], gts: dict[str, Path], root: Path) -> None:
    """Refuse images without a transcription and transcriptions without an image."""
    lonely_images = sorted(images[k].relative_to(root).as_posix() for k in images.keys() - gts.keys())
    if lonely_images:
        raise DataError(
            f"{len(lonely_images)} image(s) have no {GT_SUFFIX} transcription: {_listing(lonely_images)}",
            root,
        )
    lonely_gts = sorted(gts[k].relative_to(root).as_posix() for k in gts.keys() - images.keys())
    if lonely_gts:
        raise DataError(
            f"{len(lonely_gts)} {GT_SUFFIX} file(s) have no image ({'/'.join(IMAGE_SUFFIXES)}): {_listing(lonely_gts)}",
            root,
        )


# -------------------------------------------------------------------------------------------- dispatch


def read_dataset(path: str | Path, split: str | None = None) -> list[Sample]:
    """Read a dataset of any supported layout, chosen by what ``path`` is.

    A ``.tsv`` file is a manifest; ``lines.txt``, or a folder holding ``lines.txt`` or ``ascii/lines.txt``,
    is IAM; a folder holding ``lines.tsv`` is a manifest; an ``.xml`` file or a folder of PAGE/ALTO XML files
    is read by :func:`htr.data.pages.read_pages`; any other folder holds image/``.gt.txt`` pairs (with
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
