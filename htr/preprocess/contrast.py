"""Grayscale conversion, ink-high inversion and robust contrast normalization."""

from __future__ import annotations

import numpy as np
from PIL import Image

from htr.errors import ImageError
from htr.imageio import flatten_on_white, is_see_through
from htr.preprocess._common import check_2d

#: Number of histogram bins used for the percentile estimates of :func:`normalize_contrast`.
_BINS = 1024
#: Bins of the five gray levels just below pure white (250-254 of 255), and how many times their pixel count pure
#: white must hold to be taken for a fill rather than the paper's noise (see ``_levels``).
_NEAR_WHITE_BINS = int(5 / 255 * _BINS) + 1
_FILL_SPIKE = 4
#: When a fill is most of the box, the value above which the polygon's own paper, under the levels of the fill's
#: white, counts as ink and the levels are taken from the polygon instead (see ``_levels``). At 0.5 only lines
#: that would be blobs change. Lower, it also takes lines on near-white paper, whose pixels other than the fill
#: are mostly ink and its halo: their median is no paper level, and the strokes come out thin (docs/results.md).
_FILL_PAPER = 0.5
#: ... provided that, under the polygon's levels, at least this share of its pixels is ink (0.5 or more).
_MIN_INNER_INK = 0.01
#: Images larger than this many pixels are sampled on a regular grid for those estimates.
_SAMPLE = 40_000


def to_ink_array(img: Image.Image | np.ndarray) -> np.ndarray:
    """Convert a page-style image (dark ink on light paper) to an ink-high float32 array.

    Args:
        img: a PIL image (colour modes are converted to 8-bit grayscale; transparent areas, by alpha or by
            a transparency key as :func:`htr.imageio.is_see_through` tells, are paper; 'I;16', 'I' and 'F'
            images keep their depth), or an array: 2-D grayscale or 3-D
            (H, W, 3|4) RGB(A), of dtype uint8 (0..255), uint16 (0..65535), other integers (0..255, or
            0..65535 if any value exceeds 255), bool (True = paper, as in PIL mode '1') or float
            (0..1; if any value exceeds 1, 0..255). Non-finite floats count as paper.

    Returns:
        float32 (H, W) array in [0, 1] with ink high (black -> 1.0) and paper low (white -> 0.0).

    Raises:
        ImageError: for an empty image or an array of unusable shape.
    """
    return np.subtract(np.float32(1.0), _scale_to_unit(_gray(img)), dtype=np.float32)


def _gray(img: Image.Image | np.ndarray) -> np.ndarray:
    """The 2-D gray values of ``img`` as stored (uint8 for 8-bit images); RGB(A) arrays as float32 in [0, 1]."""
    if isinstance(img, Image.Image):
        if img.width == 0 or img.height == 0:
            raise ImageError("image is empty")
        if is_see_through(img):  # transparent areas (alpha or a transparency key) become paper, not ink
            img = flatten_on_white(img)
        if img.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "F"):
            img = img.convert("L")
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return _scale_to_unit(a[..., :3]) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    return check_2d(a)


def _scale_to_unit(a: np.ndarray) -> np.ndarray:
    """Scale gray values to float32 in [0, 1] according to their dtype (see :func:`to_ink_array`)."""
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a.astype(np.float32) * np.float32(1.0 / 255.0)
    if np.issubdtype(a.dtype, np.integer):
        # 16-bit unsigned is 16-bit data in either byte order (PIL's 'I;16B' arrives as big-endian '>u2', which
        # is not np.uint16); other integer types (e.g. PIL 'I' images) are 8-bit data if they fit.
        sixteen_bit = a.dtype.kind == "u" and a.dtype.itemsize == 2
        scale = 65535.0 if sixteen_bit or (a.size and int(a.max()) > 255) else 255.0
        return np.clip(a.astype(np.float32) * np.float32(1.0 / scale), 0.0, 1.0)
    x = np.nan_to_num(a.astype(np.float32), nan=1.0, posinf=1.0, neginf=1.0)
    if x.size and x.max() > 1.0:
        x = x * np.float32(1.0 / 255.0)
    return np.clip(x, 0.0, 1.0)


def normalize_contrast(
    a: np.ndarray,
    low_pct: float = 50.0,
    high_pct: float = 80.0,
    noise_sigmas: float = 3.0,
    min_range: float = 0.02,
) -> np.ndarray:
    """Stretch an ink-high image so that the background is exactly 0 and the ink about 1.

    The background level is the ``low_pct`` percentile of all pixels (the median by default, which is
    paper whenever ink covers less than half of the image). Background noise is estimated robustly
    (1.4826 x the median absolute deviation) and everything up to ``noise_sigmas`` noise deviations
    above the background level maps to exactly 0. The ink level is the ``high_pct`` percentile of the
    pixels above that floor (so it finds the ink even when ink covers well under 1 % of the image) and
    maps to 1; values are clipped to [0, 1].

    An image without contrast (constant, blank, or a range below ``min_range``) gives all zeros; there
    is never a division by zero. Percentiles are read off a 1024-bin histogram (of a regular subsample
    of about 40,000 pixels for large images), which is fast and accurate to 0.001; input values are
    taken to lie in [0, 1] (as :func:`to_ink_array` returns).

    Args:
        a: float (H, W) ink-high image in [0, 1].
        low_pct: percentile (0..100) of all pixels taken as the background level.
        high_pct: percentile (0..100) of the above-background pixels taken as the ink level.
        noise_sigmas: how many robust noise deviations above the background level are also zeroed.
        min_range: smallest ink-minus-floor difference treated as real contrast.

    Returns:
        float32 (H, W) array in [0, 1].
    """
    a = check_2d(a)
    x = np.asarray(a, dtype=np.float32)
    sample = x[_sample_slices(x.shape)]
    idx = (sample * np.float32(_BINS)).astype(np.intp)
    np.clip(idx, 0, _BINS - 1, out=idx)
    levels = _levels(np.bincount(idx.ravel(), minlength=_BINS), low_pct, high_pct, noise_sigmas, min_range)
    if levels is None:
        return np.zeros_like(x, dtype=np.float32)
    return _stretch(x, *levels)


def normalized_ink(
    img: Image.Image | np.ndarray,
    low_pct: float = 50.0,
    high_pct: float = 80.0,
    noise_sigmas: float = 3.0,
    min_range: float = 0.02,
) -> np.ndarray:
    """``normalize_contrast(to_ink_array(img), ...)``, the very same values, faster for 8-bit images.

    An 8-bit image has 256 possible values: the histogram is counted on them and the whole conversion
    (inversion and stretch) is one 256-entry table lookup instead of four float passes over the image.
    """
    levels, table = ink_table(img, low_pct, high_pct, noise_sigmas, min_range)
    return levels if table is None else np.take(table, levels)


def ink_table(
    img: Image.Image | np.ndarray,
    low_pct: float = 50.0,
    high_pct: float = 80.0,
    noise_sigmas: float = 3.0,
    min_range: float = 0.02,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`normalized_ink` as ``(gray, table)``: the image is ``table[gray]``, to be looked up where needed.

    For an 8-bit image ``gray`` is its uint8 levels and ``table`` the 256 float32 values they map to (so a caller
    can find the ink on the levels and convert only the part it keeps); otherwise ``gray`` is already the
    normalized float32 image and ``table`` is None.
    """
    gray = _gray(img)
    if gray.dtype != np.uint8:
        ink = np.subtract(np.float32(1.0), _scale_to_unit(gray), dtype=np.float32)
        return normalize_contrast(ink, low_pct, high_pct, noise_sigmas, min_range), None
    # PIL counts 8-bit levels without numpy's conversion of every level to a 64-bit index.
    counts = Image.fromarray(np.ascontiguousarray(gray[_sample_slices(gray.shape)])).histogram()
    hist = np.zeros(_BINS, np.int64)
    hist[_LEVEL_BINS] = counts  # the 256 levels fall in 256 different bins (checked below, at import)
    levels = _levels(hist, low_pct, high_pct, noise_sigmas, min_range)
    return gray, (np.zeros(256, np.float32) if levels is None else _stretch(_LEVEL_INK, *levels))


#: to_ink_array's value for each 8-bit gray level (computed by the same float32 operations), and its histogram bin.
_LEVEL_INK = np.subtract(np.float32(1.0), _scale_to_unit(np.arange(256, dtype=np.uint8)), dtype=np.float32)
_LEVEL_INK.flags.writeable = False
_LEVEL_BINS = np.clip((_LEVEL_INK * np.float32(_BINS)).astype(np.intp), 0, _BINS - 1)
assert np.unique(_LEVEL_BINS).size == 256, "two 8-bit levels share a contrast histogram bin"


def _sample_slices(shape: tuple[int, ...]) -> tuple[slice, slice]:
    """A regular grid of about ``_SAMPLE`` pixels: the levels are statistics of the whole image."""
    stride = max(1, int(np.ceil(np.sqrt(shape[0] * shape[1] / _SAMPLE))))
    return slice(None, None, stride), slice(None, None, stride)


def _levels(
    hist: np.ndarray, low_pct: float, high_pct: float, noise_sigmas: float, min_range: float
) -> tuple[float, float] | None:
    """``(floor, top)``: the ink-high values that map to 0 and 1, from a ``_BINS``-bin histogram; None: no contrast."""
    cum = np.cumsum(hist)
    n = int(cum[-1])

    bg_bin = _median_bin(hist, low_pct)
    fill = bool(hist[0] > _FILL_SPIKE * hist[1:_NEAR_WHITE_BINS].sum())
    unfilled = np.concatenate(([0], hist[1:])) if fill else hist  # what the polygon holds
    if fill and 0 < bg_bin < _NEAR_WHITE_BINS:
        # Half of the box is fill, and the median fell on the polygon's anti-aliased edge: take the levels of what
        # the polygon holds (the histogram without the fill has no spike, so this does not come back here).
        return _levels(unfilled, low_pct, high_pct, noise_sigmas, min_range)
    # Pure white (ink-high 0, the first bin) on a darker paper, standing as a spike over the five gray levels below
    # it, is not that paper's noise but a fill: typically the area outside a line's polygon that eScriptorium and
    # kraken exports paint white. Counted, a third of a line's pixels 30-50 levels from the paper make the noise
    # look as wide as the ink's contrast, and the whole line is zeroed. A paper whose own noise is clipped at
    # white puts no more there than over those five levels, and keeps it.
    sigma = _noise(unfilled if bg_bin else hist, bg_bin)
    # The floor is the upper edge of its bin, so every pixel in the background bin maps to exactly 0.
    floor_bin = min(_BINS - 1, bg_bin + int(np.ceil(noise_sigmas * sigma * _BINS)))
    floor = (floor_bin + 1) / _BINS

    n_above = n - int(cum[floor_bin])
    if n_above == 0:
        return None
    k = int(np.searchsorted(cum[floor_bin + 1 :] - cum[floor_bin], high_pct / 100.0 * n_above, side="left"))
    top = (floor_bin + 1 + min(k, _BINS - floor_bin - 2) + 0.5) / _BINS  # the centre of that bin
    if top - floor < min_range:
        return None
    if fill and bg_bin == 0 and ((_median_bin(unfilled, low_pct) + 0.5) / _BINS - floor) / (top - floor) > _FILL_PAPER:
        # More than half of the box is fill, so the background level is the fill's white, and the polygon's own
        # paper, darker, would come out as ink: the whole line a blob. Then the levels are the polygon's, if they
        # find ink in it: white paper under grey or black ink looks like a fill too (its white saturates), but
        # what is not white there is the ink itself, and levels taken from it erase it.
        inner = _levels(unfilled, low_pct, high_pct, noise_sigmas, min_range)
        if inner is not None and _share_above(unfilled, sum(inner) / 2) >= _MIN_INNER_INK:
            return inner
    return floor, top


def _share_above(hist: np.ndarray, value: float) -> float:
    """The share of a histogram's pixels in the bins at or above ``value`` (ink-high)."""
    return float(hist[int(value * _BINS) :].sum() / hist.sum())


def _median_bin(hist: np.ndarray, pct: float) -> int:
    """The bin holding the ``pct`` percentile of a histogram's pixels."""
    cum = np.cumsum(hist)
    return min(int(np.searchsorted(cum, pct / 100.0 * cum[-1], side="left")), _BINS - 1)


def _noise(hist: np.ndarray, bg_bin: int) -> float:
    """Robust noise of the background: 1.4826 x the median of |value - background| over the histogram."""
    cum = np.cumsum(hist)
    # within[d]: the pixels at most d bins from the background bin (nondecreasing in d).
    # within[d] = cum[min(bg_bin + d, _BINS - 1)] - (cum[bg_bin - d - 1] if d < bg_bin else 0), by slices.
    within = np.full(_BINS, cum[-1])
    within[: _BINS - bg_bin] = cum[bg_bin:]
    within[:bg_bin] -= cum[bg_bin - 1 :: -1] if bg_bin else 0
    mad_bins = min(int(np.searchsorted(within, 0.5 * cum[-1])), _BINS - 1)
    return 1.4826 * mad_bins / _BINS


def _stretch(x: np.ndarray, floor: float, top: float) -> np.ndarray:
    """Map ``floor`` to 0 and ``top`` to 1, clipped to [0, 1] (float32)."""
    out = np.subtract(x, np.float32(floor), dtype=np.float32)
    out *= np.float32(1.0 / (top - floor))
    return np.minimum(np.maximum(out, 0.0, out=out), 1.0, out=out)  # np.clip, without its slower Python wrapper
