"""Undoing skew and slant with two integer-shift shears instead of a bilinear warp.

A rotation-and-shear map ``M`` factors as ``D @ L @ S``: ``S`` shifts each row sideways (a horizontal shear), ``L``
shifts each column up or down (a vertical shear) and ``D`` scales the axes (by about 1 for the small rotations
of text lines). Shifting rows and columns by whole pixels is a handful of block copies (one per run of rows or
columns with the same shift), no resampling at all; ``D`` is folded into the resize to the output height that
follows. Rounding the shifts leaves steps of at most half a pixel along the strokes, which that resize (to
about two thirds of the size for typical lines) averages away; a bilinear warp at full size would cost several
times more, and warping after the resize blurs strongly slanted strokes (the resize mixes rows before they are
straightened) and cost the shipped model recognition accuracy.
"""

from __future__ import annotations

import numpy as np

from htr.preprocess._common import as_float32


def shear_rows(a: np.ndarray, k: float) -> np.ndarray:
    """Shift each row ``y`` of ``a`` right by ``round(k * (y + 0.5))`` pixels (relative to the least shift).

    The canvas widens by the range of the shifts; uncovered areas are background (0).
    """
    return _shear(a, k, axis=0)


def shear_cols(a: np.ndarray, k: float) -> np.ndarray:
    """Shift each column ``x`` of ``a`` down by ``round(k * (x + 0.5))`` pixels (relative to the least shift)."""
    return _shear(a, k, axis=1)


def _shear(a: np.ndarray, k: float, axis: int, fill: float = 0) -> np.ndarray:
    """Shift each line of ``a`` along ``axis`` (0: rows, shifted right; 1: columns, shifted down).

    Uncovered areas get ``fill``. Written per axis rather than as a transposed row shear: block copies of whole
    rows run several times faster than the same copies through a transposed (column-major) view.
    """
    n = a.shape[axis]
    shifts = np.rint(k * (np.arange(n) + 0.5)).astype(np.intp)
    shifts -= shifts.min()
    extra = int(shifts.max())
    h, w = a.shape
    out = np.full((h, w + extra) if axis == 0 else (h + extra, w), fill, dtype=a.dtype)
    starts = [0, *(np.flatnonzero(shifts[1:] != shifts[:-1]) + 1).tolist()]
    for i0, i1, d in zip(starts, [*starts[1:], n], shifts[starts].tolist()):
        if axis == 0:
            out[i0:i1, d : d + w] = a[i0:i1]
        else:
            out[d : d + h, i0:i1] = a[:, i0:i1]
    return out


def straighten(a: np.ndarray, linear: np.ndarray, fill: float = 0) -> tuple[np.ndarray, float, float]:
    """Apply the 2x2 map ``linear`` to ``a`` up to an axis scaling: returns ``(image, x_scale, y_scale)``.

    ``linear`` maps input to output coordinates (``x`` is the column) and must have ``linear[0, 0] > 0``
    and a positive determinant (any rotation within +-90 degrees composed with a shear). Scaling the
    returned image's columns by ``x_scale`` and rows by ``y_scale`` (the resize to the output height does
    it) completes the map. Returns float32, or uint8 for uint8 input (8-bit levels, whose uncovered areas get
    ``fill``: the level of the background; float images get 0).
    """
    (m11, m12), (m21, m22) = np.asarray(linear, dtype=np.float64)
    det = m11 * m22 - m12 * m21
    if m11 <= 0 or det <= 0:
        raise ValueError(f"cannot straighten with the map {np.asarray(linear).tolist()}")
    y_scale = det / m11
    out = a if a.dtype == np.uint8 else as_float32(a)
    fill = fill if a.dtype == np.uint8 else 0
    if m12:
        out = _shear(out, m12 / m11, 0, fill)
    if m21:
        out = _shear(out, m21 / y_scale, 1, fill)
    return out, float(m11), float(y_scale)
