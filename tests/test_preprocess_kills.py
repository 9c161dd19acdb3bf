"""More tests that pin preprocessing behaviour mutation testing found unpinned (issue 16, item 5).

A sibling of ``test_preprocess_mutants.py`` (which grew past 400 lines). As there, every expected value is known
by construction or worked out by hand in a comment; none was produced by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from htr.preprocess import _common, estimate_skew, estimate_slant, normalize_contrast, rotate, shear, to_ink_array
from htr.preprocess._common import ink_points, projection_scores, refine_search
from htr.preprocess.contrast import normalized_ink
from htr.preprocess.pipeline import PreprocessConfig, preprocess_line
from htr.preprocess.render import shear_rows, straighten
from htr.preprocess.resize import crop_box, resize_to_height, scaled_width, work_copy
from htr.preprocess.skew import skew_from_points, skew_of_work_copy
from htr.preprocess.slant import slant_from_points, slant_of_work_copy


def test_shear_rows_shifts_by_hand() -> None:
    # k = 0.5: row y moves round(0.5 (y + 0.5)) = 0, 1, 1, 2 (rint: 0.25 -> 0, 0.75 -> 1, 1.25 -> 1, 1.75 -> 2).
    a = np.arange(1, 9, dtype=np.float32).reshape(4, 2)
    out = shear_rows(a, 0.5)
    expected = np.array([[1, 2, 0, 0], [0, 3, 4, 0], [0, 5, 6, 0], [0, 0, 7, 8]], np.float32)
    np.testing.assert_array_equal(out, expected)


def test_shear_rows_negative_shear_keeps_the_first_rows() -> None:
    # k = -0.3: row y moves round(-0.3 (y + 0.5)) = 0, 0, -1, -1; relative to the least shift: 1, 1, 0, 0.
    a = np.arange(1, 9, dtype=np.float32).reshape(4, 2)
    expected = np.array([[0, 1, 2], [0, 3, 4], [5, 6, 0], [7, 8, 0]], np.float32)
    np.testing.assert_array_equal(shear_rows(a, -0.3), expected)


def test_straighten_returns_float32() -> None:
    out, x_scale, y_scale = straighten(np.ones((4, 6), np.float32), np.array([[1.0, 0.5], [0.25, 1.0]]))
    assert out.dtype == np.float32
    # x_scale = m11 = 1, y_scale = det / m11 = 1 - 0.125.
    assert (x_scale, y_scale) == (1.0, 0.875)


# ---------------------------------------------------------------------------------------------------
# Synthetic images with a known answer


def stroke(angle: float, h: int = 80, w: int = 300, value: float = 1.0, thick: float = 3.0, y0: float | None = None):
    """An ink-high, anti-aliased straight stroke rising at ``angle`` degrees, 20 px from the left and right edges.

    Each pixel holds the fraction of it the stroke covers (its centre line crosses the image's middle, or row
    ``y0``, at the middle column), so the stroke's angle is exact, not rounded to whole pixels.
    """
    a = np.zeros((h, w), np.float32)
    t = math.tan(math.radians(angle))
    rows = np.arange(h)
    mid = h / 2 if y0 is None else y0
    for x in range(20, w - 20):
        yc = mid - (x + 0.5 - w / 2) * t
        a[:, x] = value * np.clip(np.minimum(rows + 1, yc + thick / 2) - np.maximum(rows, yc - thick / 2), 0, 1)
    return a


def to_gray(ink: np.ndarray) -> np.ndarray:
    """Dark ink on white paper, 8-bit: the inverse of ``to_ink_array``."""
    return np.round(255 - 255 * ink).astype(np.uint8)


def centroid(a: np.ndarray) -> tuple[float, float]:
    """``(x, y)`` of the ink's centre of mass, in the continuous pixel frame (pixel centres at ``j + 0.5``)."""
    ys, xs = np.mgrid[: a.shape[0], : a.shape[1]]
    return float((a * (xs + 0.5)).sum() / a.sum()), float((a * (ys + 0.5)).sum() / a.sum())


def bars(lean: float = 0.0, rise: float = 0.0, h: int = 80, w: int = 300) -> np.ndarray:
    """Ink-high 3-pixel-wide bars, 20 rows high and 20 px apart, leaning ``lean`` degrees to the right (tops
    right of bottoms), standing on a baseline that rises ``rise`` degrees to the right (bars stay vertical)."""
    a = np.zeros((h, w), np.float32)
    lean_t, rise_t = math.tan(math.radians(lean)), math.tan(math.radians(rise))
    for x0 in range(30, w - 40, 20):
        bottom = h // 2 + 10 + int(round((w / 2 - x0) * rise_t))
        for y in range(bottom - 20, bottom):
            dx = int(round((bottom - y) * lean_t))
            a[y, x0 + dx : x0 + dx + 3] = 1.0
    return a


# ---------------------------------------------------------------------------------------------------
# _common


def test_dither_is_the_same_sequence_on_every_call() -> None:
    # Fractional parts of k / golden ratio, in [0, 1), read-only, and unchanged when the cache grows.
    first = _common._dither(5).copy()
    n = 2 * _common._DITHER.size + 3  # more than cached: the sequence is regrown
    d = _common._dither(n)
    assert d.size == n and not d.flags.writeable
    np.testing.assert_array_equal(d[:5], first)
    assert d[:3] == pytest.approx([0.0, 0.6180339887, 0.2360679775], abs=1e-9)
    assert d.min() >= 0.0 and d.max() < 1.0


@pytest.mark.parametrize(
    ("u", "oversample", "expected"), [(0.0, 1, 1.0), (0.25, 1, 0.625), (0.0, 2, 20.0), (0.0, 4, 580.0)]
)
def test_projection_scores_of_one_point_by_hand(u: float, oversample: int, expected: float) -> None:
    # One unit point (the dither of the first point is 0). With 1 bin per pixel: no smoothing, and a point a
    # quarter pixel past a bin splits 3/4 : 1/4 (0.5625 + 0.0625). With m bins per pixel, three m-bin boxes:
    # m = 2 gives 1 3 3 1 (sum of squares 20), m = 4 the coefficients of (1 + x + x^2 + x^3)^3,
    # 1 3 6 10 12 12 10 6 3 1 (580).
    s = projection_scores(np.array([u]), np.zeros(1), np.ones(1), np.array([1.0]), np.array([0.0]), oversample)
    assert s.tolist() == [pytest.approx(expected)]


def test_projection_scores_scale_the_first_coordinate() -> None:
    # Projected by 0.5 u + v, (u, v) = (0, 2) and (4, 0) land on the same spot (2): four times one point's
    # score (a bit less: the second point's dither, 0.62 bins x 0.5, spreads the spot), not twice.
    one = projection_scores(np.zeros(1), np.full(1, 2.0), np.ones(1), np.array([0.5]), np.array([1.0]))
    two = projection_scores(np.array([0.0, 4.0]), np.array([2.0, 0.0]), np.ones(2), np.array([0.5]), np.array([1.0]))
    assert 3.5 < two[0] / one[0] <= 4.0


def test_ink_points_bins_pairs_of_columns() -> None:
    a = np.zeros((1, 4), np.float32)
    a[0, 1] = 0.8  # columns 0..1 -> one point at x = 0.5 x 2 = 1, weight 0.4
    x, y, w = ink_points(a, x_bin=2, background=0.0)
    assert x.tolist() == [1.0] and y.tolist() == [0.5] and w == pytest.approx([0.4])


def test_refine_search_edge_cases_by_hand() -> None:
    # No steps: nothing is scanned, the answer is no correction.
    assert refine_search(lambda c: 1.0 - c**2, 10.0, ()) == 0.0
    # Scores below 1 are still scores (only none above 0 means no ink).
    assert refine_search(lambda c: 0.5 - 0.001 * (c - 3.0) ** 2, 10.0, (1.0, 0.25)) == pytest.approx(3.0, abs=1e-6)


@pytest.mark.parametrize("vertex", [4.2, 5.8])
def test_refine_search_refines_a_winner_next_to_the_window_edge(vertex: float) -> None:
    # The first scan (its own score) picks 5, so the second scans 4, 4.25, ..., 6; the quadratic's winner there
    # is the second or the second-to-last candidate (4.25 or 5.75), and the parabola through it and its
    # neighbours still finds the exact vertex.
    coarse = lambda c: 100.0 - (c - 5.0) ** 2  # noqa: E731
    fine = lambda c: 100.0 - (c - vertex) ** 2  # noqa: E731
    assert refine_search([coarse, fine], 10.0, (1.0, 0.25)) == pytest.approx(vertex, abs=1e-6)


def test_shear_of_one_row_keeps_one_row() -> None:
    # The canvas holds the sheared image exactly: 1 row, 5 + tan 30 = 5.58 -> 6 columns.
    assert shear(np.ones((1, 5), np.float32), 30.0).shape == (1, 6)


# ---------------------------------------------------------------------------------------------------
# contrast


@pytest.mark.parametrize(
    ("mode", "raw", "ink"),
    [
        ("I", np.array([[0, 32768, 65535]], np.int32), [1.0, 1 - 32768 / 65535, 0.0]),  # 16-bit data in 'I'
        ("I;16B", np.array([[0, 32768, 65535]], ">u2"), [1.0, 1 - 32768 / 65535, 0.0]),
        ("I;16L", np.array([[0, 32768, 65535]], "<u2"), [1.0, 1 - 32768 / 65535, 0.0]),
        ("F", np.array([[0.25, 1.0]], np.float32), [0.75, 0.0]),
    ],
)
def test_to_ink_array_keeps_the_depth_of_deep_pil_modes(mode: str, raw: np.ndarray, ink: list[float]) -> None:
    # Converted to 8-bit 'L', 32768 and 65535 would both clip to white, and 0.25 would round to black.
    img = Image.frombytes(mode, (raw.shape[1], 1), raw.tobytes())
    np.testing.assert_allclose(to_ink_array(img), [ink], atol=1e-6)


def test_to_ink_array_pil_colour_is_8_bit_gray_and_pa_alpha_is_paper() -> None:
    # PIL's 8-bit luma of pure red: 255 x 299 / 1000 = 76.2 -> 76, so ink 1 - 76 / 255 (not 1 - 0.299).
    assert to_ink_array(Image.new("RGB", (1, 1), (255, 0, 0)))[0, 0] == pytest.approx(1 - 76 / 255, abs=1e-6)
    # A palette + alpha image: a fully transparent black pixel is paper.
    pa = Image.new("PA", (2, 1))
    pa.putpixel((1, 0), (0, 255))
    np.testing.assert_allclose(to_ink_array(pa), [[0.0, 1.0]], atol=1e-6)


def test_to_ink_array_rgba_arrays_ignore_alpha() -> None:
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 1] = (255, 255, 255, 0)  # white (alpha is not read for arrays)
    np.testing.assert_allclose(to_ink_array(rgba), [[1.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize(
    ("raw", "ink"),
    [
        (np.array([[0, 256]], np.int32), [1.0, 1 - 256 / 65535]),  # above 255: 16-bit data
        (np.array([[-5, 255]], np.int32), [1.0, 0.0]),  # below 0: black
        (np.array([[0, 70000]], np.int32), [1.0, 0.0]),  # above 65535: white
        (np.array([[0.0, 1.5]], np.float32), [1.0, 1 - 1.5 / 255]),  # any float above 1: 0..255 data
        (np.array([[0.0, 255.0]], np.float32), [1.0, 0.0]),
        (np.array([[0.0, 300.0]], np.float32), [1.0, 0.0]),  # above 255: white
    ],
)
def test_to_ink_array_value_ranges(raw: np.ndarray, ink: list[float]) -> None:
    np.testing.assert_allclose(to_ink_array(raw), [ink], atol=1e-6)


def _median_then_ink(levels: tuple[float, float, float]) -> np.ndarray:
    """1000 pixels: 499 at ``levels[0]``, 2 at ``levels[1]``, 499 at ``levels[2]``."""
    return np.repeat(np.asarray(levels), [499, 2, 499]).reshape(20, 50)


def test_background_is_the_50th_percentile() -> None:
    # 499 of 1000 pixels fall short of half: the background level is the middle value (the 2 pixels at 0.3),
    # so they map to 0 and the 0.1 ones below them too; the 0.9 ink maps to 1. (noise_sigmas 0: no noise band.)
    a = _median_then_ink((0.1, 0.3, 0.9)).astype(np.float32)
    out = normalize_contrast(a, noise_sigmas=0.0)
    assert not out[a < 0.5].any() and np.all(out[a == np.float32(0.9)] == 1.0)
    # The same through the 8-bit path: paper 230 (ink 0.098), 178 (0.302), ink 25 (0.902).
    gray = _median_then_ink((230, 178, 25)).astype(np.uint8)
    out = normalized_ink(gray, noise_sigmas=0.0)
    assert not out[gray > 100].any() and np.all(out[gray == 25] == 1.0)


def test_levels_of_a_binary_image_by_hand() -> None:
    # Background 0 (bin 0), ink exactly 1 (the last bin, 1023) and one pixel at 0.5. The floor is the upper
    # edge of the background bin, 1 / 1024, the ink level the centre of bin 1023, 1023.5 / 1024, so 0.5 maps to
    # (512 - 1) / (1023.5 - 1) = 511 / 1022.5.
    a = np.zeros((10, 10), np.float32)
    a[:3] = 1.0
    a[5, 5] = 0.5
    assert normalize_contrast(a)[5, 5] == pytest.approx(511 / 1022.5, abs=1e-6)


def test_noise_band_is_three_robust_sigmas() -> None:
    # Background 0.30 with thirds at 0.28 and 0.32 (bins 307, 286, 327): the median distance is 20 bins,
    # sigma = 1.4826 x 20 = 29.7 bins, the floor 307 + ceil(3 x 29.7) = 396, i.e. 397 / 1024 = 0.3877. The
    # ink level is the centre of 0.95's bin 972, so 0.42 maps to (0.42 - 0.3877) / (0.9497 - 0.3877) = 0.057.
    a = np.resize(np.array([0.28, 0.30, 0.32], np.float32), (60, 60))
    a[:11] = 0.95
    a[11] = 0.42
    assert normalize_contrast(a)[11, 0] == pytest.approx(0.057, abs=0.005)


def test_min_range_is_a_strict_bound() -> None:
    # Background 0 (floor 1 / 1024) and ink in bin 21 (level 21.5 / 1024): a range of exactly 20.5 / 1024.
    a = np.zeros((10, 10), np.float32)
    a[:3] = 21.3 / 1024
    # (21.3 - 1) / (21.5 - 1): just under 1, since the ink lies below its bin's centre.
    assert normalize_contrast(a, min_range=20.5 / 1024).max() == pytest.approx(20.3 / 20.5, abs=1e-5)
    assert not normalize_contrast(a, min_range=20.6 / 1024).any()


def test_levels_tolerate_values_below_zero() -> None:
    # Slightly negative input (a filter's undershoot) counts in the lowest bin.
    a = np.zeros((10, 10), np.float32)
    a[:5] = -0.01
    a[8:] = 0.9
    assert normalize_contrast(a)[9, 0] == 1.0


def test_levels_are_read_off_every_stride_th_pixel() -> None:
    # 400 x 500 = 200,000 pixels: stride ceil(sqrt(200,000 / 40,000)) = 3 in both directions. Ink exactly on
    # that grid is all the sample sees: no background in it, so no contrast. (Counted on all pixels, or on
    # every row or every column, the ink would be 1/9 or 1/3 of them and map to 1.)
    a = np.zeros((400, 500), np.float32)
    a[::3, ::3] = 0.9
    assert not normalize_contrast(a).any()
    assert not normalized_ink(np.where(a > 0, 25, 230).astype(np.uint8)).any()


def test_normalized_ink_without_contrast_is_float32() -> None:
    out = normalized_ink(np.full((3, 4), 90, np.uint8))
    assert out.dtype == np.float32 and out.shape == (3, 4) and not out.any()


# ---------------------------------------------------------------------------------------------------
# resize


def test_resize_defaults_by_hand() -> None:
    a = np.zeros((30, 40), np.float32)
    a[10:14, 5:25] = 1.0
    assert crop_box(a, (10, 14, 5, 25)).shape == (4, 20)  # no margin by default
    assert scaled_width(100, 250, 40) == 100  # square pixels by default
    assert work_copy(np.ones((100, 100), np.float32), work_height=1).shape == (1, 1)


def test_resize_to_height_keeps_uint8_and_makes_float32_when_nothing_changes() -> None:
    assert resize_to_height(np.zeros((10, 20), np.uint8), 10).dtype == np.uint8
    assert resize_to_height(np.zeros((10, 20), np.float64), 10).dtype == np.float32


def test_resize_to_height_default_filter_never_overshoots_uint8() -> None:
    # Upscaling a step from 50 to 200 by 4: bilinear stays within [50, 200] (a cubic filter would ring).
    out = resize_to_height(np.array([[50, 50, 200, 200]] * 2, np.uint8), 8)
    assert out.dtype == np.uint8 and out.min() == 50 and out.max() == 200


# ---------------------------------------------------------------------------------------------------
# skew


@pytest.mark.parametrize(("angle", "expected"), [(30.0, (23.0, 19.0)), (-20.0, (23.0, 17.0))])
def test_rotate_turns_about_the_image_centre(angle: float, expected: tuple[float, float]) -> None:
    # A block centred in a 20 x 40 image: turned about the centre (20, 10), it stays centred there. The canvas
    # starts at floor(centre - half the turned extent): at 30 degrees, x: 20 - (40 cos 30 + 20 sin 30) / 2 =
    # -2.32 -> -3, y: 10 - (40 sin 30 + 20 cos 30) / 2 = -8.66 -> -9, so the centre lands at (23, 19); at -20,
    # x: 20 - 22.21 -> -3, y: 10 - 16.24 -> -7: (23, 17). Bilinear resampling keeps the centre of mass.
    a = np.zeros((20, 40), np.float32)
    a[7:13, 17:23] = 1.0
    assert centroid(rotate(a, angle)) == pytest.approx(expected, abs=0.01)


def test_skew_max_angle_defaults_to_ten_degrees() -> None:
    # A stroke at 14 degrees lies beyond the default range: every entry point ends at its edge, 10.
    small = work_copy(stroke(14.0))
    assert estimate_skew(stroke(14.0)) == 10.0
    assert skew_of_work_copy(small) == 10.0
    assert skew_from_points(*ink_points(small)) == 10.0  # also without a coarse point set


def test_skew_coarse_points_choose_the_neighbourhood() -> None:
    # The coarse scan sees a stroke at -6 degrees and the fine scan one at +3: the fine scan only searches
    # -6 +- 1 (the first step), so it ends at that window's edge nearest to 3, -5 (not at 3).
    fine = ink_points(work_copy(stroke(3.0)))
    coarse = ink_points(work_copy(stroke(-6.0)))
    assert skew_from_points(*fine, coarse=coarse) == -5.0
    assert skew_from_points(*fine) == pytest.approx(3.0, abs=0.1)


def test_skew_of_work_copy_uses_the_given_background() -> None:
    # A work-copy-sized image with a thick faint band (0.3, 10 rows) at -4 degrees and a thin stronger stroke
    # (0.6, 2 rows) at +4. With the median (0) as background the band outweighs the stroke (10 x 0.3^2 >
    # 2 x 0.6^2); given 0.3 as background, the band is no ink at all and only the stroke's angle remains.
    band = stroke(-4.0, h=40, w=200, value=0.3, thick=10.0, y0=11.0)
    a = np.maximum(band, stroke(4.0, h=40, w=200, value=0.6, thick=2.0, y0=30.0))
    assert skew_of_work_copy(a) == pytest.approx(-4.0, abs=0.2)
    assert skew_of_work_copy(a, background=0.3) == pytest.approx(4.0, abs=0.2)


def test_estimate_skew_work_height() -> None:
    # Downscaled to a single row, a line has no slope left to measure.
    assert estimate_skew(stroke(5.0), work_height=1) == pytest.approx(0.0, abs=0.05)
    assert estimate_skew(stroke(5.0), work_height=20) == pytest.approx(5.0, abs=0.2)


# ---------------------------------------------------------------------------------------------------
# slant


def test_slant_max_angle_defaults_to_45_degrees() -> None:
    # Bars leaning 50 degrees lie beyond the default range: every entry point ends at its edge, 45.
    small = work_copy(bars(lean=50.0))
    assert estimate_slant(bars(lean=50.0)) == 45.0
    assert slant_of_work_copy(small) == 45.0
    assert slant_from_points(*ink_points(small)) == 45.0  # also without a coarse subset


def test_slant_coarse_subset_chooses_the_neighbourhood() -> None:
    # Bars leaning +20 degrees and, twice as heavy, bars leaning -20: with all points the heavy ones win;
    # with a coarse scan over the +20 bars only, the fine scan searches 20 +- 4 (the first step) and stays there.
    x1, y1, w1 = ink_points(bars(lean=20.0, h=40), background=0.0)
    x2, y2, w2 = ink_points(np.roll(bars(lean=-20.0, h=40), 10, axis=1), background=0.0)
    x, y, w = np.r_[x1, x2], np.r_[y1, y2], np.r_[w1, 2 * w2]
    assert slant_from_points(x, y, w) == pytest.approx(-20.0, abs=1.0)
    assert 16.0 <= slant_from_points(x, y, w, coarse=np.arange(x1.size)) <= 24.0


def test_slant_of_work_copy_uses_the_given_background() -> None:
    # Three times as many faint bars (0.3) leaning -20 degrees as stronger ones (0.4) leaning +20: with the
    # median (0) as background the faint bars outweigh the others (3 x 0.3^2 > 0.4^2); given 0.3, they are no
    # ink at all.
    faint = 0.3 * bars(lean=-20.0, h=40)
    a = np.hstack([faint, faint, faint, 0.4 * bars(lean=20.0, h=40)])
    assert slant_of_work_copy(a) == pytest.approx(-20.0, abs=1.0)
    assert slant_of_work_copy(a, background=0.3) == pytest.approx(20.0, abs=1.0)


def test_estimate_slant_work_height() -> None:
    # Downscaled to a single row, the bars have no height left to lean over.
    assert estimate_slant(bars(lean=20.0), work_height=1) == 0.0
    assert estimate_slant(bars(lean=20.0), work_height=20) == pytest.approx(20.0, abs=1.0)


# ---------------------------------------------------------------------------------------------------
# pipeline


def test_preprocess_line_final_resize_keeps_the_true_aspect() -> None:
    # A stroke at 12 degrees, beyond the pipeline's 10-degree search range: the skew found is exactly 10.
    # Its ink box is rows 12..69 and columns 20..279 (58 x 260), cut with a 2-pixel margin: 62 x 264. Undoing
    # 10 degrees: rows shift by round(-tan 10 (y + 0.5)), 0 .. -11, so 264 + 11 = 275 columns; then columns
    # shift by round(sin 10 cos 10 (x + 0.5)), 0 .. 47, so 62 + 47 = 109 rows. Those shears leave columns
    # scaled by 1 / cos 10 and rows by cos 10, which the resize to 64 rows undoes (aspect cos^2 10 = 0.9698):
    # 275 x 0.9698 x 64 / 109 = 156.6 -> 157 columns (161 with square pixels). crop=False keeps that canvas.
    gray = to_gray(stroke(12.0))
    cfg = PreprocessConfig(height=64, contrast=False, deslant=False, crop=False)
    assert preprocess_line(gray, cfg).shape == (64, 157)


@pytest.mark.parametrize(("angle", "warped"), [(0.1, False), (0.2, True)])
def test_preprocess_line_skips_a_warp_that_moves_no_pixel_by_half_a_pixel(angle: float, warped: bool) -> None:
    # The 360-px stroke cut with its 2-pixel margin is 364 columns wide: undoing a skew t moves its corners
    # by about 182 tan t pixels, 0.32 at 0.1 degree (under half a pixel: left alone) and 0.64 at 0.2 degree.
    gray = to_gray(stroke(angle, h=40, w=400))
    out = preprocess_line(gray, PreprocessConfig(height=32, contrast=False, deslant=False))
    kept = preprocess_line(gray, PreprocessConfig(height=32, contrast=False, deskew=False, deslant=False))
    assert np.array_equal(out, kept) is not warped


def test_preprocess_line_without_crop_keeps_an_upright_image_whole() -> None:
    # An upright block (skew and slant 0): nothing is warped, so nothing is cut either: the whole 100 x 700
    # image is resized to 24 rows, 700 x 24 / 100 = 168 columns.
    gray = np.full((100, 700), 230, np.uint8)
    gray[10:90, 30:270] = 20
    out = preprocess_line(gray, PreprocessConfig(height=24, crop=False))
    assert out.shape == (24, 168)
    np.testing.assert_array_equal(out, preprocess_line(gray, PreprocessConfig(height=24, crop=False, deskew=False)))


def test_preprocess_line_deslant_alone_leaves_the_skew() -> None:
    # Upright bars on a baseline rising 6 degrees: slant 0, so deslanting alone changes nothing. (Undoing the
    # skew too would put the baseline level: the ink box would shrink from 20 + 220 tan 6 = 43 rows to 20.)
    gray = to_gray(bars(rise=6.0))
    kept = preprocess_line(gray, PreprocessConfig(height=32, contrast=False, deskew=False, deslant=False))
    out = preprocess_line(gray, PreprocessConfig(height=32, contrast=False, deskew=False))
    np.testing.assert_array_equal(out, kept)


def test_preprocess_line_deskew_alone_leaves_the_slant() -> None:
    # Bars leaning 25 degrees on a level baseline: skew 0, so deskewing alone leaves them leaning.
    gray = to_gray(bars(lean=25.0))
    kept = preprocess_line(gray, PreprocessConfig(height=32, contrast=False, deskew=False, deslant=False))
    out = preprocess_line(gray, PreprocessConfig(height=32, contrast=False, deslant=False))
    np.testing.assert_array_equal(out, kept)
