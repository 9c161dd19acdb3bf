"""More tests that pin preprocessing behaviour mutation testing found unpinned (issue 16, item 5): render,
``_common``, contrast and resize. Skew, slant and the pipeline: ``test_preprocess_angles.py``.

Siblings of ``test_preprocess_mutants.py`` (which grew past 400 lines). As there, every expected value is known
by construction or worked out by hand in a comment; none was produced by the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from htr.preprocess import _common, normalize_contrast, rotate, shear, to_ink_array
from htr.preprocess._common import ink_points, projection_scores, refine_search
from htr.preprocess.contrast import normalized_ink
from htr.preprocess.render import shear_rows, straighten
from htr.preprocess.resize import crop_box, resize_to_height, scaled_width, work_copy


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


@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.bool_])
def test_zero_turns_and_shears_still_return_float32(dtype: type) -> None:
    a = np.ones((2, 3), dtype)
    for out in (rotate(a, 0.0), shear(a, 0.0), _common.as_float32(a)):
        assert out.dtype == np.float32 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, np.ones((2, 3)))


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


@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_dark_16_bit_data_stays_16_bit_in_either_byte_order(dtype: str) -> None:
    # Values that would fit in 8 bits are still 16-bit data: 200 of 65535 is nearly white, not 78% gray.
    dark = np.array([[0, 200]], dtype)
    np.testing.assert_allclose(to_ink_array(dark), [[1.0, 1 - 200 / 65535]], atol=1e-6)
    img = Image.frombytes("I;16B" if dtype == ">u2" else "I;16", (2, 1), dark.tobytes())
    np.testing.assert_allclose(to_ink_array(img), [[1.0, 1 - 200 / 65535]], atol=1e-6)


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
