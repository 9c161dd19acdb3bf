"""Skew (text-line rotation) estimation and correction.

Sign convention: angles are in degrees and positive means counter-clockwise *as displayed* (the text
line rises to the right), the same as ``PIL.Image.rotate(angle)``. So ``estimate_skew(rotate(a, t))``
is about ``t`` for a straight line ``a``, and ``deskew`` rotates by the negated estimate to undo it.
"""

from __future__ import annotations

import numpy as np

from htr.preprocess._common import as_float32, check_2d, ink_points, profile_peakiness, refine_search, warp_affine
from htr.preprocess.resize import crop_to_ink, resize_to_height

#: Estimation runs on a copy downscaled to this height (angles are unchanged by uniform scaling).
WORK_HEIGHT = 40
#: Coarse-to-fine angle steps in degrees.
_STEPS = (0.5, 0.1, 0.02)


def rotation_matrix(angle: float, h: int, w: int) -> np.ndarray:
    """3x3 forward map (continuous pixel frame) rotating an (h, w) image by ``angle`` degrees about its centre.

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


def skew_scores(a: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Peakiness of the horizontal projection profile of ``a`` after undoing each candidate skew."""
    x, y, w = ink_points(a)
    t = np.deg2rad(np.asarray(angles, dtype=np.float64))
    # Undoing a skew of t maps a pixel to height y cos t + x sin t (up to a constant).
    coords = np.cos(t)[:, None] * y[None, :] + np.sin(t)[:, None] * x[None, :]
    return profile_peakiness(coords, w)


def estimate_skew(a: np.ndarray, max_angle: float = 10.0, work_height: int = WORK_HEIGHT) -> float:
    """Estimate the skew of an ink-high text-line image in degrees (see the module's sign convention).

    The angle maximizes the sum of squares of the horizontal projection profile (the profile is most
    sharply peaked when the baseline is horizontal), searched coarse-to-fine over
    ``[-max_angle, max_angle]`` on a copy cropped to the ink and downscaled to at most ``work_height``
    rows. An image without ink gives 0.0.
    """
    a = check_2d(a)
    a = crop_to_ink(a, margin=1)
    if a.shape[0] > work_height:
        a = resize_to_height(as_float32(a), work_height)
    return refine_search(lambda angles: skew_scores(a, angles), max_angle, _STEPS)


def deskew(a: np.ndarray, angle: float | None = None) -> np.ndarray:
    """Undo a skew of ``angle`` degrees (estimated with :func:`estimate_skew` when None). Returns float32."""
    if angle is None:
        angle = estimate_skew(a)
    return rotate(a, -angle)
