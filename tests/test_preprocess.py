"""Tests for htr.preprocess on synthetic text lines with known skew, slant and contrast."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from htr.errors import ImageError
from htr.preprocess import (
    PreprocessConfig,
    contrast,
    crop_to_ink,
    deskew,
    deslant,
    estimate_skew,
    estimate_slant,
    normalize_contrast,
    preprocess_line,
    resize_to_height,
    rotate,
    shear,
    to_ink_array,
)

# ---------------------------------------------------------------------------------------------------
# Synthetic images


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont | None:
    """Pillow's scalable default font, or None where this Pillow cannot scale it."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return None


def render_line(
    text: str = "Minimum hillside 1984 quick brown fox",
    height: int = 100,
    ink: int = 0,
    paper: int = 255,
) -> Image.Image:
    """Render an upright text line (dark ink on light paper) as a grayscale 'L' image.

    Falls back to hand-drawn strokes (bars, bowls, connectors) where Pillow has no scalable font.
    """
    font = _font(40)
    img = Image.new("L", (40 + 26 * len(text), height), paper)
    draw = ImageDraw.Draw(img)
    if font is not None:
        draw.text((20, (height - 40) // 2), text, font=font, fill=ink)
    else:  # pragma: no cover - only on a Pillow without FreeType
        x, top = 20, (height - 40) // 2
        for i in range(len(text)):
            tall = i % 3 == 0
            draw.line([(x, top + (0 if tall else 12)), (x, top + 36)], fill=ink, width=4)
            draw.ellipse([x + 6, top + 14, x + 20, top + 36], outline=ink, width=3)
            x += 26
    # Crop the paper to the text plus a fixed margin.
    box = Image.eval(img, lambda v: 255 - v).getbbox()
    assert box is not None
    return img.crop((box[0] - 10, 0, box[2] + 10, height))


def bars_image(height: int = 80, width: int = 600, bar_w: int = 4, period: int = 23) -> np.ndarray:
    """An ink-high image of upright bars: the ideal slant-0 text."""
    a = np.zeros((height, width), np.float32)
    for x in range(20, width - 20, period):
        a[15 : height - 15, x : x + bar_w] = 1.0
    return a


@pytest.fixture(scope="module")
def line() -> np.ndarray:
    """An upright, unskewed rendered text line as an ink-high array."""
    return to_ink_array(render_line())


# ---------------------------------------------------------------------------------------------------
# to_ink_array


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda g: g, id="uint8-array"),
        pytest.param(lambda g: Image.fromarray(g), id="pil-L"),
        pytest.param(lambda g: Image.fromarray(g).convert("RGB"), id="pil-RGB"),
        pytest.param(lambda g: np.stack([g, g, g], axis=-1), id="rgb-array"),
        pytest.param(lambda g: g.astype(np.float64) / 255.0, id="float-0-1"),
        pytest.param(lambda g: g.astype(np.float32), id="float-0-255"),
        pytest.param(lambda g: g.astype(np.uint16) * 257, id="uint16"),
    ],
)
def test_to_ink_array_inverts_to_ink_high_float(make) -> None:
    gray = np.array([[0, 255, 51], [255, 255, 204]], dtype=np.uint8)
    out = to_ink_array(make(gray))
    assert out.dtype == np.float32
    assert out.shape == gray.shape
    np.testing.assert_allclose(out, 1.0 - gray / 255.0, atol=1.5 / 255)


def test_to_ink_array_transparent_is_paper() -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)  # black but fully transparent...
    rgba[0, 0] = (0, 0, 0, 255)  # ...except one opaque black pixel
    out = to_ink_array(Image.fromarray(rgba, "RGBA"))
    assert out[0, 0] == pytest.approx(1.0)
    assert np.all(out.ravel()[1:] == 0.0)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_to_ink_array_transparency_key_is_paper(mode: str) -> None:
    """A colour key (PNG tRNS) on a gray or RGB image: pixels of the key colour are paper, the others ink."""
    gray = np.array([[0, 0, 255], [51, 0, 204]], dtype=np.uint8)
    img = Image.fromarray(gray if mode == "L" else np.stack([gray] * 3, axis=-1), mode)
    img.info["transparency"] = 51 if mode == "L" else (51, 51, 51)
    expected = 1.0 - gray / 255.0
    expected[1, 0] = 0.0
    np.testing.assert_allclose(to_ink_array(img), expected, atol=1.5 / 255)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_to_ink_array_rejects_empty(shape: tuple[int, int]) -> None:
    with pytest.raises(ImageError):
        to_ink_array(np.zeros(shape, np.uint8))


# ---------------------------------------------------------------------------------------------------
# normalize_contrast


@pytest.mark.parametrize(("paper", "ink"), [(150, 110), (200, 180), (90, 40), (250, 20)])
@pytest.mark.parametrize("noise", [0.0, 2.0])
def test_normalize_contrast_low_contrast(paper: int, ink: int, noise: float) -> None:
    img = np.asarray(render_line(ink=0, paper=255), dtype=np.float64) / 255.0  # 1 paper, 0 ink
    mask_ink = img < 0.02  # the solid ink, not its anti-aliased edges
    mask_paper = img == 1.0
    gray = paper + (ink - paper) * (1.0 - img)
    if noise:
        gray = gray + np.random.default_rng(0).normal(0.0, noise, gray.shape)
    gray = np.clip(np.round(gray), 0, 255).astype(np.uint8)

    out = normalize_contrast(to_ink_array(gray))
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    if noise:
        # Zeroing the noise (3 sigma above the paper) costs up to a third of a 20-level contrast.
        assert np.mean(out[mask_paper] == 0.0) > 0.99
        assert np.median(out[mask_ink]) >= 0.8
    else:
        assert np.all(out[mask_paper] == 0.0)
        assert np.all(out[mask_ink] >= 0.9)


@pytest.mark.parametrize("value", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (40, 300)])
def test_normalize_contrast_constant_image_gives_zeros(value: float, shape: tuple[int, int]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            out = normalize_contrast(np.full(shape, value, np.float32))
    assert out.shape == shape and out.dtype == np.float32
    assert np.all(out == 0.0)


def _filled_line(paper: int, fill: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A line on grey ``paper`` whose box is ``fill`` pure white outside its polygon (as eScriptorium's line exports
    are): ``(normalized image, ink inside, paper inside, outside)``."""
    img = np.asarray(render_line(ink=0, paper=255), dtype=np.float64) / 255.0
    mask_ink, mask_paper = img < 0.02, img == 1.0
    rng = np.random.default_rng(1)
    gray = np.clip(np.round(paper + (60 - paper) * (1.0 - img) + rng.normal(0.0, 2.0, img.shape)), 0, 254)
    outside = np.zeros(img.shape, bool)  # a band above and below the line, as a polygon leaves it
    rows = round(fill * img.shape[0] / 2)
    outside[:rows], outside[img.shape[0] - rows :] = True, True
    gray[outside] = 255
    out = normalize_contrast(to_ink_array(gray.astype(np.uint8)))
    assert (mask_ink & ~outside).sum() > 50
    return out, mask_ink & ~outside, mask_paper & ~outside, outside


@pytest.mark.parametrize("fill", [0.42, 0.46, 0.49])
@pytest.mark.parametrize("paper", [190, 205, 235])
def test_normalize_contrast_ignores_a_white_polygon_fill(fill: float, paper: int) -> None:
    """The white fill is not the paper's noise: counted as such, it zeroed the whole line."""
    out, inside_ink, inside_paper, outside = _filled_line(paper, fill)
    assert np.median(out[inside_ink]) >= 0.8
    assert np.mean(out[inside_paper] == 0.0) > 0.99
    assert np.all(out[outside] == 0.0)


@pytest.mark.parametrize("fill", [0.56, 0.63, 0.7])
@pytest.mark.parametrize("paper", [150, 190, 205, 235])
def test_normalize_contrast_keeps_the_paper_under_a_fill_of_most_of_the_box(fill: float, paper: int) -> None:
    """A fill of most of the box is the background level; the polygon's paper must not come out as ink (the
    blobs `data check` found), so its levels are taken when the fill's would map the paper above _FILL_PAPER."""
    out, inside_ink, inside_paper, outside = _filled_line(paper, fill)
    assert np.median(out[inside_ink]) >= 0.8
    assert np.median(out[inside_paper]) <= contrast._FILL_PAPER
    assert np.all(out[outside] == 0.0)


def test_normalize_contrast_keeps_grey_ink_on_saturated_white_paper() -> None:
    """Paper scanned to pure white under grey, uneven pencil: its white is a spike like a fill's, and what is not
    white is the ink itself. Levels taken from those pixels (as under a fill) would erase it."""
    img = np.asarray(render_line(ink=0, paper=255), dtype=np.float64) / 255.0
    mask_ink, mask_paper = img < 0.02, img == 1.0
    rng = np.random.default_rng(3)
    gray = np.where(mask_paper, 255, rng.integers(165, 255, img.shape))  # light and uneven, as pencil is
    gray[~mask_paper & (rng.random(img.shape) < 0.003)] = 80  # a few dark specks
    out = normalize_contrast(to_ink_array(gray.astype(np.uint8)))
    assert np.median(out[mask_ink]) >= 0.4
    assert np.all(out[mask_paper] == 0.0)


def test_normalize_contrast_reads_under_a_fill_of_half_the_box() -> None:
    """Half of the box white fill, its anti-aliased edge near white: the median falls on the edge, not on the
    paper, and the levels must come from what the polygon holds."""
    img = np.asarray(render_line(ink=0, paper=255), dtype=np.float64) / 255.0
    mask_ink, mask_paper = img < 0.02, img == 1.0
    gray = np.clip(np.round(195 + (60 - 195) * (1.0 - img) + np.random.default_rng(2).normal(0, 2, img.shape)), 0, 250)
    h = img.shape[0]
    outside = np.zeros(img.shape, bool)
    outside[: round(0.46 * h)] = True  # 46% fill, then 6% edge: the median (of every other row) is on the edge
    edge = np.zeros(img.shape, bool)
    edge[round(0.46 * h) : round(0.52 * h)] = True
    gray[outside], gray[edge] = 255, 253
    out = normalize_contrast(to_ink_array(gray.astype(np.uint8)))
    inside = ~outside & ~edge
    assert (mask_ink & inside).sum() > 50
    assert np.median(out[mask_ink & inside]) >= 0.8
    assert np.mean(out[mask_paper & inside] == 0.0) > 0.99
    assert np.all(out[outside | edge] == 0.0)


def test_normalize_contrast_finds_sparse_ink() -> None:
    """A single small mark on a large page is still stretched to 1 (ink far below 1 % of pixels)."""
    a = np.full((100, 2000), 0.1, np.float32)
    a[50:53, 1000:1003] = 0.4
    out = normalize_contrast(a)
    assert np.all(out[50:53, 1000:1003] >= 0.9)
    assert np.count_nonzero(out) == 9


# ---------------------------------------------------------------------------------------------------
# Slant


def test_shear_sign_convention_and_canvas() -> None:
    a = bars_image()
    h, w = a.shape
    out = shear(a, 20.0)
    assert out.dtype == np.float32
    # The canvas widens by H tan(angle) so that no ink is cut.
    assert abs(out.shape[1] - (w + h * math.tan(math.radians(20)))) <= 1.5
    assert out.shape[0] == h
    assert out.sum() == pytest.approx(a.sum(), rel=0.01)
    # Positive angle: the tops of the strokes lie to the right of their bottoms.
    cols = np.arange(out.shape[1])
    top_x = (out[20] * cols).sum() / out[20].sum()
    bottom_x = (out[h - 20] * cols).sum() / out[h - 20].sum()
    assert top_x - bottom_x == pytest.approx((h - 40) * math.tan(math.radians(20)), abs=1.0)


@pytest.mark.parametrize("angle", [-25.0, -15.0, -7.0, 15.0, 25.0, 35.0])
def test_estimate_slant_recovers_shear(line: np.ndarray, angle: float) -> None:
    base = estimate_slant(line)
    assert abs(base) < 3.0
    assert estimate_slant(shear(line, angle)) == pytest.approx(angle, abs=3.0)


@pytest.mark.parametrize("angle", [-20.0, 10.0, 30.0])
def test_estimate_slant_bars_is_precise(angle: float) -> None:
    assert estimate_slant(shear(bars_image(), angle)) == pytest.approx(angle, abs=1.0)


@pytest.mark.parametrize("angle", [-25.0, -15.0, 15.0, 25.0])
def test_deslant_undoes_shear(line: np.ndarray, angle: float) -> None:
    sheared = shear(line, angle)
    assert abs(estimate_slant(sheared)) > abs(angle) - 3.0
    assert abs(estimate_slant(deslant(sheared))) < 3.0


@pytest.mark.parametrize("angle", [-25.0, 20.0])
def test_deslant_makes_bars_upright(angle: float) -> None:
    """Independent check: after deslanting, every bar is a full-height vertical column again."""
    a = bars_image()
    full = a.sum(axis=0).max()  # the bar height, 50
    sheared = shear(a, angle)
    assert sheared.sum(axis=0).max() < 0.5 * full
    assert deslant(sheared).sum(axis=0).max() > 0.85 * full


# ---------------------------------------------------------------------------------------------------
# Skew


def test_rotate_sign_convention() -> None:
    a = np.zeros((21, 201), np.float32)
    a[10, 20:181] = 1.0  # a horizontal stroke
    out = rotate(a, 5.0)
    rows = np.arange(out.shape[0])[:, None]
    cols = np.flatnonzero(out.sum(axis=0) > 0.5)
    left, right = out[:, cols[:5]], out[:, cols[-5:]]
    y_left = (left * rows).sum() / left.sum()
    y_right = (right * rows).sum() / right.sum()
    # Positive angle: counter-clockwise as displayed, i.e. the right end is higher (smaller row index).
    assert y_left - y_right == pytest.approx((cols[-3] - cols[2]) * math.tan(math.radians(5)), abs=1.5)
    assert out.sum() == pytest.approx(a.sum(), rel=0.01)


@pytest.mark.parametrize("angle", [-6.0, -3.0, -1.5, 3.0, 6.0])
def test_estimate_skew_recovers_rotation(line: np.ndarray, angle: float) -> None:
    assert abs(estimate_skew(line)) < 1.0
    assert estimate_skew(rotate(line, angle)) == pytest.approx(angle, abs=1.0)


@pytest.mark.parametrize("angle", [-6.0, 4.0])
def test_deskew_restores_line_height(line: np.ndarray, angle: float) -> None:
    """Independent check: a deskewed line is as flat as the original (its ink spans as few rows)."""
    ink_rows = lambda a: np.count_nonzero((a > 0.5).any(axis=1))  # noqa: E731
    rotated = rotate(line, angle)
    assert ink_rows(rotated) > ink_rows(line) + 20
    assert ink_rows(deskew(rotated)) <= ink_rows(line) + 3


@pytest.mark.parametrize("estimate", [estimate_skew, estimate_slant])
@pytest.mark.parametrize("shape", [(1, 1), (3, 50), (60, 400)])
def test_estimates_on_blank_images_are_zero(estimate, shape: tuple[int, int]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert estimate(np.zeros(shape, np.float32)) == 0.0


# ---------------------------------------------------------------------------------------------------
# Cropping and resizing


def test_crop_to_ink_keeps_margin() -> None:
    a = np.zeros((50, 80), np.float32)
    a[20:30, 40:45] = 1.0
    assert crop_to_ink(a, margin=0).shape == (10, 5)
    out = crop_to_ink(a, margin=3)
    assert out.shape == (16, 11)
    assert out[3:13, 3:8].min() == 1.0 and out.sum() == a.sum()


def test_crop_to_ink_clamps_margin_at_edges() -> None:
    a = np.zeros((10, 10), np.float32)
    a[0, 9] = 1.0
    assert crop_to_ink(a, margin=4).shape == (5, 5)


def test_crop_to_ink_pads_margin_at_edges() -> None:
    a = np.zeros((10, 10), np.float32)
    a[0, 9] = 1.0
    out = crop_to_ink(a, margin=4, pad=True)
    assert out.shape == (9, 9)
    assert out[4, 4] == 1.0 and out.sum() == 1.0


@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (40, 1), (30, 30)])
def test_crop_to_ink_blank_image_stays_valid(shape: tuple[int, int]) -> None:
    out = crop_to_ink(np.zeros(shape, np.float32))
    assert out.shape == shape


@pytest.mark.parametrize("height", [1, 32, 64])
@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 7), (1, 500), (7, 1), (500, 1), (37, 501), (100, 1500), (64, 999), (100, 30_000)]
)
def test_resize_to_height_keeps_aspect(shape: tuple[int, int], height: int) -> None:
    h, w = shape
    a = np.full(shape, 0.75, np.float32)
    out = resize_to_height(a, height)
    assert out.dtype == np.float32
    assert out.shape[0] == height
    assert out.shape[1] == max(1, round(w * height / h))
    assert out.shape[1] == 1 or abs(out.shape[1] - w * height / h) <= 1.0
    np.testing.assert_allclose(out, 0.75, atol=1e-5)  # resampling preserves a flat image


def test_resize_to_height_uint8_stays_uint8() -> None:
    a = np.tile(np.array([0, 255], np.uint8), (10, 50))
    out = resize_to_height(a, 5)
    assert out.dtype == np.uint8 and out.shape == (5, 50)
    assert 100 < out.mean() < 155  # the stripes average out: real resampling, not a crop


def test_resize_to_height_downscales_content() -> None:
    a = np.zeros((100, 200), np.float32)
    a[:, :100] = 1.0  # left half ink
    out = resize_to_height(a, 10)
    assert out.shape == (10, 20)
    assert np.all(out[:, :9] > 0.99) and np.all(out[:, 11:] < 0.01)


@pytest.mark.parametrize("bad", [0, -3])
def test_resize_to_height_rejects_bad_height(bad: int) -> None:
    with pytest.raises(ValueError):
        resize_to_height(np.ones((4, 4), np.float32), bad)


# ---------------------------------------------------------------------------------------------------
# The pipeline


def test_preprocess_config_is_a_plain_structured_config() -> None:
    cfg = PreprocessConfig()
    assert dataclasses.asdict(cfg) == {
        "height": 64,
        "contrast": True,
        "deskew": True,
        "deslant": True,
        "crop": True,
    }
    omegaconf = pytest.importorskip("omegaconf")
    conf = omegaconf.OmegaConf.structured(PreprocessConfig(height=48))
    assert conf.height == 48 and conf.deslant is True
    assert isinstance(omegaconf.OmegaConf.to_object(conf), PreprocessConfig)


def _distorted_line(slant: float, skew: float) -> Image.Image:
    """A rendered line, sheared by ``slant`` then rotated by ``skew``, as a gray 'L' image on paper."""
    ink = rotate(shear(to_ink_array(render_line()), slant), skew)
    return Image.fromarray(np.round(255 * (1.0 - ink)).astype(np.uint8))


@pytest.mark.parametrize("height", [32, 64])
@pytest.mark.parametrize(("slant", "skew"), [(0.0, 0.0), (20.0, 3.0), (-15.0, -5.0)])
@pytest.mark.parametrize("as_array", [False, True])
def test_preprocess_line_output(height: int, slant: float, skew: float, as_array: bool) -> None:
    img = _distorted_line(slant, skew)
    out = preprocess_line(np.asarray(img) if as_array else img, PreprocessConfig(height=height))
    assert out.dtype == np.float32
    assert out.ndim == 2 and out.shape[0] == height and out.shape[1] > 4 * height
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.max() >= 0.9
    # Background exactly 0 all round the border.
    assert np.all(out[0] == 0.0) and np.all(out[-1] == 0.0)
    assert np.all(out[:, 0] == 0.0) and np.all(out[:, -1] == 0.0)
    # The ink fills the height (it was cropped) ...
    rows = np.flatnonzero(out.max(axis=1) > 0.5)
    assert rows[0] <= 0.15 * height and rows[-1] >= 0.85 * height
    # ... and is straight and upright again.
    assert abs(estimate_skew(out)) < 1.0
    assert abs(estimate_slant(out)) < 3.0


def test_preprocess_line_steps_can_be_switched_off() -> None:
    img = _distorted_line(20.0, 0.0)
    kept = preprocess_line(img, PreprocessConfig(deskew=False, deslant=False))
    assert estimate_slant(kept) == pytest.approx(20.0, abs=3.0)
    fixed = preprocess_line(img, PreprocessConfig(deskew=False))
    assert abs(estimate_slant(fixed)) < 3.0
    uncropped = preprocess_line(img, PreprocessConfig(crop=False, deskew=False, deslant=False))
    assert uncropped.shape[1] == round(img.width * 64 / img.height)
    raw = preprocess_line(img, PreprocessConfig(contrast=False, crop=False, deskew=False, deslant=False))
    np.testing.assert_allclose(raw, resize_to_height(to_ink_array(img), 64), atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1), (5, 5), (120, 2000)])
def test_preprocess_line_blank_and_tiny_images(shape: tuple[int, int]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = preprocess_line(np.full(shape, 255, np.uint8), PreprocessConfig(height=32))
    assert out.dtype == np.float32 and out.shape[0] == 32 and out.shape[1] >= 1
    assert np.all(out == 0.0)


def test_preprocess_line_ink_touching_the_edges() -> None:
    """Lines cropped tight to the ink (as in IAM) still get a background border."""
    gray = np.asarray(render_line())
    rows, cols = np.flatnonzero((gray < 128).any(axis=1)), np.flatnonzero((gray < 128).any(axis=0))
    tight = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    assert (tight[0] < 128).any() and (tight[:, 0] < 128).any()
    out = preprocess_line(tight, PreprocessConfig(height=48))
    assert out.shape[0] == 48 and out.max() >= 0.9
    assert np.all(out[0] == 0.0) and np.all(out[-1] == 0.0)
    assert np.all(out[:, 0] == 0.0) and np.all(out[:, -1] == 0.0)


def test_preprocess_line_single_dot() -> None:
    gray = np.full((60, 200), 255, np.uint8)
    gray[30, 100] = 0
    out = preprocess_line(gray, PreprocessConfig(height=32))
    assert out.shape[0] == 32 and out.max() >= 0.5
    assert np.all(out[0] == 0.0) and np.all(out[:, -1] == 0.0)


def test_affine_inverse_undoes_the_map():
    from htr.preprocess._common import affine_inverse

    fwd = (1.1, 0.3, -4.0, -0.2, 0.9, 7.5)
    inv = affine_inverse(*fwd)
    for x, y in [(0.0, 0.0), (10.0, 3.0), (-2.5, 40.0)]:
        xp, yp = fwd[0] * x + fwd[1] * y + fwd[2], fwd[3] * x + fwd[4] * y + fwd[5]
        assert inv[0] * xp + inv[1] * yp + inv[2] == pytest.approx(x)
        assert inv[3] * xp + inv[4] * yp + inv[5] == pytest.approx(y)
    with pytest.raises(ValueError):
        affine_inverse(1.0, 2.0, 0.0, 2.0, 4.0, 0.0)
