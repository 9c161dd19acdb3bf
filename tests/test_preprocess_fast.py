"""Tests for the fast paths of htr.preprocess: shear-based straightening, table-based contrast, batched scoring."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import htr.preprocess._common as common
import htr.preprocess._profiles as _profiles
from htr.preprocess import contrast, normalize_contrast, to_ink_array
from htr.preprocess.contrast import normalized_ink
from htr.preprocess.render import shear_cols, shear_rows, straighten
from htr.preprocess.resize import resize_to_height
from htr.preprocess.skew import rotation_matrix
from htr.preprocess.slant import shear_matrix
from tests.test_preprocess import render_line


def test_shear_rows_shifts_every_row_by_its_rounded_amount() -> None:
    a = np.arange(1, 5 * 7 + 1, dtype=np.float32).reshape(5, 7)
    k = 0.7
    out = shear_rows(a, k)
    shifts = [round(k * (y + 0.5)) for y in range(5)]
    shifts = [s - min(shifts) for s in shifts]
    assert out.shape == (5, 7 + max(shifts))
    for y, d in enumerate(shifts):
        np.testing.assert_array_equal(out[y, d : d + 7], a[y])
        assert out[y].sum() == a[y].sum()  # the rest of the row is background
    back = shear_cols(a.T, k)
    np.testing.assert_array_equal(back, out.T)


def test_negative_shears_shift_the_other_way() -> None:
    a = np.zeros((11, 3), np.float32)
    a[:, 1] = 1.0  # a vertical bar
    out = shear_rows(a, -1.0)
    cols = [int(np.flatnonzero(row)[0]) for row in out]
    assert cols == sorted(cols, reverse=True) and cols[0] - cols[-1] == 10  # the top row moved farthest right


@pytest.mark.parametrize(
    ("slant", "skew", "tolerance"),
    [(25.0, 0.0, 1.0), (-30.0, 2.0, 1.0), (10.0, -4.0, 1.0), (0.0, 6.0, 1.0),
     (30.0, 40.0, 1.5), (-35.0, -50.0, 1.5)],  # far from 0 the axis rescaling stretches the two roundings
)  # fmt: skip
def test_straighten_moves_dots_where_the_linear_map_sends_them(slant: float, skew: float, tolerance: float) -> None:
    """Independent check: isolated dots land where ``linear`` maps them, up to the axis scaling and a shift."""
    h, w = 60, 400
    dots = [(5, 20), (50, 30), (10, 380), (55, 390), (30, 200)]
    a = np.zeros((h, w), np.float32)
    for y, x in dots:
        a[y, x] = 1.0
    linear = shear_matrix(-slant, 0)[:2, :2] @ rotation_matrix(-skew, 0, 0)[:2, :2]
    out, x_scale, y_scale = straighten(a, linear)
    assert out.sum() == pytest.approx(len(dots))  # whole-pixel shifts: nothing blurred, nothing lost
    found = np.argwhere(out > 0.5)
    assert len(found) == len(dots)
    expected = np.array([linear @ (x + 0.5, y + 0.5) for y, x in dots]) / (x_scale, y_scale)
    got = np.array(sorted(((c + 0.5, r + 0.5) for r, c in found), key=lambda p: p[0]))
    expected = expected[np.argsort(expected[:, 0])]
    offset = (got - expected).mean(axis=0)
    assert np.abs(got - expected - offset).max() <= tolerance  # two roundings of half a pixel (rescaled)


def test_straighten_rejects_a_map_that_flips() -> None:
    with pytest.raises(ValueError, match="cannot straighten"):
        straighten(np.ones((4, 4), np.float32), np.array([[-1.0, 0.0], [0.0, 1.0]]))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda g: Image.fromarray(g), id="pil-L"),
        pytest.param(lambda g: g, id="uint8-array"),
        pytest.param(lambda g: Image.fromarray(g).convert("RGB"), id="pil-RGB"),
        pytest.param(lambda g: np.stack([g, g, g], axis=-1), id="rgb-array"),
        pytest.param(lambda g: g.astype(np.uint16) * 257, id="uint16"),
        pytest.param(lambda g: g.astype(np.float64) / 255.0, id="float"),
    ],
)
@pytest.mark.parametrize(("paper", "ink", "noise"), [(255, 0, 0.0), (200, 150, 3.0), (128, 128, 0.0)])
def test_normalized_ink_is_exactly_the_two_step_conversion(make, paper: int, ink: int, noise: float) -> None:
    rng = np.random.default_rng(0)
    g = np.asarray(render_line(ink=ink, paper=paper), dtype=np.float64) + rng.normal(0.0, noise, (100, 1))
    g = np.clip(np.rint(g), 0, 255).astype(np.uint8)
    img = make(g)
    np.testing.assert_array_equal(normalized_ink(img), normalize_contrast(to_ink_array(img)))


def test_projection_scores_do_not_depend_on_the_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    u, v, w = rng.uniform(0, 300, 500), rng.uniform(0, 40, 500), rng.uniform(0.1, 1.0, 500)
    t = np.tan(np.deg2rad(np.arange(-45.0, 46.0, 3.0)))
    whole = common.projection_scores(u, v, w, np.ones_like(t), t)
    monkeypatch.setattr(common, "_SPLATS", 1200)  # two candidates per batch
    np.testing.assert_allclose(common.projection_scores(u, v, w, np.ones_like(t), t), whole, rtol=1e-12)
    assert np.argmax(whole) != 0 and whole.min() > 0


def test_refine_search_uses_one_score_function_per_step() -> None:
    calls = []

    def scorer(name: str, peak: float):
        def score(angles: np.ndarray) -> np.ndarray:
            calls.append((name, angles.size))
            return 100.0 - (angles - peak) ** 2

        return score

    # The coarse criterion finds the neighbourhood (about 8); the fine one, scanned around it, decides.
    best = common.refine_search([scorer("coarse", 8.3), scorer("fine", 9.6)], 20.0, (4.0, 1.0))
    assert [name for name, _ in calls] == ["coarse", "fine"]
    assert best == pytest.approx(9.6, abs=1e-6)
    with pytest.raises(ValueError, match="2 score functions for 3 steps"):
        common.refine_search([scorer("a", 0.0), scorer("b", 0.0)], 10.0, (4.0, 1.0, 0.25))


def test_resize_to_height_with_non_square_pixels() -> None:
    a = np.ones((20, 100), np.float32)
    assert resize_to_height(a, 10, aspect=1.2).shape == (10, 60)
    assert resize_to_height(a, 10).shape == (10, 50)


def test_splat_by_bincount_is_add_at() -> None:
    # The fallback for numpy < 1.25 sums the same weights into the same bins, also into a view (the next bins).
    rng = np.random.default_rng(7)
    idx, weights = rng.integers(0, 40, 300), rng.uniform(0.1, 1.0, 300)
    expected, out = np.zeros(50), np.zeros(50)
    np.add.at(expected[1:], idx, weights)
    _profiles._splat_bincount(out[1:], idx, weights)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert out[0] == 0.0 and out[1:41].sum() == pytest.approx(weights.sum())


@pytest.mark.parametrize("center", [0, 2, 300, 700])
def test_contrast_noise_window_by_slices(center: int) -> None:
    # within[d]: pixels at most d bins from the background bin, as the earlier fancy-indexed formula counted them;
    # the background is spread over a dozen bins (clipped at bin 0), so the noise level is several bins.
    rng = np.random.default_rng(center)
    hist = rng.integers(0, 3, 1024)
    for j in range(-6, 7):
        hist[max(0, center + j)] += 900 - 60 * abs(j)
    hist[900:1000] += 40  # the ink
    cum = np.cumsum(hist)
    n, d = int(cum[-1]), np.arange(1024)
    bg_bin = int(np.searchsorted(cum, 0.5 * n))
    within = cum[np.minimum(bg_bin + d, 1023)] - cum[np.clip(bg_bin - d - 1, 0, None)] * (bg_bin - d - 1 >= 0)
    mad = int(np.searchsorted(within, 0.5 * n))
    sigma = 1.4826 * mad / 1024
    floor_bin = bg_bin + int(np.ceil(3.0 * sigma * 1024))
    assert mad >= 2 and floor_bin < 900
    assert contrast._levels(hist, 50.0, 80.0, 3.0, 0.02)[0] == (floor_bin + 1) / 1024


def test_coarse_skew_bins_are_means_of_the_fine_bins() -> None:
    a = np.random.default_rng(3).random((6, 203)).astype(np.float32)  # 203: padded to 204, then to 208 columns
    direct = common.bin_columns(a, 16, 0.25)
    twice = common.bin_columns(common.bin_columns(a, 4, 0.25), 4, 0.25)
    assert twice.shape == direct.shape == (6, 13)
    np.testing.assert_allclose(twice, direct, rtol=1e-6)
    assert direct[:, -1] == pytest.approx(twice[:, -1]) and common.bin_columns(a, 1, 0.0) is a


def test_binned_points_rows_and_columns_of_a_wide_image() -> None:
    a = np.zeros((7, 4099), np.float32)  # the row of a flat index from a float quotient, exact at every column
    cells = [(0, 0), (0, 4098), (3, 0), (3, 4097), (6, 4098), (5, 2049)]
    for r, c in cells:
        a[r, c] = 0.5
    x, y, w = common.binned_points(a, 0.0, 1)
    assert list(zip(y.tolist(), x.tolist())) == [(r + 0.5, c + 0.5) for r, c in sorted(cells)]
    assert w.dtype == np.float64 and (w == 0.5).all()
    x4, _, _ = common.binned_points(common.bin_columns(a, 4, 0.0), 0.0, 4, min_weight=0.1)
    assert x4.tolist() == [2.0, 4098.0, 2.0, 4098.0, 2050.0, 4098.0]  # bin centres: (col // 4 + 0.5) * 4
