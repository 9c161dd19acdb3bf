"""Cropping to the ink and aspect-preserving resizing to a fixed height."""

from __future__ import annotations

import numpy as np
from PIL import Image

from htr.preprocess._common import as_float32, check_2d


#: Default value above which a pixel of an ink-high image counts as ink when cropping.
INK_THRESHOLD = 0.1


def crop_to_ink(a: np.ndarray, margin: int = 2, threshold: float = INK_THRESHOLD) -> np.ndarray:
    """Trim background rows and columns around the ink, keeping ``margin`` pixels on every side.

    A row or column counts as ink if any of its pixels exceeds ``threshold`` (ink-high convention). The
    margin is clamped to the image, so nothing outside the original image is added. An image without
    any ink is returned unchanged (a copy), so the result is always a valid non-empty image.

    Args:
        a: (H, W) ink-high image of any numeric dtype.
        margin: background pixels kept beyond the outermost ink on each side (>= 0).
        threshold: a pixel with a value above this is ink.

    Returns:
        A copy of the cropped region, same dtype as ``a``.
    """
    a = check_2d(a)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    ink = a > threshold
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size == 0:
        return a.copy()
    cols = np.flatnonzero(ink[rows[0] : rows[-1] + 1].any(axis=0))
    h, w = a.shape
    r0, r1 = max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)
    c0, c1 = max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)
    return a[r0:r1, c0:c1].copy()


def scaled_width(h: int, w: int, height: int) -> int:
    """The width that keeps the aspect ratio of an (h, w) image resized to ``height``: ``max(1, round(w*height/h))``."""
    return max(1, int(round(w * height / h)))


def resize_to_height(
    a: np.ndarray, height: int, resample: Image.Resampling = Image.Resampling.BILINEAR
) -> np.ndarray:
    """Resize to exactly ``height`` rows, keeping the aspect ratio.

    The width becomes ``max(1, round(W * height / H))``. Resampling is done by PIL on an 'L' image for
    uint8 input (the result is uint8) and on an 'F' image otherwise (the result is float32). PIL's
    filters are antialiased when downscaling; the default bilinear filter never overshoots, so the
    value range is preserved. Works for 1-pixel-high or -wide inputs and very wide lines.

    Args:
        a: (H, W) image.
        height: output height in pixels (>= 1).
        resample: a PIL resampling filter.

    Returns:
        (height, W') array, uint8 if ``a`` is uint8, else float32.
    """
    a = check_2d(a)
    if height < 1:
        raise ValueError(f"height must be >= 1, got {height}")
    h, w = a.shape
    new_w = scaled_width(h, w, height)
    if (h, w) == (height, new_w):
        return a.copy() if a.dtype == np.uint8 else as_float32(a).copy()
    if a.dtype == np.uint8:
        img = Image.fromarray(np.ascontiguousarray(a))
        return np.array(img.resize((new_w, height), resample=resample), dtype=np.uint8)
    img = Image.fromarray(as_float32(a))
    return np.array(img.resize((new_w, height), resample=resample), dtype=np.float32)
