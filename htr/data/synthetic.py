"""Synthetic handwritten text lines rendered with handwriting fonts, for pre-training and tests.

Fonts come from the ``fontpkg-*`` packages on PyPI (SIL Open Font License 1.1, Google Fonts' handwriting
families); each font file is one "writer". A line is rendered word by word with a wobbling baseline and
jittered spacing, slanted, slightly rotated, then put on textured paper with noise and blur, and cropped to
its ink with a margin that never clips a stroke.

Command line::

    python -m htr.data.synthetic OUT_DIR --train 2000 --val 200 --test 200 --seed 0

writes ``OUT_DIR/lines/*.png`` and ``OUT_DIR/lines.tsv`` (columns ``id image text writer split``).
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import io
import json
import math
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

from htr.charset import normalize_text
from htr.data.atomic_dir import replace_dir_atomically
from htr.errors import DataError, HTRError

#: Bumped whenever a change to this module changes the images or texts it makes (invalidates reuse).
GENERATOR_VERSION = 2

#: fontpkg family slug -> the pip package that installs it. All are SIL OFL 1.1 handwriting families.
FONT_PACKAGES: dict[str, str] = {
    "caveat": "fontpkg-caveat",
    "dancing-script": "fontpkg-dancing-script",
    "indie-flower": "fontpkg-indie-flower",
    "kalam": "fontpkg-kalam",
    "shadows-into-light": "fontpkg-shadows-into-light",
    "zeyada": "fontpkg-zeyada",
}

WORDS_FILE = Path(__file__).with_name("words.txt")
TSV_HEADER = ("id", "image", "text", "writer", "split")
PUNCTUATION_END = ".,;:?!"
MAX_CHARS = 48

# Layout engine: BASIC does not depend on libraqm being present, so output is the same on every machine
# with the same Pillow/FreeType.
_LAYOUT = ImageFont.Layout.BASIC


# --------------------------------------------------------------------------------------------------- fonts


def available_fonts() -> list[Path]:
    """Font files of the installed handwriting fontpkg families (sorted by file name).

    Raises:
        HTRError: when none of the packages in :data:`FONT_PACKAGES` is installed.
    """
    return list(_available_fonts())


@functools.cache
def _available_fonts() -> tuple[Path, ...]:
    paths: list[Path] = []
    try:
        import fontpkg
    except ImportError:
        fontpkg = None
    if fontpkg is not None:
        for slug in FONT_PACKAGES:
            try:
                family = fontpkg.family(slug)
            except fontpkg.FamilyNotInstalled:
                continue
            paths.extend(Path(f.path) for f in family.files if f.style == "normal")
    paths = sorted({p for p in paths if p.is_file()}, key=lambda p: p.name)
    if not paths:
        raise HTRError(
            "no handwriting font installed for synthetic lines; install one, e.g. "
            f"`pip install {' '.join(FONT_PACKAGES.values())}`"
        )
    return tuple(paths)


def __getattr__(name: str) -> list[Path]:
    """``FONTS``: the same list as :func:`available_fonts`, resolved on first access."""
    if name == "FONTS":
        return available_fonts()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def font_name(path: Path) -> str:
    """Writer name of a font file: its stem without variable-axis brackets (``Caveat``, ``Kalam-Bold``)."""
    return re.sub(r"\[[^\]]*\]", "", path.stem) or path.stem


@functools.lru_cache(maxsize=512)
def _font(path: Path, size: int, weight: int | None) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(str(path), size, layout_engine=_LAYOUT)
    if weight is not None:
        font.set_variation_by_axes([weight])
    return font


@functools.cache
def _weight_range(path: Path) -> tuple[int, int] | None:
    """The ``wght`` axis range of a variable font, or None for a static one."""
    font = ImageFont.truetype(str(path), 20, layout_engine=_LAYOUT)
    try:
        axes = font.get_variation_axes()
    except OSError:
        return None
    for axis in axes:
        if axis.get("name") in (b"Weight", "Weight"):
            return int(axis["minimum"]), int(axis["maximum"])
    return None


@functools.cache
def _metrics(path: Path) -> tuple[float, float, float]:
    """Per font at size 100: height of ``H`` above the baseline, depth of ``g`` below it, Hg body height."""
    font = _font(path, 100, None)
    ascent = -font.getbbox("H", anchor="ls")[1]
    descent = font.getbbox("g", anchor="ls")[3]
    return float(ascent), float(descent), float(ascent + descent)


@functools.lru_cache(maxsize=4096)
def _has_glyph(path: Path, char: str) -> bool:
    """Whether the font draws ``char`` (rather than its .notdef box)."""
    if char.isspace():
        return True
    font = _font(path, 40, None)
    notdef = (font.getbbox("\U0010fffd"), bytes(font.getmask("\U0010fffd")))
    return (font.getbbox(char), bytes(font.getmask(char))) != notdef


def _fonts_covering(text: str, fonts: Sequence[Path]) -> list[Path]:
    chars = set(text)
    return [f for f in fonts if all(_has_glyph(f, c) for c in chars)]


# ---------------------------------------------------------------------------------------------------- text


def load_words(path: Path = WORDS_FILE) -> list[str]:
    """The shipped word list (or another one, one word per line)."""
    try:
        words = [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()]
    except OSError as e:
        raise DataError(f"cannot read word list ({e.strerror})", path) from e
    if not words:
        raise DataError("word list is empty", path)
    return words


def _number(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return str(rng.randint(0, 99))
    if kind < 0.65:
        return str(rng.randint(1800, 2030))
    if kind < 0.85:
        return str(rng.randint(100, 99999))
    return f"{rng.randint(0, 99)}.{rng.randint(0, 99):02d}"


def random_text(rng: random.Random, words: list[str], max_chars: int = MAX_CHARS) -> str:
    """A random line of 1-7 tokens, at most ``max_chars`` characters, single-spaced, never padded.

    Tokens are drawn from ``words`` (frequent words are not favoured: the list is sampled uniformly), are
    sometimes capitalized (sentence start, title case, rarely all caps), sometimes a number, sometimes
    carry punctuation from ``. , ; : ? ! ' -`` (end marks, quotes, hyphenated pairs, a lone dash).
    """
    if not words:
        raise ValueError("random_text needs a non-empty word list")
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    n_tokens = rng.randint(1, 7)
    sentence_case = rng.random() < 0.45
    tokens: list[str] = []
    length = 0
    for i in range(n_tokens):
        r = rng.random()
        if r < 0.07:
            token = _number(rng)
        elif r < 0.10 and i > 0:
            token = "-"
        else:
            token = rng.choice(words)
            c = rng.random()
            if (i == 0 and sentence_case) or c < 0.06:
                token = token[:1].upper() + token[1:]
            elif c < 0.075:
                token = token.upper()
            if rng.random() < 0.04:
                token = f"{token}-{rng.choice(words)}"
            elif rng.random() < 0.03:
                token = f"'{token}'"
        if token != "-" and rng.random() < 0.16:
            token += rng.choice(PUNCTUATION_END)
        extra = len(token) + (1 if tokens else 0)
        if tokens and length + extra > max_chars:
            break
        tokens.append(token)
        length += extra
    text = " ".join(tokens)
    if len(text) > max_chars:  # a single over-long token
        text = text[:max_chars]
    text = text.strip(" ")
    if text in ("", "-"):
        text = words[0][:max_chars]
    return text


def fit_line(text: str, max_chars: int = MAX_CHARS) -> str:
    """``text`` normalized and, when longer than ``max_chars``, cut at the last word boundary that fits."""
    text = normalize_text(text)
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars + 1)
    return text[:cut] if cut > 0 else text[:max_chars]


# ------------------------------------------------------------------------------------------------- render


@dataclass(frozen=True)
class _Layout:
    mask: Image.Image  # ink coverage, 'L', 255 = full ink
    band: tuple[float, float, float, float]  # x0, y_top, x1, y_bottom of the nominal text band
    heavy: bool  # drawn with a bold face or a heavy weight: must not be thickened more


def _draw_words(text: str, rng: random.Random, path: Path) -> _Layout:
    """Draw ``text`` as white-on-black coverage, word by word, on a canvas with room to spare."""
    ascent100, descent100, body100 = _metrics(path)
    body = rng.uniform(26.0, 54.0)  # height from the top of 'H' to the bottom of 'g', in pixels
    size = max(8, round(body / body100 * 100))
    wrange = _weight_range(path)
    weight = None if wrange is None else rng.randrange(wrange[0], wrange[1] + 1, 25)
    space_factor = rng.uniform(0.85, 1.4)

    words = text.split(" ")
    placed: list[tuple[str, ImageFont.FreeTypeFont, float, float]] = []  # word, font, x, baseline offset
    x = 0.0
    drift = 0.0
    for i, word in enumerate(words):
        wsize = size if rng.random() < 0.6 else max(8, round(size * rng.uniform(0.93, 1.07)))
        font = _font(path, wsize, weight)
        if i > 0:
            # Some fonts have narrow spaces; keep gaps visible (a recognizer must be able to see them).
            space = max(font.getlength(" "), 0.32 * wsize)
            x += space * space_factor * rng.uniform(0.8, 1.25)
        drift = max(-0.1 * body, min(0.1 * body, drift + rng.gauss(0.0, 0.035 * body)))
        dy = drift + rng.gauss(0.0, 0.02 * body)
        placed.append((word, font, x, dy))
        x += font.getlength(word)

    pad = math.ceil(body * 1.2) + 8
    width = math.ceil(x) + 2 * pad
    height = math.ceil(body * 1.5) + 2 * pad
    baseline = pad + ascent100 * size / 100 * 1.1
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for word, font, wx, dy in placed:
        draw.text((pad + wx, baseline + dy), word, fill=255, font=font, anchor="ls")
    dys = [p[3] for p in placed]
    band = (
        pad,
        baseline + min(dys) - ascent100 * size / 100,
        pad + x,
        baseline + max(dys) + descent100 * size / 100,
    )
    heavy = "Bold" in path.name or (weight is not None and weight >= 550)
    return _Layout(mask, band, heavy)


def _stroke_levels(mask: Image.Image, rng: random.Random, heavy: bool) -> np.ndarray:
    """Coverage in [0, 1] with the stroke width varied: blurred, then re-thresholded lower or higher."""
    radius = rng.uniform(0.4, 1.0)
    a = np.asarray(mask.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255.0
    # Low threshold: thicker strokes; high: thinner. Heavy text is only ever thinned.
    lo = rng.uniform(0.25, 0.5) if heavy else rng.uniform(0.08, 0.3)
    hi = lo + rng.uniform(0.25, 0.5)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def _affine(cov: np.ndarray, band: tuple[float, float, float, float], rng: random.Random):
    """Slant and rotate the coverage; returns the new coverage and the transformed text band's y-range."""
    h, w = cov.shape
    x0, yt, x1, yb = band
    shear = math.tan(math.radians(rng.uniform(-15.0, 15.0)))
    text_w = max(1.0, x1 - x0)
    # Rotation is capped so long lines do not grow much taller than the text itself.
    max_rot = min(2.0, math.degrees(math.atan(0.5 * (yb - yt) / text_w)))
    theta = math.radians(rng.uniform(-max_rot, max_rot))
    cx, cy = (x0 + x1) / 2, (yt + yb) / 2
    c, s = math.cos(theta), math.sin(theta)
    # forward: p' = R @ (S @ (p - center)) + center, S = [[1, -shear], [0, 1]] (x shifts with height)
    m = np.array([[c, -s], [s, c]]) @ np.array([[1.0, -shear], [0.0, 1.0]])
    corners = np.array([[x0, yt], [x1, yt], [x0, yb], [x1, yb], [0, 0], [w, 0], [0, h], [w, h]], float)
    moved = (corners - [cx, cy]) @ m.T + [cx, cy]
    ox, oy = math.floor(moved[:, 0].min()), math.floor(moved[:, 1].min())
    out_w, out_h = math.ceil(moved[:, 0].max()) - ox + 1, math.ceil(moved[:, 1].max()) - oy + 1
    det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    inv = np.array([[m[1, 1], -m[0, 1]], [-m[1, 0], m[0, 0]]]) / det
    # input = inv @ (out + o - center) + center
    t = inv @ (np.array([ox, oy]) - [cx, cy]) + [cx, cy]
    coeffs = (inv[0, 0], inv[0, 1], t[0], inv[1, 0], inv[1, 1], t[1])
    img = Image.fromarray((cov * 255.0 + 0.5).astype(np.uint8), "L")
    img = img.transform((out_w, out_h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
    band_y = (moved[:4, 1].min() - oy, moved[:4, 1].max() - oy)
    return np.asarray(img, dtype=np.float32) / 255.0, band_y


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid upsampled bicubically."""
    h, w = shape
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    grid = Image.fromarray(rng.uniform(0, 255, (gh, gw)).astype(np.uint8), "L")
    up = np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    return up / 127.5 - 1.0


def render_line(text: str, rng: random.Random, fonts: list[Path] | None = None) -> Image.Image:
    """Render ``text`` as a grayscale ('L') handwritten-looking line: dark ink on light paper.

    Everything random is drawn from ``rng``, so the same rng state, text and fonts give the same image.
    The image is cropped to the ink (and the nominal ascender-to-descender band) plus a margin of at least
    4 pixels, so no stroke touches the border. Natural height is about 40-90 pixels.
    """
    text = normalize_text(text)
    if not text:
        raise ValueError("render_line needs non-empty text")
    fonts = list(fonts) if fonts is not None else available_fonts()
    if not fonts:
        raise HTRError("render_line got an empty font list")
    usable = _fonts_covering(text, fonts) or fonts
    path = rng.choice(usable)
    nrng = np.random.default_rng(rng.getrandbits(64))

    layout = _draw_words(text, rng, path)
    cov = _stroke_levels(layout.mask, rng, layout.heavy)
    cov, (band_top, band_bottom) = _affine(cov, layout.band, rng)

    rows = np.flatnonzero(cov.max(axis=1) > 0.02)
    cols = np.flatnonzero(cov.max(axis=0) > 0.02)
    if rows.size == 0:
        raise HTRError(f"nothing visible was drawn for {text!r} with font {path.name}")
    top = min(rows[0], math.floor(band_top)) - rng.randint(4, 12)
    bottom = max(rows[-1], math.ceil(band_bottom)) + rng.randint(4, 12)
    left = cols[0] - rng.randint(4, 20)
    right = cols[-1] + rng.randint(4, 20)
    # Pad the coverage so the crop window is inside it.
    h, w = cov.shape
    pt, pl = max(0, -top), max(0, -left)
    pb, pr = max(0, bottom + 1 - h), max(0, right + 1 - w)
    if pt or pl or pb or pr:
        cov = np.pad(cov, ((pt, pb), (pl, pr)))
        top, bottom, left, right = top + pt, bottom + pt, left + pl, right + pl
    cov = cov[top : bottom + 1, left : right + 1]
    shape = cov.shape

    # Paper: base level, a gentle illumination gradient, low-frequency fibre/stain texture.
    paper = rng.uniform(195.0, 245.0)
    gy, gx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    grad = rng.uniform(-8, 8) * (gx / max(1, shape[1]) - 0.5) + rng.uniform(-6, 6) * (gy / shape[0] - 0.5)
    texture = rng.uniform(1.5, 7.0) * _smooth_noise(nrng, shape, rng.choice((6, 12, 24)))
    background = np.minimum(paper + grad + texture, 252.0)
    # Ink: darkness and a pen-pressure variation along the line.
    ink = rng.uniform(10.0, 85.0)
    pressure = 1.0 - rng.uniform(0.0, 0.25) * (0.5 + 0.5 * _smooth_noise(nrng, shape, 32))
    img = background + (ink - background) * (cov * pressure)

    out = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "L")
    blur = rng.uniform(0.0, 0.9)
    if blur > 0.25:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    sigma = rng.uniform(1.0, 6.0)
    noisy = np.asarray(out, dtype=np.float32) + nrng.normal(0.0, sigma, shape).astype(np.float32)
    return Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8), "L")


# ------------------------------------------------------------------------------------------------ dataset


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


# ---------------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m htr.data.synthetic OUT_DIR --train N --val N --test N --seed S``."""
    ap = argparse.ArgumentParser(prog="python -m htr.data.synthetic", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, help="output directory (created; reused if already generated)")
    ap.add_argument("--train", type=int, default=2000, help="number of training lines (default 2000)")
    ap.add_argument("--val", type=int, default=200, help="number of validation lines (default 200)")
    ap.add_argument("--test", type=int, default=200, help="number of test lines (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--words", type=Path, default=None, help="word list, one per line (default: shipped)")
    ap.add_argument("--text-file", type=Path, default=None, help="use these lines of text instead of words")
    args = ap.parse_args(argv)
    try:
        words = load_words(args.words) if args.words is not None else None
        start = time.perf_counter()
        tsv = generate_dataset(
            args.out_dir, args.train, args.val, args.test, args.seed, words=words, text_file=args.text_file
        )
    except HTRError as e:
        print(f"htr: {e}", file=sys.stderr)
        return 2
    n = args.train + args.val + args.test
    print(f"{tsv} ({n} lines, {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
