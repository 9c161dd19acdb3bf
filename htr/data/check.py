"""Check a dataset before training: every image decoded, every text and size looked at, one table of problems.

What blocks training (:meth:`CheckReport.blocking`, exit status 1 of ``python -m htr.data check``):

- any unreadable image, empty or whitespace-only text, or duplicate id;
- lines too narrow for their transcription (fewer CTC frames than the text needs, see :func:`too_narrow`)
  above ``max_narrow`` of the lines (default 5%, like ``train.max_bad_fraction``): training drops a few such
  lines, but many mean a wrong height, stride or segmentation;
- no lines at all.

Reported without blocking: characters outside the charset (training skips them), narrow lines up to
``max_narrow``, extreme sizes (height below 8 or above 1000 px, width/height above 100 or below 0.5), lines
the reader flagged (IAM ``err``), and lines that preprocessing (the checkpoint's settings, or the defaults at
``height``) leaves with almost no ink or mostly ink: the paper or a fill taken for ink, or the ink for paper.
Such lines train the model on a blank or a blob under a full transcription; a polygon's white fill on grey
paper once zeroed a tenth of two datasets' lines that way (docs/results.md, session 12).
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from htr.charset import Charset
from htr.data.dataset import ctc_min_frames
from htr.data.formats import read_dataset
from htr.data.formats.manifest import _filter_split, _tsv_header, _tsv_rows, _tsv_sample, read_tsv
from htr.data.formats.textfile import _read_text
from htr.data.lines import MIN_WIDTH
from htr.data.samples import Sample
from htr.errors import DataError, HTRError
from htr.imageio import load_image
from htr.preprocess.pipeline import PreprocessConfig, preprocess_line
from htr.progress import progress

MIN_HEIGHT, MAX_HEIGHT = 8, 1000
MIN_ASPECT, MAX_ASPECT = 0.5, 100.0
MAX_NARROW = 0.05
#: Preprocessed lines with fewer than this share of their pixels at ink level 0.5 or more have "no ink"; with
#: more than MOSTLY_INK, "mostly ink" (handwriting covers about 5-20% of a line cropped to its ink).
NO_INK, MOSTLY_INK = 0.005, 0.4
PROGRESS_FROM = 200

#: Problem kinds in table order: key -> label.
KINDS = {
    "unreadable": "unreadable image",
    "empty": "empty or whitespace-only text",
    "duplicate": "duplicate id",
    "too_narrow": "too narrow for its text",
    "unknown_chars": "characters outside the charset",
    "too_low": f"height below {MIN_HEIGHT} px",
    "too_high": f"height above {MAX_HEIGHT} px",
    "too_long": f"width/height above {MAX_ASPECT:g}",
    "too_square": f"width/height below {MIN_ASPECT:g}",
    "flagged": "flagged by the reader (IAM err)",
    "no_ink": "no ink after preprocessing",
    "mostly_ink": "mostly ink after preprocessing",
}
ALWAYS_BLOCKING = ("unreadable", "empty", "duplicate")


@dataclass
class CheckReport:
    """Ids of the lines with each kind of problem (:data:`KINDS`), and what was checked."""

    total: int
    height: int
    stride: int
    max_narrow: float = MAX_NARROW
    found: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    unknown_chars: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)
    charset_given: bool = False

    def blocking(self) -> list[str]:
        """Why training would fail or be wrong, one phrase per reason (empty when the data is usable)."""
        reasons = [f"{KINDS[k]}: {len(self.found[k])}" for k in ALWAYS_BLOCKING if self.found[k]]
        narrow = len(self.found["too_narrow"])
        if self.total and narrow > self.max_narrow * self.total:
            reasons.append(f"{KINDS['too_narrow']}: {narrow} of {self.total} lines (more than {self.max_narrow:.0%})")
        if not self.total:
            reasons.append("no lines")
        return reasons

    def blocks(self, kind: str) -> str:
        """``yes``, ``no`` or the rule, for the table's "blocks" column."""
        if kind in ALWAYS_BLOCKING:
            return "yes"
        if kind == "too_narrow":
            return f">{self.max_narrow:.0%}"
        return "no"

    def table(self, first: int = 3) -> str:
        """The summary: one row per problem kind with its count, whether it blocks, and the first ids."""
        rows = [f"{'problem':<34} {'lines':>6}  {'blocks':<6}  first ids"]
        for kind, label in KINDS.items():
            ids = self.found[kind]
            shown = ", ".join(ids[:first]) + (", ..." if len(ids) > first else "")
            count = "-" if kind == "unknown_chars" and not self.charset_given else str(len(ids))
            rows.append(f"{label:<34} {count:>6}  {self.blocks(kind):<6}  {shown}".rstrip())
        if self.unknown_chars:
            chars = " ".join(f"{c!r}x{n}" for c, n in self.unknown_chars.most_common(15))
            rows.append(f"  characters outside the charset: {chars}")
        for sample_id, message in list(self.errors.items())[:first]:
            rows.append(f"  {sample_id}: {message}")
        return "\n".join(rows)


def normalized_width(width: int, height: int, target_height: int) -> int:
    """Width of a ``width`` x ``height`` line scaled to ``target_height`` rows (at least the store's minimum)."""
    return max(MIN_WIDTH, round(width * target_height / height))


def too_narrow(size: tuple[int, int], text: str, target_height: int, stride: int, charset: Charset | None) -> bool:
    """Whether the model's output frames for a line of ``size`` are fewer than CTC needs to emit ``text``.

    The width is estimated from the image size (no ink cropping), so this is a lower bound on trouble. Without
    a charset every character counts; with one, only those it has (as in training).
    """
    ids = [ord(c) for c in text] if charset is None else [charset.index[c] for c in text if c in charset.index]
    return normalized_width(*size, target_height) // stride < max(ctc_min_frames(ids), 1)


def _probe(path: Path, preprocess: PreprocessConfig) -> tuple[tuple[int, int], float] | str:
    """The size of the fully decoded image and the share of ink in it once preprocessed, or why it cannot be
    read."""
    try:
        image = load_image(path)
        return image.size, float(np.mean(preprocess_line(image, preprocess) >= 0.5))
    except HTRError as e:
        return str(e)


def check_samples(
    samples: Sequence[Sample],
    charset: Charset | None = None,
    height: int = 64,
    stride: int = 4,
    max_narrow: float = MAX_NARROW,
    jobs: int | None = None,
    preprocess: PreprocessConfig | None = None,
) -> CheckReport:
    """Decode and preprocess every image of ``samples`` (``jobs`` threads; ``preprocess``, default: the default
    settings at ``height``) and report each kind of problem by line id."""
    preprocess = preprocess if preprocess is not None else PreprocessConfig(height=height)
    report = CheckReport(len(samples), height, stride, max_narrow, charset_given=charset is not None)
    found = report.found
    seen: set[str] = set()
    for s in samples:
        if s.id in seen:
            found["duplicate"].append(s.id)
        seen.add(s.id)
        if not s.text.strip():
            found["empty"].append(s.id)
        if "err" in s.flags:
            found["flagged"].append(s.id)
        if charset is not None:
            missing = charset.missing(s.text)
            if missing:
                found["unknown_chars"].append(s.id)
                report.unknown_chars.update(missing)
    jobs = jobs or min(4, os.cpu_count() or 1)
    disable = True if len(samples) < PROGRESS_FROM else None  # None: a bar only on a terminal
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        probes = pool.map(functools.partial(_probe, preprocess=preprocess), [s.image for s in samples])
        for s, probe in progress(zip(samples, probes), total=len(samples), desc="images", unit="line", disable=disable):
            if isinstance(probe, str):
                found["unreadable"].append(s.id)
                report.errors[s.id] = probe
                continue
            size, ink = probe
            _check_size(s, size, report, charset)
            if ink < NO_INK:
                found["no_ink"].append(s.id)
            elif ink > MOSTLY_INK:
                found["mostly_ink"].append(s.id)
    return report


def _check_size(s: Sample, size: tuple[int, int], report: CheckReport, charset: Charset | None) -> None:
    """Record the size problems of one readable line."""
    w, h = size
    found = report.found
    if h < MIN_HEIGHT:
        found["too_low"].append(s.id)
    if h > MAX_HEIGHT:
        found["too_high"].append(s.id)
    if w / h > MAX_ASPECT:
        found["too_long"].append(s.id)
    if w / h < MIN_ASPECT:
        found["too_square"].append(s.id)
    if s.text.strip() and too_narrow(size, s.text, report.height, report.stride, charset):
        found["too_narrow"].append(s.id)


def read_for_check(path: str | Path, split: str | None = None) -> list[Sample]:
    """:func:`read_dataset`, except that a manifest's duplicate ids are kept (to be reported, not refused)."""
    path = Path(path)
    manifest = None
    if path.is_file() and path.suffix.lower() == ".tsv":
        manifest = path
    elif path.is_dir() and not (path / "lines.txt").is_file() and not (path / "ascii" / "lines.txt").is_file():
        manifest = path / "lines.tsv" if (path / "lines.tsv").is_file() else None
    if manifest is None:
        return read_dataset(path, split)
    try:
        return read_tsv(manifest, split)
    except DataError as e:
        if "duplicate id" not in str(e):
            raise
    rows = _tsv_rows(_csv_reader(_read_text(manifest, "manifest")), manifest)
    columns = _tsv_header(*next(rows), manifest)
    root = Path(os.path.abspath(manifest.parent))
    samples = [_tsv_sample(dict(zip(columns, row, strict=True)), root, n, manifest) for n, row in rows]
    return _filter_split(samples, split, manifest) if split is not None else samples


def _csv_reader(text: str) -> Iterator[list[str]]:
    """A tab-separated reader like :func:`read_tsv`'s (quotes are literal)."""
    return csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)


def load_charset(source: str | Path) -> tuple[Charset, str]:
    """The charset of a checkpoint (``.pt``), or the one training would build from a dataset: the texts of its
    ``train`` split when it has one, else all its texts. Returns it with a phrase saying where it came from."""
    source = Path(source)
    if source.suffix.lower() in (".pt", ".pth", ".ckpt"):
        from htr.bundle import ModelBundle
        from htr.checkpoint import load_checkpoint

        return ModelBundle.charset_of(load_checkpoint(source), source), f"checkpoint {source}"
    samples = read_dataset(source)
    train = [s for s in samples if s.split == "train"]
    return Charset.from_texts(s.text for s in (train or samples)), f"{'train split of ' if train else ''}{source}"


def checkpoint_settings(path: str | Path) -> tuple[Charset, int, int, PreprocessConfig]:
    """A checkpoint's charset, preprocessing height, model width stride and preprocessing settings."""
    from htr.bundle import ModelBundle
    from htr.checkpoint import load_checkpoint
    from htr.model.crnn import width_stride

    bundle = ModelBundle.from_checkpoint(load_checkpoint(path), path)
    return bundle.charset, bundle.input_height, width_stride(bundle.model), bundle.preprocess
