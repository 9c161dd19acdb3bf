"""Skew (text-line rotation) estimation and correction.

Sign convention: angles are in degrees and positive means counter-clockwise *as displayed* (the text
line rises to the right), the same as ``PIL.Image.rotate(angle)``. So ``estimate_skew(rotate(a, t))``
is about ``t`` for a straight line ``a``, and ``deskew`` rotates by the negated estimate to undo it.
"""

from __future__ import annotations

import numpy as np

from htr.preprocess._common import (
    WORK_HEIGHT,
    as_float32,
    bin_columns,
    binned_points,
    check_2d,
    median_level,
    projection_scores,
    refine_search,
    warp_affine,
)
from htr.preprocess.resize import work_copy

#: Columns averaged into one sample point for the skew search (see ``_common.ink_points``), and for its first,
#: coarse scan, which only has to find the neighbourhood of the best angle.
SKEW_X_BIN = 4
SKEW_COARSE_X_BIN = 16
#: Coarse-to-fine angle steps in degrees.
_STEPS = (1.0, 0.25)


def rotation_matrix(angle: float, h: int, w: int) -> np.ndarray:
    """3x3 forward map (continuous pixel frame) turning an (h, w) image by ``angle`` degrees about its centre.

    Positive is counter-clockwise as displayed, like ``PIL.Image.rotate``.
    """
    t = np.deg2rad(angle)
    c, s = np.cos(t), np.sin(t)
    cx, cy = w / 2.0, h / 2.0
    # Image y points down, so a displayed counter-clockwise turn is x' = x c + y s, y' = -x s + y c.
    return np.array([[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy], [0.0, 0.0, 1.0]])


def rotate(a: np.ndarray, angle: float) -> np.ndarray:
    """Rotate an ink-high image by ``angle`` degrees (counter-clockwise as displayed).

    The canvas grows to hold the whole rotated image; new areas are background (0). Returns float32.
    """
    a = check_2d(a)
    if angle == 0:
        return as_float32(a).copy()
    return warp_affine(a, rotation_matrix(angle, *a.shape))


def skew_scores(x: np.ndarray, y: np.ndarray, w: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Peakiness of the horizontal projection profile of ink pixels ``(x, y, w)`` after undoing each skew."""
    t = np.deg2rad(np.asarray(angles, dtype=np.float64))
    # Undoing a skew of t maps a pixel to height y cos t + x sin t (up to a constant).
    return projection_scores(y, x, w, np.cos(t), np.sin(t))


def skew_from_points(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    max_angle: float = 10.0,
    coarse: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> float:
    """Skew in degrees of the ink pixels at ``(x, y)`` with weights ``w`` (see :func:`estimate_skew`).

    ``coarse``: a smaller point set of the same ink (e.g. more columns binned) for the first, coarse scan.
    """
    fine = lambda angles: skew_scores(x, y, w, angles)  # noqa: E731
    first = fine if coarse is None else (lambda angles: skew_scores(*coarse, angles))
    return refine_search([first] + [fine] * (len(_STEPS) - 1), max_angle, _STEPS)


def skew_of_work_copy(small: np.ndarray, max_angle: float = 10.0, background: float | None = None) -> float:
    """Skew of a :func:`~htr.preprocess.resize.work_copy`, with the cheap coarse first scan."""
    bg = median_level(small) if background is None else float(background)
    binned = bin_columns(as_float32(small), SKEW_X_BIN, bg)
    # The coarse bins as means of the fine ones (the same up to rounding, for a quarter of the work).
    coarse = bin_columns(binned, SKEW_COARSE_X_BIN // SKEW_X_BIN, bg)
    return skew_from_points(
        *binned_points(binned, bg, SKEW_X_BIN),
        max_angle=max_angle,
        coarse=binned_points(coarse, bg, SKEW_COARSE_X_BIN),
    )


def estimate_skew(a: np.ndarray, max_angle: float = 10.0, work_height: int = WORK_HEIGHT) -> float:
    """Estimate the skew of an ink-high text-line image in degrees (see the module's sign convention).

    The angle maximizes the sum of squares of the horizontal projection profile (the profile is most
    sharply peaked when the baseline is horizontal), searched coarse-to-fine over
    ``[-max_angle, max_angle]`` on a copy cropped to the ink and downscaled to at most ``work_height``
    rows. An image without ink gives 0.0.
    """
    if not 0.0 <= max_angle <= 45.0:
        raise ValueError(f"max_angle must lie in [0, 45] degrees, got {max_angle}")
    return skew_of_work_copy(work_copy(a, work_height), max_angle)


def deskew(a: np.ndarray, angle: float | None = None) -> np.ndarray:
    """Undo a skew of ``angle`` degrees (estimated with :func:`estimate_skew` when None). Returns float32."""
    if angle is None:
        angle = estimate_skew(a)
    return rotate(a, -angle)
