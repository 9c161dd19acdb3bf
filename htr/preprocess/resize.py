"""Cropping to the ink and aspect-preserving resizing to a fixed height."""

from __future__ import annotations

import numpy as np
from PIL import Image

from htr.preprocess._common import WORK_HEIGHT, WORK_MIN_HEIGHT, WORK_PIXELS, as_float32, check_2d

#: Default value above which a pixel of an ink-high image counts as ink when cropping.
INK_THRESHOLD = 0.1


def crop_to_ink(
    a: np.ndarray,
    margin: int = 2,
    threshold: float = INK_THRESHOLD,
    pad: bool = False,
) -> np.ndarray:
    """Trim background rows and columns around the ink, keeping ``margin`` pixels on every side.

    A row or column counts as ink if any of its pixels exceeds ``threshold`` (ink-high convention).
    Where the ink comes closer than ``margin`` to the image's edge, the margin is clamped to the image,
    or, with ``pad``, completed with zeros (background), so that the ink is always surrounded by exactly
    ``margin`` background pixels. An image without any ink is returned unchanged (a copy), so the result
    is always a valid non-empty image.

    Args:
        a: (H, W) ink-high image of any numeric dtype.
        margin: background pixels kept beyond the outermost ink on each side (>= 0).
        threshold: a pixel with a value above this is ink.
        pad: complete margins cut short by the image edge with zeros.

    Returns:
        A copy of the cropped region, same dtype as ``a``.
    """
    a = check_2d(a)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    box = ink_box(a, threshold)
    if box is None:
        return a.copy()
    return crop_box(a, box, margin, pad)


def ink_box(a: np.ndarray, threshold: float = INK_THRESHOLD) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` (bottom and right exclusive) of the pixels above ``threshold``; None: none."""
    ink = a > threshold
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(ink[rows[0] : rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def crop_box(
    a: np.ndarray,
    box: tuple[int, int, int, int],
    margin: int = 0,
    pad: bool = False,
    table: np.ndarray | None = None,
    fill: float = 0,
) -> np.ndarray:
    """A copy of ``box`` (see :func:`ink_box`) with ``margin`` around it, clamped to ``a`` or, with ``pad``,
    completed with ``fill`` (as :func:`crop_to_ink` does, with 0). With ``table``, the crop of ``table[a]``
    (``a``: levels)."""
    h, w = a.shape
    r0, r1, c0, c1 = box[0] - margin, box[1] + margin, box[2] - margin, box[3] + margin
    out = a[max(0, r0) : min(h, r1), max(0, c0) : min(w, c1)]
    out = out.copy() if table is None else np.take(table, out)
    if pad and (r0 < 0 or c0 < 0 or r1 > h or c1 > w):
        padded = np.full((r1 - r0, c1 - c0), fill, dtype=out.dtype)  # np.pad costs several times more
        top, left = max(0, -r0), max(0, -c0)
        padded[top : top + out.shape[0], left : left + out.shape[1]] = out
        return padded
    return out


def level_box(levels: np.ndarray, n: int) -> tuple[int, int, int, int] | None:
    """:func:`ink_box` of the pixels of an integer image whose level is below ``n``.

    Row and column minima find them without a boolean copy of the image.
    """
    rows = np.flatnonzero(levels.min(axis=1) < n)
    if rows.size == 0:
        return None
    cols = np.flatnonzero(levels[rows[0] : rows[-1] + 1].min(axis=0) < n)
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def scaled_width(h: int, w: int, height: int, aspect: float = 1.0) -> int:
    """The aspect-keeping width of an (h, w) image resized to ``height``: ``max(1, round(w*height/h))``.

    ``aspect``: the width a pixel of the input has relative to its height (1 for square pixels).
    """
    return max(1, int(round(w * aspect * height / h)))


def resize_to_height(
    a: np.ndarray,
    height: int,
    resample: Image.Resampling = Image.Resampling.BILINEAR,
    aspect: float = 1.0,
) -> np.ndarray:
    """Resize to exactly ``height`` rows, keeping the aspect ratio.

    The width becomes ``max(1, round(W * aspect * height / H))``; ``aspect`` is the width of an input
    pixel relative to its height (1 for square pixels). Resampling is done by PIL on an 'L' image for
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
    new_w = scaled_width(h, w, height, aspect)
    if (h, w) == (height, new_w):
        return a.copy() if a.dtype == np.uint8 else as_float32(a).copy()
    if a.dtype == np.uint8:
        img = Image.fromarray(np.ascontiguousarray(a))
        return np.array(img.resize((new_w, height), resample=resample), dtype=np.uint8)
    img = Image.fromarray(as_float32(a))
    return np.array(img.resize((new_w, height), resample=resample), dtype=np.float32)


def work_copy(
    a: np.ndarray,
    work_height: int = WORK_HEIGHT,
    max_pixels: int = WORK_PIXELS,
    min_height: int = WORK_MIN_HEIGHT,
    crop: bool = True,
) -> np.ndarray:
    """A float32 copy of ``a`` cropped to the ink (1-pixel margin) and downscaled to the working size.

    The copy has at most ``work_height`` rows and, for long lines, at most about ``max_pixels`` pixels,
    but it is never scaled below ``min_height`` rows (very long lines keep their detail and simply cost
    more). Skew and slant are estimated on such a copy: the angles are unchanged by the crop and the
    uniform scaling, and the estimate is much cheaper on the small copy. ``crop=False``: ``a`` is already
    cropped so.
    """
    a = crop_to_ink(check_2d(a), margin=1) if crop else check_2d(a)
    h, w = a.shape
    new_h = work_rows(h, w, work_height, max_pixels, min_height)
    if new_h < h:
        return resize_to_height(as_float32(a), new_h)
    return as_float32(a)


def work_rows(
    h: int,
    w: int,
    work_height: int = WORK_HEIGHT,
    max_pixels: int = WORK_PIXELS,
    min_height: int = WORK_MIN_HEIGHT,
) -> int:
    """The rows of the :func:`work_copy` of an (h, w) crop (``h`` itself when it is not downscaled)."""
    budget = float(np.sqrt(max_pixels / (h * w)))
    scale = min(1.0, work_height / h, max(budget, min_height / h))
    return max(1, int(round(h * scale)))
