"""The 8-bit path of the preprocessing pipeline (htr.preprocess.lineink) against the float functions it replaces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import htr.preprocess._common as common
import htr.preprocess._profiles as _profiles
from htr.preprocess import PreprocessConfig, preprocess_line
from htr.preprocess.contrast import normalized_ink
from htr.preprocess.lineink import LineInk
from htr.preprocess.pipeline import crop_margin
from htr.preprocess.render import straighten
from htr.preprocess.resize import crop_box, ink_box, level_box, resize_to_height, work_copy
from htr.preprocess.skew import rotate, rotation_matrix, skew_of_work_copy
from htr.preprocess.slant import shear, shear_matrix, slant_of_work_copy
from tests.test_preprocess import render_line


def _line(slant: float = 0.0, skew: float = 0.0, pad: int = 0, noise: float = 4.0) -> Image.Image:
    """A rendered line (8-bit, noisy paper), slanted and rotated, with ``pad`` paper columns kept at its ends."""
    ink = np.asarray(render_line(), dtype=np.float32) / 255.0
    ink = rotate(shear(1.0 - ink, slant), skew)
    g = 255.0 * (1.0 - ink) + np.random.default_rng(0).normal(0.0, noise, ink.shape)
    g = np.clip(np.rint(g), 0, 255).astype(np.uint8)
    cols = np.flatnonzero((g < 128).any(axis=0))
    return Image.fromarray(g[:, max(0, cols[0] - pad) : cols[-1] + 1 + pad])


def _float_pipeline(img: Image.Image, height: int = 48) -> np.ndarray:
    """preprocess_line with the default settings, composed of the float-image functions (the pre-8-bit code)."""
    a = normalized_ink(img)
    box = ink_box(a)
    ink = crop_box(a, box, margin=2)
    small = work_copy(crop_box(a, box, margin=1), crop=False)
    bg = float(np.median(small))
    skew = skew_of_work_copy(small, background=bg)
    slant = slant_of_work_copy(small, skew, background=bg)
    linear = shear_matrix(-slant, 0)[:2, :2] @ rotation_matrix(-skew, 0, 0)[:2, :2]
    h, w = ink.shape
    corners = np.array([[-w, -w, w, w], [-h, h, -h, h]], dtype=np.float64) / 2.0
    x_scale = y_scale = 1.0
    if np.abs((linear - np.eye(2)) @ corners).max() >= 0.5:
        a, x_scale, y_scale = straighten(ink, linear)
    box = ink_box(a)
    a = crop_box(a, box, margin=crop_margin(round((box[1] - box[0]) * y_scale), height), pad=True)
    return np.clip(resize_to_height(a, height, aspect=x_scale / y_scale), 0.0, 1.0)


@pytest.mark.parametrize(("slant", "skew", "pad"), [(0.0, 0.0, 30), (25.0, 3.0, 0), (-20.0, -5.0, 1)])
def test_pipeline_output_is_exactly_the_float_pipeline(slant: float, skew: float, pad: int) -> None:
    img = _line(slant, skew, pad)
    out = preprocess_line(img, PreprocessConfig(height=48))
    np.testing.assert_array_equal(out, _float_pipeline(img))
    assert out.flags.writeable and out.dtype == np.float32


@pytest.mark.parametrize("pad", [0, 30])  # ink at the image's edge: crops are clamped or padded there
def test_line_ink_crops_are_crops_of_the_float_image(pad: int) -> None:
    img = _line(15.0, 2.0, pad)
    a, src = normalized_ink(img), LineInk.of(img)
    box = src.box()
    assert box == ink_box(a)
    for margin in (0, 2, 7):
        np.testing.assert_array_equal(src.crop(box, margin, pad=True), crop_box(a, box, margin, pad=True))
        np.testing.assert_array_equal(src.crop(box, margin), crop_box(a, box, margin))
        expected = resize_to_height(crop_box(a, box, margin, pad=True), 32, aspect=1.3)
        np.testing.assert_array_equal(src.resized(box, margin, 32, aspect=1.3), expected)
    np.testing.assert_array_equal(src.work_copy(box), work_copy(crop_box(a, box, 1), crop=False))
    np.testing.assert_array_equal(src.full(), a)


def test_straightening_the_levels_moves_the_same_pixels() -> None:
    img = _line(pad=2)
    a, src = normalized_ink(img), LineInk.of(img)
    box = src.box()
    linear = shear_matrix(-20.0, 0)[:2, :2] @ rotation_matrix(4.0, 0, 0)[:2, :2]
    moved, x_scale, y_scale = src.straightened(box, linear)
    expected, ex, ey = straighten(crop_box(a, box, 2), linear)
    assert moved.levels.dtype == np.uint8 and (x_scale, y_scale) == (ex, ey)
    np.testing.assert_array_equal(moved.full(), expected)  # uncovered corners included: background, 0
    assert moved.box() == ink_box(expected)


def test_blank_and_float_images() -> None:
    blank = LineInk.of(Image.new("L", (50, 20), 200))
    assert blank.box() is None and not blank.full().any()
    page = np.ones((20, 50), np.float32)
    page[5:9, 10:30] = 0.0  # dark ink on white paper
    src = LineInk.of(page, contrast=False)  # float ink, no table: the float functions themselves
    assert src.table is None and src.box() == (5, 9, 10, 30)
    expected = crop_box(1.0 - page, (5, 9, 10, 30), 8, pad=True)
    np.testing.assert_array_equal(src.crop((5, 9, 10, 30), 8, pad=True), expected)


def test_level_box_is_the_box_of_the_levels_below_n() -> None:
    rng = np.random.default_rng(3)
    g = rng.integers(100, 256, (30, 70)).astype(np.uint8)
    g[7, 12], g[21, 50], g[15, 33] = 3, 40, 90
    for n in (4, 41, 91, 100):
        assert level_box(g, n) == ink_box((g < n).astype(np.float32), 0.5)
    assert level_box(g, 3) is None


def test_crop_box_pads_with_the_fill_value() -> None:
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = crop_box(a, (0, 3, 0, 4), margin=1, pad=True, fill=255)
    assert out.shape == (5, 6) and (out[0] == 255).all() and (out[:, -1] == 255).all()
    np.testing.assert_array_equal(out[1:4, 1:5], a)


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8, 12, 16, 32, 64])
def test_bin_columns_is_numpys_mean(n: int) -> None:
    a = np.random.default_rng(n).random((9, n * 13)).astype(np.float32)
    np.testing.assert_array_equal(common._bin_columns(a, n), a.reshape(9, -1, n).mean(axis=2))


@pytest.mark.parametrize(
    "values",
    [[0, 0, 0, 0.5, 0.2], [0, 0, 0.3, 0.5], [0, 0, 0, 0.3, 0.5, 0.1], [0.2, 0.4, 0.1], [0, 0, 0, -0.5, 0.2], [0.0]],
)
def test_median_level_is_the_median(values: list[float]) -> None:
    a = np.array(values, dtype=np.float32).reshape(1, -1)
    assert common.median_level(a) == float(np.median(a))


def test_coordinates_blas_and_einsum_agree() -> None:
    rng = np.random.default_rng(5)
    coeffs, points = rng.normal(size=(7, 3)), rng.normal(size=(3, 500))
    expected = np.einsum("kj,jn->kn", coeffs, points).ravel()
    np.testing.assert_allclose(_profiles.coordinates(coeffs, points), expected, rtol=1e-12)  # the BLAS product
    np.testing.assert_allclose(_profiles.coordinates(coeffs[:1], points), expected[:500], rtol=1e-12)  # one row
    assert math.isclose(float(_profiles.coordinates(coeffs, points)[3]), float(coeffs[0] @ points[:, 3]))
