"""Tests that pin preprocessing behaviour mutation testing found unpinned (issue 16, item 5).

Every expected value is known by construction (a synthetic image whose ink box, angle or contrast range is
chosen) or worked out by hand in a comment; none was produced by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from htr.errors import ImageError
from htr.preprocess import crop_to_ink, estimate_skew, estimate_slant, normalize_contrast, rotate, shear
from htr.preprocess._common import affine_inverse, check_2d, ink_points, projection_scores, refine_search
from htr.preprocess.contrast import normalized_ink, to_ink_array
from htr.preprocess.pipeline import PreprocessConfig, crop_margin, preprocess_line
from htr.preprocess.resize import crop_box, ink_box, scaled_width, work_copy
from htr.preprocess.slant import slant_of_work_copy

# ---------------------------------------------------------------------------------------------------
# Synthetic images with a known answer


def skewed_stroke(angle: float, h: int = 60, w: int = 300) -> np.ndarray:
    """An ink-high image of a 3-pixel-thick straight stroke rising at ``angle`` degrees (to the right)."""
    a = np.zeros((h, w), np.float32)
    t = math.tan(math.radians(angle))
    for x in range(20, w - 20):
        y = h / 2 - (x - w / 2) * t
        a[int(round(y)) - 1 : int(round(y)) + 2, x] = 1.0
    return a


def slanted_bars(angle: float, h: int = 60, w: int = 400, period: int = 20) -> np.ndarray:
    """An ink-high image of 3-pixel-wide bars whose tops lean ``angle`` degrees to the right."""
    a = np.zeros((h, w), np.float32)
    t = math.tan(math.radians(angle))
    for y in range(10, h - 10):
        dx = int(round((h - 10 - y) * t))
        for x0 in range(40, w - 60, period):
            a[y, x0 + dx : x0 + dx + 3] = 1.0
    return a


# ---------------------------------------------------------------------------------------------------
# _common


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), (0, 5), (5, 0)])
def test_check_2d_rejects_non_images(shape: tuple[int, ...]) -> None:
    with pytest.raises(ImageError, match="line"):
        check_2d(np.zeros(shape), "line")


def test_affine_inverse_rejects_a_singular_map() -> None:
    with pytest.raises(ValueError, match="singular"):
        affine_inverse(1.0, 2.0, 0.0, 2.0, 4.0, 0.0)  # det = 1*4 - 2*2 = 0


def test_affine_inverse_of_a_hand_inverted_map() -> None:
    # x' = 2x + 1, y' = 4y - 8  =>  x = x'/2 - 1/2, y = y'/4 + 2.
    assert affine_inverse(2.0, 0.0, 1.0, 0.0, 4.0, -8.0) == pytest.approx((0.5, 0.0, -0.5, 0.0, 0.25, 2.0))
    # x' = x + y, y' = y  =>  x = x' - y', y = y'.
    assert affine_inverse(1.0, 1.0, 0.0, 0.0, 1.0, 0.0) == pytest.approx((1.0, -1.0, 0.0, 0.0, 1.0, 0.0))


def test_ink_points_coordinates_weights_and_background() -> None:
    a = np.full((4, 8), 0.2, np.float32)  # background 0.2 (the median)
    a[1, 2] = 0.9
    a[3, 6] = 0.24  # 0.04 above the background: below min_weight 0.05, not ink
    x, y, w = ink_points(a)
    assert x.tolist() == [2.5] and y.tolist() == [1.5]  # pixel centres
    assert w == pytest.approx([0.7])
    # An explicit background replaces the median.
    x, y, w = ink_points(a, background=0.0, min_weight=0.5)
    assert x.tolist() == [2.5] and w == pytest.approx([0.9])


def test_ink_points_bins_columns_and_pads_with_background() -> None:
    a = np.zeros((2, 7), np.float32)
    a[0, 1] = 0.8  # columns 0..3 -> one point at x = 0.5 * 4 = 2, weight 0.8 / 4
    a[1, 5] = 0.8  # columns 4..6 + one padding column (background 0) -> x = 1.5 * 4 = 6, weight 0.2
    x, y, w = ink_points(a, x_bin=4, min_weight=0.1, background=0.0)
    assert x.tolist() == [2.0, 6.0] and y.tolist() == [0.5, 1.5]
    assert w == pytest.approx([0.2, 0.2])
    # The padding is background, not 0: on a 0.5 background the same ink gives the same weights.
    x, y, w = ink_points(a + 0.5, x_bin=4, min_weight=0.1, background=0.5)
    assert x.tolist() == [2.0, 6.0] and w == pytest.approx([0.2, 0.2])
    # Exactly min_weight above the background (0.75 - 0.25, exact in binary) is not ink.
    assert ink_points(np.array([[0.0, 0.75, 1.0]]), min_weight=0.5, background=0.25)[0].tolist() == [2.5]


def test_projection_scores_peakiness_scales_and_shifts() -> None:
    u = np.zeros(10)
    v = np.arange(10, dtype=np.float64) * 7.0  # ten points 7 px apart along v
    w = np.ones(10)
    # Candidate 0 projects on u (all points on one spot), candidate 1 on v (ten separate spots):
    # profile 10 p vs ten copies of p, so the sums of squares differ by a factor of 10.
    s = projection_scores(u, v, w, np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    # (Candidate 0 adds the fixed sub-bin dither, which spreads its spot a little: a bit under 10.)
    assert 7.0 < s[0] / s[1] < 10.5
    # Sums of squares are quadratic in the weights; a whole-pixel shift moves the profile, not its shape.
    s2 = projection_scores(u, v, 2 * w, np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    np.testing.assert_allclose(s2, 4 * s, rtol=1e-9)
    s3 = projection_scores(u + 5.0, v + 3.0, w, np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    np.testing.assert_allclose(s3, s, rtol=1e-9)
    assert projection_scores(u[:0], v[:0], w[:0], np.array([1.0]), np.array([0.0])).tolist() == [0.0]
    with pytest.raises(ValueError, match="power of 2"):
        projection_scores(u, v, w, np.array([1.0]), np.array([0.0]), oversample=3)


def test_refine_search_finds_a_parabola_vertex_exactly() -> None:
    # A quadratic score: the parabola through the final winner and its neighbours has the true vertex.
    assert refine_search(lambda c: 100.0 - (c - 3.3) ** 2, 10.0, (1.0, 0.25)) == pytest.approx(3.3, abs=1e-6)
    assert refine_search(lambda c: 100.0 - (c + 7.6) ** 2, 10.0, (1.0, 0.25)) == pytest.approx(-7.6, abs=1e-6)
    # A maximum beyond the range ends at its edge.
    assert refine_search(lambda c: 100.0 - (c - 12.0) ** 2, 10.0, (1.0, 0.25)) == 10.0
    assert refine_search(lambda c: 1e4 - (c + 12.0) ** 2, 5.0, (1.0,)) == -5.0


def test_refine_search_ties_no_ink_and_bad_arguments() -> None:
    # A flat score (e.g. a symmetric profile) keeps the smallest correction, 0.
    assert refine_search(lambda c: np.ones_like(c), 10.0, (1.0, 0.25)) == 0.0
    # Ties between +-4 resolve to the smaller |angle|, which is equal: either is fine, 0 is not.
    assert abs(refine_search(lambda c: 1.0 + (np.abs(c) == 4.0), 10.0, (1.0,))) == 4.0
    assert refine_search(lambda c: np.zeros_like(c), 10.0, (1.0, 0.25)) == 0.0  # no ink
    assert refine_search(lambda c: -np.ones_like(c), 10.0, (1.0, 0.25)) == 0.0
    with pytest.raises(ValueError, match="2 steps"):
        refine_search([lambda c: c], 10.0, (1.0, 0.25))


# ---------------------------------------------------------------------------------------------------
# contrast


def test_to_ink_array_dtypes_by_hand() -> None:
    # bool: True is paper (PIL mode '1').
    assert to_ink_array(np.array([[True, False]])).tolist() == [[0.0, 1.0]]
    # Integers above 255 are 16-bit data; up to 255, 8-bit data.
    np.testing.assert_allclose(to_ink_array(np.array([[0, 65535, 13107]], np.int32)), [[1.0, 0.0, 0.8]], atol=1e-6)
    np.testing.assert_allclose(to_ink_array(np.array([[0, 255, 51]], np.int32)), [[1.0, 0.0, 0.8]], atol=1e-6)
    # Floats in 0..1 as they are; NaN and infinities are paper; negatives clip to ink 1.
    out = to_ink_array(np.array([[0.25, np.nan, np.inf, -np.inf, -0.5]], np.float32))
    np.testing.assert_allclose(out, [[0.75, 0.0, 0.0, 0.0, 1.0]], atol=1e-6)
    # (H, W, 1) arrays are gray.
    np.testing.assert_allclose(to_ink_array(np.full((2, 3, 1), 51, np.uint8)), np.full((2, 3), 0.8), atol=1e-6)


def test_to_ink_array_rgb_luma_weights() -> None:
    rgb = np.zeros((1, 3, 3), np.uint8)
    rgb[0, 0, 0] = rgb[0, 1, 1] = rgb[0, 2, 2] = 255  # pure red, green, blue
    # ITU-R 601 luma: gray = 0.299 R + 0.587 G + 0.114 B; ink = 1 - gray.
    np.testing.assert_allclose(to_ink_array(rgb), [[0.701, 0.413, 0.886]], atol=1e-6)


def test_to_ink_array_pil_modes() -> None:
    # A 16-bit image keeps its depth: 32768 / 65535 is mid-gray.
    img16 = Image.fromarray(np.array([[0, 32768, 65535]], np.uint16))
    np.testing.assert_allclose(to_ink_array(img16), [[1.0, 1 - 32768 / 65535, 0.0]], atol=1e-6)
    # A palette image with a transparent index: that index is paper whatever its colour.
    p = Image.new("P", (2, 1))
    p.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    p.putpixel((1, 0), 1)
    p.info["transparency"] = 1
    np.testing.assert_allclose(to_ink_array(p), [[1.0, 0.0]], atol=1e-6)
    # Gray + alpha: a fully transparent black pixel is paper.
    la = Image.fromarray(np.array([[[0, 255], [0, 0]]], np.uint8), "LA")
    np.testing.assert_allclose(to_ink_array(la), [[1.0, 0.0]], atol=1e-6)
    with pytest.raises(ImageError, match="empty"):
        to_ink_array(Image.new("L", (0, 3)))


def three_levels(shape: tuple[int, int] = (20, 50)) -> np.ndarray:
    """Ink-high levels with a known contrast range: 70 % background 0.2, 5 % mid-tone 0.55, 25 % ink 0.9."""
    a = np.full(shape, 0.2, np.float32)
    flat = a.reshape(-1)
    n = flat.size
    flat[: n // 4] = 0.9
    flat[n // 4 : n // 4 + n // 20] = 0.55
    return a


@pytest.mark.parametrize("shape", [(20, 50), (400, 500)])  # the second is sampled on a grid (stride 3)
def test_normalize_contrast_known_range(shape: tuple[int, int]) -> None:
    a = three_levels(shape)
    out = normalize_contrast(a)
    # Background 0.2 -> exactly 0; ink 0.9 (the 80th percentile of the above-background pixels) -> 1;
    # the mid-tone halfway between -> 0.5 (to the 1/1024 histogram resolution).
    assert out.dtype == np.float32
    assert np.all(out[a == 0.2] == 0.0)
    np.testing.assert_allclose(out[a == 0.9], 1.0, atol=3e-3)
    np.testing.assert_allclose(out[a == 0.55], 0.5, atol=3e-3)


def test_contrast_parameters_take_effect() -> None:
    a = three_levels()
    # high_pct 10: the ink level is the mid-tone (5 of the 30 % above background), so it maps to 1 too.
    out = normalize_contrast(a, high_pct=10.0)
    np.testing.assert_allclose(out[a == 0.55], 1.0, atol=3e-3)
    # low_pct 90: the background level is the ink 0.9 (the top 25 %... 90th percentile), above it no pixel.
    assert not normalize_contrast(a, low_pct=90.0).any()
    # min_range above the 0.7 contrast: no contrast.
    assert not normalize_contrast(a, min_range=0.75).any()
    assert normalize_contrast(a, min_range=0.65).max() == 1.0
    # The same through normalized_ink's float path (a float image in 0..1: gray = 1 - ink).
    gray = 1.0 - a.astype(np.float64)
    np.testing.assert_allclose(normalized_ink(gray, high_pct=10.0)[a == 0.55], 1.0, atol=3e-3)
    assert not normalized_ink(gray, min_range=0.75).any()
    assert not normalized_ink(gray, low_pct=90.0).any()


def test_normalize_contrast_noise_floor() -> None:
    # Background 0.30 (the median) with equal thirds at 0.28 and 0.32: the median absolute deviation is
    # 0.02, robust sigma 0.03, so noise_sigmas 3 zeroes the whole band; noise_sigmas 0 leaves 0.32 above 0.
    a = np.resize(np.array([0.28, 0.30, 0.32], np.float32), (60, 60))
    a[:12] = 0.95  # 20 % ink
    assert np.all(normalize_contrast(a)[12:] == 0.0)
    assert normalize_contrast(a, noise_sigmas=0.0)[12:].max() > 0.0


def test_normalized_ink_uint8_parameters() -> None:
    gray = np.full((20, 50), 204, np.uint8)  # paper: ink 0.2
    gray[:5] = 25  # ink ~0.9
    gray[5:6] = 115  # ink ~0.55
    assert not normalized_ink(gray, min_range=0.75).any()
    assert normalized_ink(gray, high_pct=5.0)[5, 0] == pytest.approx(1.0, abs=3e-3)
    assert normalized_ink(gray)[5, 0] == pytest.approx(0.5, abs=3e-3)
    assert not normalized_ink(gray, low_pct=95.0).any()
    assert not normalized_ink(np.full((3, 3), 90, np.uint8)).any()  # constant: no contrast


# ---------------------------------------------------------------------------------------------------
# resize


def test_ink_box_and_crops_by_construction() -> None:
    a = np.zeros((30, 40), np.float32)
    a[10:14, 5:25] = 1.0
    a[20, 30] = 0.15  # just above the 0.1 ink threshold
    assert ink_box(a) == (10, 21, 5, 31)
    assert ink_box(a, threshold=0.2) == (10, 14, 5, 25)
    assert ink_box(np.full((3, 3), 0.1)) is None  # not *above* the threshold
    assert crop_to_ink(a, margin=0, threshold=0.2).shape == (4, 20)
    assert crop_to_ink(a, margin=3).shape == (11 + 6, 26 + 6)
    with pytest.raises(ValueError, match="margin"):
        crop_to_ink(a, margin=-1)
    # crop_box: clamped at the image edge, or padded with background there.
    assert crop_box(a, (0, 4, 0, 20), margin=2).shape == (6, 22)
    padded = crop_box(a + 0.5, (0, 4, 36, 40), margin=2, pad=True)
    assert padded.shape == (8, 8)
    assert not padded[:2].any() and not padded[:, -2:].any() and padded[2:, :6].min() == 0.5


@pytest.mark.parametrize(
    ("h", "w", "height", "aspect", "expected"),
    [(100, 250, 40, 1.0, 100), (100, 250, 40, 0.5, 50), (10, 3, 2, 1.0, 1), (1000, 1, 20, 1.0, 1), (3, 5, 6, 1.0, 10)],
)
def test_scaled_width_by_hand(h: int, w: int, height: int, aspect: float, expected: int) -> None:
    assert scaled_width(h, w, height, aspect) == expected


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((100, 100), (40, 40)),  # limited by work_height 40
        ((100, 4000), (20, 800)),  # pixel budget sqrt(16000 / 400000) = 0.2 -> 20 rows
        ((100, 10000), (20, 2000)),  # budget 0.126, but never below min_height 20 rows
        ((30, 300), (30, 300)),  # small enough: not scaled
    ],
)
def test_work_copy_size_by_hand(shape: tuple[int, int], expected: tuple[int, int]) -> None:
    out = work_copy(np.ones(shape, np.float32))
    assert out.shape == expected and out.dtype == np.float32


def test_work_copy_crops_with_a_one_pixel_margin() -> None:
    a = np.zeros((50, 60), np.uint8)
    a[20:30, 10:40] = 1
    assert work_copy(a).shape == (12, 32)
    assert work_copy(a, crop=False).shape == (40, 48)  # 50 rows -> 40
    assert work_copy(np.ones((100, 100)), work_height=25).shape == (25, 25)
    assert work_copy(np.ones((100, 4000)), max_pixels=40_000, min_height=10).shape == (32, 1280)


# ---------------------------------------------------------------------------------------------------
# skew and slant


def test_rotate_canvas_by_hand() -> None:
    # A 10 x 40 block turned by -10 degrees about its centre (20, 5): corners reach
    # x = 20 +- (40 cos 10 + 10 sin 10) / 2 = 20 +- 20.57 and y = 5 +- (40 sin 10 + 10 cos 10) / 2 = 5 +- 8.40,
    # so the canvas spans columns -1..41 and rows -4..14: 42 x 18; the area (400) is kept.
    out = rotate(np.ones((10, 40), np.float32), -10.0)
    assert out.shape == (18, 42)
    assert out.sum() == pytest.approx(400.0, rel=0.01)
    # 1 degree: x = 20 +- 20.08 (columns -1..41), y = 5 +- 5.35 (rows -1..11).
    assert rotate(np.ones((10, 40), np.float32), 1.0).shape == (12, 42)


@pytest.mark.parametrize("angle", [-14.0, 13.0])
def test_estimate_skew_max_angle_is_the_search_range(angle: float) -> None:
    a = skewed_stroke(angle)
    assert estimate_skew(a, max_angle=20.0) == pytest.approx(angle, abs=0.5)
    assert estimate_skew(a, max_angle=5.0) == pytest.approx(math.copysign(5.0, angle))
    assert estimate_skew(a, max_angle=0.0) == 0.0
    assert estimate_skew(a, max_angle=45.0) == pytest.approx(angle, abs=0.5)


@pytest.mark.parametrize("bad", [-1.0, 45.5, 46.0])
def test_estimate_skew_rejects_bad_range(bad: float) -> None:
    with pytest.raises(ValueError, match="max_angle"):
        estimate_skew(np.zeros((5, 5)), max_angle=bad)


def test_estimate_slant_max_angle_is_the_search_range() -> None:
    a = slanted_bars(20.0)
    assert estimate_slant(a) == pytest.approx(20.0, abs=1.0)
    assert estimate_slant(a, max_angle=10.0) == pytest.approx(10.0)
    assert estimate_slant(a, max_angle=0.0) == 0.0
    for bad in (-1.0, 90.0):
        with pytest.raises(ValueError, match="max_angle"):
            estimate_slant(a, max_angle=bad)


def test_slant_is_measured_after_undoing_the_skew() -> None:
    # Bars slanted by 20 degrees, then the whole line turned by 6 degrees: once the 6 degrees are undone,
    # the slant is 20 again (without undoing them, the strokes lean about 6 degrees further).
    a = rotate(slanted_bars(20.0, h=80, w=500), 6.0)
    small = work_copy(a)
    assert slant_of_work_copy(small, skew=6.0) == pytest.approx(20.0, abs=1.5)
    assert slant_of_work_copy(small, skew=-6.0) < 17.0


@pytest.mark.parametrize("bad", [90.0, -90.0, 120.0])
def test_shear_rejects_degenerate_angles(bad: float) -> None:
    with pytest.raises(ValueError, match="shear angle"):
        shear(np.ones((3, 3)), bad)


def test_shear_canvas_by_hand() -> None:
    # 10 rows sheared by 45 degrees: the top row moves 10 px right, the canvas widens by 10.
    out = shear(np.ones((10, 5), np.float32), 45.0)
    assert out.shape == (10, 15)
    assert out.sum() == pytest.approx(50.0, rel=0.01)
    assert shear(np.ones((10, 5), np.float32), -45.0).shape == (10, 15)


# ---------------------------------------------------------------------------------------------------
# pipeline


@pytest.mark.parametrize(
    ("ink_h", "height", "expected"),
    [(60, 64, 3), (600, 64, 21), (1, 64, 2), (10, 4, 10), (1, 4, 2), (100, 5, 201)],
)
def test_crop_margin_by_hand(ink_h: int, height: int, expected: int) -> None:
    # height > 4: max(2, ceil(2 ink_h / (height - 4)) + 1); height <= 4: max(2, ink_h).
    assert crop_margin(ink_h, height) == expected


def _profile_peak(out: np.ndarray, axis: int) -> float:
    """Sum of squares of the normalized projection profile: larger when the strokes are aligned to ``axis``."""
    p = out.sum(axis=axis)
    return float((p**2).sum() / p.sum() ** 2)


def test_preprocess_line_straightens_a_skewed_stroke() -> None:
    gray = (255 - 255 * skewed_stroke(8.0, h=80, w=400)).astype(np.uint8)
    cfg = PreprocessConfig(height=32, deslant=False)
    out = preprocess_line(gray, cfg)
    kept = preprocess_line(gray, PreprocessConfig(height=32, deskew=False, deslant=False))
    # Left skewed, the 360-px stroke's ink box is 360 tan 8 + 3 = 54 rows, + 2 x crop_margin(54, 32) = 5:
    # 64 rows -> 32, so 370 columns -> 185. Deskewed, it is 3 to 5 rows + 2 x 2: at most 9 rows -> 32, so
    # about 364 columns -> at least 1294.
    assert out.shape[0] == kept.shape[0] == 32
    assert kept.shape[1] in range(180, 191)
    assert out.shape[1] > 1250


def test_preprocess_line_makes_slanted_bars_upright() -> None:
    gray = (255 - 255 * slanted_bars(25.0)).astype(np.uint8)
    out = preprocess_line(gray, PreprocessConfig(height=40, deskew=False))
    kept = preprocess_line(gray, PreprocessConfig(height=40, deskew=False, deslant=False))
    # Upright bars: each column is all ink or all background, so the column profile is much peakier.
    assert _profile_peak(out, 0) > 1.5 * _profile_peak(kept, 0)
    # Output width: the bars' 0.0 degree footprint, ~ (width of ink box) * 40 / (ink rows + 2 margins).
    assert out.shape[1] < kept.shape[1]


def test_preprocess_line_border_is_background_and_ink_high() -> None:
    gray = np.full((50, 200), 230, np.uint8)
    gray[20:30, 30:170] = 20  # a dark block on light paper
    out = preprocess_line(gray, PreprocessConfig(height=20))
    assert out.shape == (20, out.shape[1]) and out.dtype == np.float32
    # Ink high, background exactly 0, including the whole border.
    assert out.max() == 1.0
    # Without the contrast stretch, ink is 1 - 20 / 255 = 0.922 (resizing averages a flat block to itself).
    raw = preprocess_line(gray, PreprocessConfig(height=20, contrast=False))
    assert raw.max() == pytest.approx(1 - 20 / 255, abs=1e-3)
    assert not out[0].any() and not out[-1].any() and not out[:, 0].any() and not out[:, -1].any()
    # Crop: ink 10 x 140, margin crop_margin(10, 20) = max(2, ceil(20 / 16) + 1) = 3: 16 x 146 -> 20 x 182.5.
    assert out.shape[1] in (182, 183)


# ---------------------------------------------------------------------------------------------------
# Edge cases added after the first hand-applied mutants


def test_shear_by_one_degree_widens_the_canvas() -> None:
    # 10 rows x tan 1 = 0.17 px: the 5-px rows spread over 6 columns.
    assert shear(np.ones((10, 5), np.float32), 1.0).shape == (10, 6)


@pytest.mark.parametrize(
    ("box", "shape"),
    [((0, 4, 10, 20), (8, 14)), ((26, 30, 10, 20), (8, 14)), ((10, 14, 0, 5), (8, 9)), ((10, 14, 35, 40), (8, 9))],
)
def test_crop_box_pads_a_single_edge(box: tuple[int, int, int, int], shape: tuple[int, int]) -> None:
    # Ink touching exactly one edge (top, bottom, left, right) of a 30 x 40 image, margin 2: padded to
    # the box plus 2 on every side, the padding is background, the image's own pixels are kept.
    out = crop_box(np.ones((30, 40), np.float32), box, margin=2, pad=True)
    assert out.shape == shape
    r0, r1, c0, c1 = box
    inside = (min(30, r1 + 2) - max(0, r0 - 2)) * (min(40, c1 + 2) - max(0, c0 - 2))
    assert out.sum() == inside == shape[0] * shape[1] - 2 * (shape[1] if r0 == 0 or r1 == 30 else shape[0])


def test_crop_to_ink_default_margin_is_two() -> None:
    a = np.zeros((30, 40), np.float32)
    a[10:14, 5:25] = 1.0
    assert crop_to_ink(a).shape == (4 + 4, 20 + 4)


def test_to_ink_array_one_pixel_wide_image() -> None:
    np.testing.assert_array_equal(to_ink_array(Image.new("L", (1, 3), 0)), np.ones((3, 1)))


@pytest.mark.parametrize("linear", [[[0.0, 1.0], [-1.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]], [[-1.0, 0.0], [0.0, -1.0]]])
def test_straighten_rejects_quarter_turns_singular_maps_and_half_turns(linear: list[list[float]]) -> None:
    # m11 = 0 (a 90-degree turn), det = 0 (singular), m11 < 0 with det > 0 (a 180-degree turn).
    from htr.preprocess.render import straighten

    with pytest.raises(ValueError, match="cannot straighten"):
        straighten(np.ones((3, 3), np.float32), np.array(linear))


def test_preprocess_line_leaves_an_upright_block_alone() -> None:
    # A rectangle has skew 0 and slant 0 by symmetry: every combination of the two corrections gives the
    # output of neither (no warp is applied for angles that move no pixel by half a pixel).
    # (80 rows: a 1-degree slant would move the corners 42 tan 1 = 0.7 px.)
    gray = np.full((100, 700), 230, np.uint8)  # ink under half the pixels: the median is paper
    gray[10:90, 30:270] = 20
    plain = preprocess_line(gray, PreprocessConfig(height=24, deskew=False, deslant=False))
    assert plain.max() == 1.0
    for deskew, deslant in [(True, False), (False, True), (True, True)]:
        out = preprocess_line(gray, PreprocessConfig(height=24, deskew=deskew, deslant=deslant))
        np.testing.assert_array_equal(out, plain)
