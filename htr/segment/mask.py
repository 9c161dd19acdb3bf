"""The ink mask of a page for :func:`htr.segment.segment_lines`: downscaling, Otsu threshold, page skew,
straightening by a shear, morphology along one axis, ruled lines.

The straightening is a shear (each column shifted vertically by :func:`column_offsets`) rather than a rotation,
so a point of the straightened image goes back to page coordinates exactly (:func:`offsets_at`).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from htr.preprocess._common import ink_points, refine_search
from htr.preprocess.skew import skew_scores


def downscale(a: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (the ragged edge is dropped when the image is larger than one)."""
    if factor == 1:
        return a
    h, w = (a.shape[0] // factor) or 1, (a.shape[1] // factor) or 1
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BOX, (0, 0, w * factor, h * factor)))


def otsu(a: np.ndarray) -> float:
    """Otsu's threshold of an ink-high image in [0, 1] (256 bins), kept within [0.2, 0.6]."""
    hist = np.bincount(np.clip((a * 256).astype(np.intp), 0, 255).ravel(), minlength=256).astype(np.float64)
    p = hist / max(hist.sum(), 1.0)
    w = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    between = (mu[-1] * w - mu) ** 2 / np.maximum(w * (1.0 - w), 1e-12)
    return float(np.clip((np.argmax(between) + 1) / 256.0, 0.2, 0.6))


def page_skew(mask: np.ndarray, max_angle: float) -> float:
    """Skew in degrees (positive: lines rise to the right) that makes the horizontal profile most peaked."""
    x, y, w = ink_points(mask.astype(np.float32), x_bin=4)
    if x.size < 2:
        return 0.0
    return refine_search(lambda angles: skew_scores(x, y, w, angles), max_angle, (1.0, 0.2, 0.04))


def column_offsets(width: int, skew: float) -> np.ndarray:
    """Per-column vertical shift (float, >= 0) that straightens lines of ``skew`` degrees: ``y' = y + off[x]``."""
    off = (np.arange(width) + 0.5) * math.tan(math.radians(skew))
    return off - off.min()


def offsets_at(offsets: np.ndarray, x: float) -> float:
    """The column shift at (continuous) column ``x``, linearly extended beyond the columns."""
    n = offsets.size
    if n == 1:
        return float(offsets[0])
    slope = (offsets[-1] - offsets[0]) / (n - 1)
    return float(offsets[0] + (x - 0.5) * slope)


def shear(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Shift each column of ``mask`` down by its rounded offset (the canvas grows to hold every pixel)."""
    shifts = np.rint(offsets).astype(np.intp)
    if not shifts.any():
        return mask.copy()
    h, w = mask.shape
    out = np.zeros((h + int(shifts.max()), w), dtype=bool)
    rows = np.arange(h)[:, None] + shifts[None, :]
    out[rows, np.arange(w)[None, :]] = mask
    return out


def _window_count(mask: np.ndarray, n: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Number of True values in the centred window of ``n`` along ``axis`` (cut at the edges), and the windows'
    lengths (``n``, less at the edges)."""
    m = np.moveaxis(mask, axis, -1)
    c = np.zeros((*m.shape[:-1], m.shape[-1] + 1), dtype=np.int32)
    np.cumsum(m, axis=-1, out=c[..., 1:])
    k = m.shape[-1]
    lo = np.clip(np.arange(k) - n // 2, 0, k)
    hi = np.clip(np.arange(k) - n // 2 + n, 0, k)
    counts = c[..., hi] - c[..., lo]
    return np.moveaxis(counts, -1, axis), hi - lo


def dilate(mask: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Dilation by a centred segment of ``n`` pixels along ``axis``."""
    return _window_count(mask, n, axis)[0] > 0


def erode(mask: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Erosion by a centred segment of ``n`` pixels along ``axis`` (outside the image counts as ink)."""
    counts, lengths = _window_count(mask, n, axis)
    shape = [1, 1]
    shape[axis] = -1
    return counts >= lengths.reshape(shape)


def ruled_lines(mask: np.ndarray, length: int, fill: float = 0.9, thickness: int = 5) -> np.ndarray:
    """Pixels of ruled lines: thin horizontal runs of ink, ``length`` long and at least ``fill`` solid.

    A rule wanders by a pixel or two up and down, so runs are looked for in 3-row strips. Text is not solid
    enough (even dense print fills under 0.85 of a strip through its letters) and a stretch taller than
    ``thickness`` rows is not thin. The rule pixels are grown by a row each way.
    """
    strips = dilate(mask, 3, 0)
    core = _window_count(strips, length, 1)[0] >= fill * length
    if not core.any():
        return core
    rules = dilate(core, length, 1) & strips
    rules &= ~dilate(erode(rules, thickness + 1, 0), thickness + 1, 0)
    return dilate(rules, 3, 0) & mask
