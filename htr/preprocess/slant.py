"""Slant (shear of the vertical strokes) estimation and correction.

Sign convention: angles are in degrees; positive means the strokes lean to the right (their tops lie to
the right of their bottoms, the usual forward slant of handwriting), i.e. ``shear(a, t)`` with ``t > 0``
moves the top row right relative to the bottom row by ``H * tan(t)``. ``estimate_slant(shear(a, t))`` is
about ``t`` for upright text ``a``, and ``deslant`` shears by the negated estimate to undo it.
"""

from __future__ import annotations

import numpy as np

from htr.preprocess._common import (
    WORK_HEIGHT,
    as_float32,
    check_2d,
    ink_points,
    projection_scores,
    refine_search,
    warp_affine,
)
from htr.preprocess.resize import work_copy

#: Coarse-to-fine angle steps in degrees.
_STEPS = (4.0, 1.0)
#: The first, coarse scan uses the points of every ``COARSE_ROW_STEP``-th row only (it only has to find the
#: neighbourhood of the best angle; rows are strongly correlated, columns are what the profile resolves).
COARSE_ROW_STEP = 2


def shear_matrix(angle: float, h: int) -> np.ndarray:
    """3x3 forward map (continuous pixel frame) shearing an image of height ``h`` by ``angle`` degrees.

    ``x' = x + (h - y) * tan(angle)``: the bottom edge stays put and the top edge moves right for a
    positive angle. (:func:`htr.preprocess._common.warp_affine` then shifts the result onto its canvas.)
    """
    t = float(np.tan(np.deg2rad(angle)))
    return np.array([[1.0, -t, h * t], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def shear(a: np.ndarray, angle: float) -> np.ndarray:
    """Shear an ink-high image horizontally by ``angle`` degrees (positive: strokes lean right).

    The canvas widens by ``ceil(H * |tan(angle)|)`` so that no ink is cut; new areas are background (0).
    Returns float32 of shape (H, W + extra).
    """
    a = check_2d(a)
    if angle == 0:
        return as_float32(a).copy()
    if not -90.0 < angle < 90.0:
        raise ValueError(f"shear angle must lie in (-90, 90) degrees, got {angle}")
    return warp_affine(a, shear_matrix(angle, a.shape[0]))


def slant_scores(x: np.ndarray, y: np.ndarray, w: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Peakiness of the vertical projection profile of ink pixels ``(x, y, w)`` after undoing each slant."""
    t = np.tan(np.deg2rad(np.asarray(angles, dtype=np.float64)))
    # Undoing a slant of t moves a pixel to column x + y tan t (up to a constant).
    return projection_scores(x, y, w, np.ones_like(t), t)


def slant_from_points(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    max_angle: float = 45.0,
    coarse: np.ndarray | None = None,
) -> float:
    """Slant in degrees of the ink pixels at ``(x, y)`` with weights ``w`` (see :func:`estimate_slant`).

    ``coarse``: a boolean mask (or index array) of the points that the first, coarse scan uses.
    """
    fine = lambda angles: slant_scores(x, y, w, angles)  # noqa: E731
    if coarse is not None:
        coarse = np.asarray(coarse)
        coarse = np.flatnonzero(coarse) if coarse.dtype == np.bool_ else coarse  # one pass over the mask, not three
        xc, yc, wc = x[coarse], y[coarse], w[coarse]
    first = fine if coarse is None else (lambda angles: slant_scores(xc, yc, wc, angles))
    return refine_search([first] + [fine] * (len(_STEPS) - 1), max_angle, _STEPS)


def slant_of_work_copy(
    small: np.ndarray,
    skew: float = 0.0,
    max_angle: float = 45.0,
    background: float | None = None,
) -> float:
    """Slant of a :func:`~htr.preprocess.resize.work_copy` once its ``skew`` (degrees) is undone.

    The sample points are rotated, not the image. The coarse first scan uses every ``COARSE_ROW_STEP``-th row.
    """
    x, y, w = ink_points(small, background=background)
    rows = y.astype(np.intp)  # y is a row centre: row + 0.5
    coarse = (rows % COARSE_ROW_STEP if COARSE_ROW_STEP & (COARSE_ROW_STEP - 1) else rows & (COARSE_ROW_STEP - 1)) == 0
    if skew:
        t = np.deg2rad(skew)
        c, s = np.cos(t), np.sin(t)
        # The inverse rotation (undoing the skew), about the origin: where the point lies once deskewed.
        x, y = c * x - s * y, s * x + c * y
    return slant_from_points(x, y, w, max_angle, coarse)


def estimate_slant(a: np.ndarray, max_angle: float = 45.0, work_height: int = WORK_HEIGHT) -> float:
    """Estimate the slant of an ink-high text-line image in degrees (see the module's sign convention).

    The angle maximizes the sum of squared column sums of the deslanted image (the vertical projection
    is most sharply peaked when the strokes are upright), searched coarse-to-fine over
    ``[-max_angle, max_angle]`` on a copy cropped to the ink and downscaled to at most ``work_height``
    rows. An image without ink gives 0.0.
    """
    if not 0.0 <= max_angle < 90.0:
        raise ValueError(f"max_angle must lie in [0, 90) degrees, got {max_angle}")
    return slant_of_work_copy(work_copy(a, work_height), max_angle=max_angle)


def deslant(a: np.ndarray, angle: float | None = None) -> np.ndarray:
    """Undo a slant of ``angle`` degrees (by default the :func:`estimate_slant` estimate). Returns float32."""
    if angle is None:
        angle = estimate_slant(a)
    return shear(a, -angle)
