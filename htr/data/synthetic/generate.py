"""Writing a synthetic line dataset (``lines/*.png`` + ``lines.tsv`` + ``params.json``), reused when unchanged."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import random
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, features

from htr.data.atomic_dir import replace_dir_atomically
from htr.data.synthetic.fonts import _fonts_covering, available_fonts, font_name
from htr.data.synthetic.render import render_line
from htr.data.synthetic.text import MAX_CHARS, fit_line, load_words, random_text
from htr.errors import DataError, HTRError

#: Bumped whenever a change to this package changes the images or texts it makes (invalidates reuse).
GENERATOR_VERSION = 2
TSV_HEADER = ("id", "image", "text", "writer", "split")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def _file_sha256(path: Path) -> str:
    return _sha256(path.read_bytes())


def _read_text_file(text_file: Path, max_chars: int) -> list[str]:
    try:
        raw = text_file.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"cannot read text file ({e.strerror})", text_file) from e
    except UnicodeDecodeError as e:
        raise DataError(f"text file is not UTF-8 ({e.reason} at byte {e.start})", text_file) from e
    lines = [fit_line(line, max_chars) for line in raw.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise DataError("text file has no non-empty line", text_file)
    return lines


def _params(
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int,
    words: list[str],
    text_lines: list[str] | None,
    fonts: Sequence[Path],
) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "n_train": n_train,
        "n_val": n_val,
        "n_test": n_test,
        "seed": seed,
        "max_chars": MAX_CHARS,
        "words_sha256": _sha256("\n".join(words).encode()),
        "text_file_sha256": None if text_lines is None else _sha256("\n".join(text_lines).encode()),
        "fonts": [{"name": font_name(p), "file": p.name, "sha256": _file_sha256(p)} for p in fonts],
        "pillow": Image.__version__,
        "freetype": features.version("freetype2"),
    }


def _is_complete(out_dir: Path, params: dict) -> bool:
    try:
        stored = json.loads((out_dir / "params.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stored == params and (out_dir / "lines.tsv").is_file()


def _looks_generated(out_dir: Path) -> bool:
    """Whether ``out_dir`` is empty or holds only what this module writes (safe to replace)."""
    names = {p.name for p in out_dir.iterdir()}
    return names <= {"lines", "lines.tsv", "params.json"}


def generate_dataset(
    out_dir: Path,
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int = 0,
    words: list[str] | None = None,
    text_file: Path | None = None,
) -> Path:
    """Write a synthetic line dataset to ``out_dir`` and return the path of its ``lines.tsv``.

    Layout: ``out_dir/lines/<id>.png``, ``out_dir/lines.tsv`` (header ``id image text writer split``, image
    paths relative to ``out_dir``, writer = font name) and ``out_dir/params.json``. Output is a pure
    function of the parameters, the word list / text file and the font files: the same seed gives
    byte-identical files. When ``out_dir`` already holds a dataset made with the same parameters it is
    reused as is. The dataset is built in a temporary sibling directory and renamed into place, so an
    interrupted run never leaves a half dataset behind.

    Args:
        out_dir: directory to create (or reuse); if it exists it must be empty or a previous dataset.
        n_train, n_val, n_test: number of lines per split.
        seed: random seed.
        words: vocabulary for random lines; default the shipped ``words.txt``.
        text_file: UTF-8 file whose non-empty lines are used as texts instead of random words (cycled in a
            seeded shuffled order; lines longer than 48 characters are cut at a word boundary).
    """
    out_dir = Path(out_dir)
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for split, n in counts.items():
        if n < 0:
            raise HTRError(f"number of {split} lines must be >= 0, got {n}")
    if words is None:
        words = load_words()
    if not words:
        raise HTRError("generate_dataset got an empty word list")
    text_lines = _read_text_file(Path(text_file), MAX_CHARS) if text_file is not None else None
    fonts = available_fonts()
    params = _params(n_train, n_val, n_test, seed, words, text_lines, fonts)
    tsv = out_dir / "lines.tsv"
    if _is_complete(out_dir, params):
        return tsv
    if out_dir.exists() and (not out_dir.is_dir() or not _looks_generated(out_dir)):
        raise HTRError("is not empty and is not a synthetic dataset; choose another output directory", out_dir)

    replace_dir_atomically(
        out_dir,
        lambda tmp: _write_dataset(tmp, counts, seed, words, text_lines, fonts, params),
        lambda: _is_complete(out_dir, params),
    )
    return tsv


def _write_dataset(
    root: Path,
    counts: dict[str, int],
    seed: int,
    words: list[str],
    text_lines: list[str] | None,
    fonts: Sequence[Path],
    params: dict,
) -> None:
    (root / "lines").mkdir()
    order: list[str] = []
    if text_lines is not None:
        order = list(text_lines)
        random.Random(f"htr-synthetic:{seed}:texts").shuffle(order)
    rows: list[tuple[str, str, str, str, str]] = []
    k = 0
    for split, n in counts.items():
        for i in range(n):
            # One rng per line, seeded by a string (hashed with SHA-512, independent of PYTHONHASHSEED).
            rng = random.Random(f"htr-synthetic:{seed}:{split}:{i}")
            text = order[k % len(order)] if order else random_text(rng, words, MAX_CHARS)
            k += 1
            usable = _fonts_covering(text, fonts)
            if not usable:
                raise DataError(f"no installed handwriting font can draw the line {text!r}")
            path = rng.choice(usable)
            image = render_line(text, rng, [path])
            line_id = f"{split}-{i:06d}"
            rel = f"lines/{line_id}.png"
            buf = io.BytesIO()
            image.save(buf, format="PNG", compress_level=1)  # noisy images: level 6 is ~10% smaller, 2x slower
            (root / rel).write_bytes(buf.getvalue())
            rows.append((line_id, rel, text, font_name(path), split))
    with open(root / "lines.tsv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(TSV_HEADER)
        writer.writerows(rows)
    (root / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_tsv(tsv: Path) -> list[dict[str, str]]:
    """Rows of a ``lines.tsv`` written by :func:`generate_dataset`, as dicts keyed by the header."""
    with open(tsv, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL))
