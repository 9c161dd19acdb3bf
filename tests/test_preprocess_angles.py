"""Tests that pin skew, slant and pipeline behaviour mutation testing found unpinned (issue 16, item 5).

A sibling of ``test_preprocess_kills.py``. The images are drawn with a known answer: anti-aliased strokes at an
exact angle, bars with a chosen lean on a chosen baseline; sizes and angles below are worked out by hand in the
comments, none was produced by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from htr.preprocess import estimate_skew, estimate_slant, rotate
from htr.preprocess._common import ink_points
from htr.preprocess.pipeline import PreprocessConfig, preprocess_line
from htr.preprocess.resize import work_copy
from htr.preprocess.skew import skew_from_points, skew_of_work_copy
from htr.preprocess.slant import slant_from_points, slant_of_work_copy

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
