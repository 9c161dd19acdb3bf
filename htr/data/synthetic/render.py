"""Rendering one synthetic line: words drawn on a wobbling baseline, slanted, rotated, put on textured paper."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from htr.charset import normalize_text
from htr.data.synthetic.fonts import _font, _fonts_covering, _metrics, _weight_range, available_fonts
from htr.errors import HTRError


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
