"""Convert any dataset htr reads (PAGE/ALTO pages, IAM, a manifest, pairs) into the Copiste layout.

The output is ``OUT_DIR/lines/<id>.png`` plus ``OUT_DIR/lines.tsv`` (``id image text writer split``), built in
a temporary sibling folder and renamed into place at the end, so an interrupted conversion leaves nothing
half-written. Splits are kept from the source, or made writer-aware: whole writers (whole pages, or IAM forms,
when writers are unknown) go to one split.

A page that cannot be used (a missing or damaged page image, unreadable XML, bad coordinates) or a line whose
image cannot be read is left out, not the whole conversion: the rest is written, and the pages and lines left
out are listed with the reason in ``OUT_DIR/left_out.tsv`` (:data:`LEFT_OUT_FILE`). Only when nothing at all
can be converted does :func:`convert` raise.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from htr.data.formats import read_dataset
from htr.data.formats.iam import _find_iam_lines, _find_split_file, read_iam
from htr.data.formats.pages import iter_pages, page_xml_files, safe_name
from htr.data.samples import Sample
from htr.data.splits import assign_splits
from htr.errors import DataError, HTRError, ImageError
from htr.imageio import load_image
from htr.progress import progress

#: Sub-folders read as splits when a source folder holds nothing else readable (pairs or page folders).
SPLIT_NAMES = ("train", "val", "valid", "validation", "dev", "test")
TSV_HEADER = "id\timage\ttext\twriter\tsplit"
#: The list of pages and lines left out, in OUT_DIR (written only when there are some).
LEFT_OUT_FILE = "left_out.tsv"
#: Progress bars are shown (on a terminal) from this many lines on.
PROGRESS_FROM = 200


@dataclass(frozen=True)
class SourceLine:
    """A sample with the group that must stay in one split: its writer, else its page/form, else itself."""

    sample: Sample
    group: str


@dataclass(frozen=True)
class LeftOut:
    """A page or line the conversion passed over: ``kind`` "page" (``name``: its XML, relative to the source
    folder) or "line" (``name``: its id), and why (one sentence)."""

    kind: str
    name: str
    reason: str


def read_source(src: str | Path, lines_dir: Path, left_out: list[LeftOut] | None = None) -> list[SourceLine]:
    """Samples of ``src`` with their split groups. Page crops are written straight into ``lines_dir``.

    With ``left_out``, pages that cannot be used are appended to it and passed over (see :func:`iter_pages`),
    unless no line at all is left.
    """
    src = Path(src)
    if not src.exists():
        raise DataError("source does not exist", src)
    failed: list[tuple[Path, DataError]] | None = [] if left_out is not None else None
    if (src.is_file() and src.suffix.lower() == ".xml") or (
        src.is_dir() and not _is_manifest_or_iam(src) and page_xml_files(src)
    ):
        lines = _page_lines(src, lines_dir, failed)
    elif src.is_dir() and not _is_manifest_or_iam(src) and _split_folders(src):
        lines = [line for name in _split_folders(src) for line in _split_lines(src, name, lines_dir, failed)]
    elif _is_iam(src):
        return [SourceLine(s, s.writer or f"form:{s.id.rsplit('-', 1)[0]}") for s in _read_iam_with_splits(src)]
    else:
        return [SourceLine(s, s.writer or s.id) for s in read_dataset(src)]
    if failed and left_out is not None:
        _leave_out_pages(src, lines, failed, lines_dir, left_out)
    return lines


def _page_lines(src: Path, lines_dir: Path, failed: list[tuple[Path, DataError]] | None) -> list[SourceLine]:
    """The lines of a page folder or XML, grouped by writer, else by page; pages that fail go to ``failed``
    (when it is a list) instead of raising."""
    return [
        SourceLine(s, s.writer or f"page:{doc.xml.stem}")
        for doc, samples in iter_pages(src, cache_dir=lines_dir, left_out=failed)
        for s in samples
    ]


def _split_lines(
    src: Path, name: str, lines_dir: Path, failed: list[tuple[Path, DataError]] | None
) -> list[SourceLine]:
    """The lines of the split sub-folder ``name``: pages (as :func:`_page_lines`) or pairs."""
    if page_xml_files(src / name):
        return [SourceLine(replace(line.sample, split=name), line.group) for line in _page_lines(src / name,
                lines_dir, failed)]  # fmt: skip
    return [SourceLine(s, s.writer or s.id) for s in read_dataset(src, name)]


def _leave_out_pages(
    src: Path, lines: list[SourceLine], failed: list[tuple[Path, DataError]], lines_dir: Path, left_out: list[LeftOut]
) -> None:
    """List the pages that failed in ``left_out`` and remove the crops they wrote before their error; with no
    line left, raise instead (the page's own error when there was one page)."""
    if not lines:
        if len(failed) == 1:
            raise failed[0][1]
        raise DataError(f"none of its {len(failed)} pages could be converted; the first: {failed[0][1]}", src)
    folder = src if src.is_dir() else src.parent
    left_out += [LeftOut("page", str(xml.relative_to(folder)), _reason(e, xml)) for xml, e in failed]
    keep = {line.sample.image.name for line in lines}
    for crop in lines_dir.iterdir():
        if crop.name not in keep:
            crop.unlink()


def _reason(error: HTRError, name: Path) -> str:
    """The error's sentence without the leading file name that the left-out list shows in its own column."""
    text = str(error)
    prefix = f"{name}: "
    return " ".join((text[len(prefix) :] if text.startswith(prefix) else text).split())


def _is_iam(src: Path) -> bool:
    if src.is_file():
        return src.name == "lines.txt"
    return (src / "lines.txt").is_file() or (src / "ascii" / "lines.txt").is_file()


def _is_manifest_or_iam(src: Path) -> bool:
    return _is_iam(src) or (src / "lines.tsv").is_file()


def _split_folders(src: Path) -> list[str]:
    """The sub-folders of ``src`` named like splits (train, val, test, ...)."""
    return [name for name in SPLIT_NAMES if (src / name).is_dir()]


def _read_iam_with_splits(src: Path) -> list[Sample]:
    """IAM lines, with the split of each line that the standard split lists (train, val, test) name."""
    samples = read_iam(src)
    lines_txt = _find_iam_lines(Path(os.path.abspath(src)))
    root = lines_txt.parent.parent if lines_txt.parent.name == "ascii" else lines_txt.parent
    split_of: dict[str, str] = {}
    for name in ("train", "val", "test"):
        try:
            _find_split_file(root, name)
        except DataError:
            continue
        for s in read_iam(src, split=name):
            split_of.setdefault(s.id, name)
    return [replace(s, split=split_of.get(s.id)) for s in samples]


@dataclass
class ConvertResult:
    """What :func:`convert` wrote: the manifest, the number of lines and groups per split, and what it left
    out (listed in ``left_out_file`` when not empty)."""

    manifest: Path
    lines: Counter[str]
    groups: Counter[str]
    left_out: list[LeftOut] = field(default_factory=list)

    @property
    def left_out_file(self) -> Path:
        return self.manifest.parent / LEFT_OUT_FILE

    def left_out_summary(self, shown: int = 10) -> list[str]:
        """For stderr: the first ``shown`` pages/lines left out and why, then where the full list is."""
        rows = [f"left out {x.kind} {x.name}: {x.reason}" for x in self.left_out[:shown]]
        if len(self.left_out) > shown:
            rows.append(f"... and {len(self.left_out) - shown} more")
        kinds = Counter(x.kind for x in self.left_out)
        counts = " and ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in sorted(kinds.items(), reverse=True))
        rows.append(f"left out {counts}; the list with the reasons is in {self.left_out_file}")
        return rows

    def summary(self) -> str:
        """One line per split: lines and writer/page groups."""
        rows = [f"wrote {sum(self.lines.values())} lines to {self.manifest}"]
        for name in sorted(self.lines, key=lambda n: (n == "", n)):
            rows.append(f"  {name or '(no split)'}: {self.lines[name]} lines, {self.groups[name]} writer/page groups")
        return "\n".join(rows)


def convert(
    src: str | Path,
    out_dir: str | Path,
    split_fractions: tuple[float, float] | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> ConvertResult:
    """Write ``src`` as ``out_dir/lines/*.png`` + ``out_dir/lines.tsv``.

    Args:
        src: a page folder or XML, an IAM ``lines.txt`` or folder, or anything :func:`read_dataset` reads
            (a folder of split sub-folders ``train``/``val``/``test`` of pairs or pages included).
        out_dir: the folder to create; it must not exist or be empty unless ``overwrite``.
        split_fractions: ``(val, test)`` fractions for writer-aware splits; None keeps the source's splits.
        seed: seed of the writer-aware split.
        overwrite: replace an existing non-empty ``out_dir``.
    """
    out_dir = Path(os.path.abspath(out_dir))
    if out_dir.is_file() or (out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite):
        raise HTRError("output folder exists and is not empty; pass --overwrite to replace it", out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    left_out: list[LeftOut] = []
    try:
        (tmp / "lines").mkdir(parents=True)
        lines = read_source(src, tmp / "lines", left_out)
        if not lines:
            raise DataError("source holds no lines", src)
        _check_ids(lines, Path(src))
        if split_fractions is not None:
            sizes = Counter(line.group for line in lines)
            split_of = assign_splits(dict(sizes), *split_fractions, seed=seed)
            lines = [SourceLine(replace(line.sample, split=split_of[line.group]), line.group) for line in lines]
        written, rows = _write_images(lines, tmp / "lines", left_out)
        if not written:
            first = left_out[-len(lines)].reason
            raise DataError(f"none of its {len(lines)} lines could be converted; the first: {first}", src)
        lines = written
        _write_manifest(tmp / "lines.tsv", rows)
        if left_out:
            _write_left_out(tmp / LEFT_OUT_FILE, left_out)
        _replace_folder(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = ConvertResult(out_dir / "lines.tsv", Counter(), Counter(), left_out)
    seen_groups: set[tuple[str, str]] = set()
    for line in lines:
        split = line.sample.split or ""
        result.lines[split] += 1
        if (split, line.group) not in seen_groups:
            seen_groups.add((split, line.group))
            result.groups[split] += 1
    return result


def _check_ids(lines: list[SourceLine], src: Path) -> None:
    """Refuse duplicate ids (they would share an image file), e.g. the same name in two split folders."""
    counts = Counter(line.sample.id for line in lines)
    repeated = sorted(i for i, n in counts.items() if n > 1)
    if repeated:
        shown = ", ".join(repeated[:5]) + (", ..." if len(repeated) > 5 else "")
        raise DataError(f"{len(repeated)} id(s) occur more than once: {shown}", src)


def _write_images(
    lines: list[SourceLine], folder: Path, left_out: list[LeftOut]
) -> tuple[list[SourceLine], list[list[str]]]:
    """Put each line's image in ``folder`` as ``<id>.png`` (PNG files copied, others re-encoded as gray PNG);
    return the lines written and their manifest rows. A line whose image cannot be read goes to ``left_out``."""
    done, rows = [], []
    disable = True if len(lines) < PROGRESS_FROM else None  # None: tqdm shows the bar only on a terminal
    for line in progress(lines, desc="images", unit="line", disable=disable, leave=False):
        s = line.sample
        name = f"{safe_name(s.id)}.png"
        dest = folder / name
        try:
            if Path(os.path.abspath(s.image)) != dest:
                if s.image.suffix.lower() == ".png" and s.image.is_file():
                    shutil.copyfile(s.image, dest)
                else:
                    load_image(s.image).save(dest, format="PNG")
        except ImageError as e:
            left_out.append(LeftOut("line", s.id, " ".join(str(e).split())))
            continue
        done.append(line)
        rows.append([s.id, f"lines/{name}", s.text, s.writer or "", s.split or ""])
    return done, rows


def _write_manifest(path: Path, rows: Iterable[list[str]]) -> None:
    """Write the TSV, refusing fields that would break it (a tab or a line break)."""
    out = [TSV_HEADER]
    for row in rows:
        bad = [f for f in row if "\t" in f or "\n" in f or "\r" in f]
        if bad:
            raise DataError(f"line {row[0]!r} has a tab or line break in {bad[0]!r}; it cannot go in a TSV", path)
        out.append("\t".join(row))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def _write_left_out(path: Path, left_out: list[LeftOut]) -> None:
    """Write the pages and lines left out as a TSV: ``kind name reason`` (reasons hold no tab or line break)."""
    rows = ["kind\tname\treason"] + [f"{x.kind}\t{' '.join(x.name.split())}\t{x.reason}" for x in left_out]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _replace_folder(new: Path, dest: Path) -> None:
    """Move the finished ``new`` folder to ``dest``, replacing what is there only once ``new`` is complete."""
    old = dest.with_name(f".{dest.name}.old{os.getpid()}")
    if dest.exists():
        os.replace(dest, old)
    try:
        os.replace(new, dest)
    except OSError:
        if old.exists():
            os.replace(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)
