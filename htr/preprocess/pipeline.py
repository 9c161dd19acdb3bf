"""The text-line preprocessing pipeline: ink-high, normalized, deskewed, deslanted, cropped, fixed height."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from htr.preprocess._common import median_level
from htr.preprocess.lineink import LineInk
from htr.preprocess.resize import resize_to_height
from htr.preprocess.skew import rotation_matrix, skew_of_work_copy
from htr.preprocess.slant import shear_matrix, slant_of_work_copy

#: Bump whenever :func:`preprocess_line` gives different output for the same input and settings: it is part of
#: the key of the preprocessed-lines cache (:mod:`htr.data.lines`), so stale cached lines are never reused.
#: 2: skew and slant undone by whole-pixel row/column shifts before the resize, instead of a bilinear warp.
#: 3: big-endian 16-bit images whose values fit in 8 bits are read as 16-bit data.
#: 4: a spike of pure white on darker paper (a polygon's white fill) is left out of the noise estimate.
#: 5: ... and when such a fill is half of the box and the median falls on its edge, the levels are the rest's.
#: 6: ... and when it is more than half of the box and the polygon's paper would come out as ink, the same (if the
#:    polygon's levels find ink in it).
PIPELINE_VERSION = 6

#: Skew and slant are not corrected when that would move no pixel by more than this (in pixels).
_MIN_SHIFT = 0.5


@dataclass
class PreprocessConfig:
    """How each line image is normalized before the model sees it, in training and recognition.

    The settings of :func:`preprocess_line` (a Hydra structured config: plain, simply typed fields); a
    checkpoint keeps them, so recognition prepares lines as training did.

    Attributes:
        height: output height in pixels.
        contrast: stretch contrast so the background is exactly 0 and the ink about 1.
        deskew: estimate and undo the rotation of the line (within +-10 degrees).
        deslant: estimate and undo the slant of the strokes (within +-45 degrees).
        crop: trim background around the ink, leaving (or padding to) a margin that stays background
            after resizing.
    """

    height: int = 64
    contrast: bool = True
    deskew: bool = True
    deslant: bool = True
    crop: bool = True


def crop_margin(ink_h: int, height: int) -> int:
    """Crop margin (input pixels) around ink ``ink_h`` rows high that stays background after resizing.

    Resizing to ``height`` scales by ``s = height / (ink_h + 2m)``; bilinear downscaling reaches about
    ``1/s`` input pixels (one output pixel) away, so ``m * s >= 2`` output pixels keeps the outermost
    rows and columns exactly 0. Solving for ``m`` gives ``m >= 2 ink_h / (height - 4)``.
    """
    if height <= 4:
        return max(2, ink_h)
    return max(2, math.ceil(2 * ink_h / (height - 4)) + 1)


def preprocess_line(img: Image.Image | np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Turn a text-line image (dark ink on light paper) into the model's input.

    Steps: :func:`to_ink_array` -> :func:`normalize_contrast` -> deskew -> deslant -> crop to the ink ->
    resize to ``cfg.height``, each optional per ``cfg`` except the first and the last. Skew and slant
    are estimated on a copy cropped to the ink and downscaled to at most 40 rows (the slant after
    deskewing that copy); both are then undone at full resolution by whole-pixel row and column shifts
    (see :mod:`htr.preprocess.render`), whose remaining axis scaling the final resize applies.

    Returns:
        float32 array of shape (cfg.height, W) in [0, 1], ink high, background 0.
    """
    src = LineInk.of(img, cfg.contrast)
    box = src.box() if cfg.deskew or cfg.deslant or cfg.crop else None
    x_scale = y_scale = 1.0
    if box is not None and (cfg.deskew or cfg.deslant):
        linear = _straightening(src.work_copy(box), cfg.deskew, cfg.deslant)
        # The crop that is straightened: the ink with a 2-pixel margin, clamped to the image.
        (r0, r1, c0, c1), (h, w) = box, src.shape
        h, w = min(h, r1 + 2) - max(0, r0 - 2), min(w, c1 + 2) - max(0, c0 - 2)
        # Skip a warp that would move no pixel by more than _MIN_SHIFT (relative to the centre): it would
        # only blur the image.
        (m11, m12), (m21, m22) = linear.tolist()
        # The largest shift of a corner (+-w/2, +-h/2), along x and along y, in plain Python (a 2x2 map).
        if max(abs(m11 - 1.0) * w + abs(m12) * h, abs(m21) * w + abs(m22 - 1.0) * h) / 2.0 >= _MIN_SHIFT:
            src, x_scale, y_scale = src.straightened(box, linear)
            box = src.box() if cfg.crop else None
    if cfg.crop and box is not None:
        margin = crop_margin(round((box[1] - box[0]) * y_scale), cfg.height)
        return src.resized(box, margin, cfg.height, aspect=x_scale / y_scale)
    return np.clip(resize_to_height(src.full(), cfg.height, aspect=x_scale / y_scale), 0.0, 1.0)


def _straightening(small: np.ndarray, deskew: bool, deslant: bool) -> np.ndarray:
    """The 2x2 linear map undoing the skew and slant of a line, from its work copy (``LineInk.work_copy``)."""
    bg = median_level(small)
    skew = skew_of_work_copy(small, background=bg) if deskew else 0.0
    slant = slant_of_work_copy(small, skew, background=bg) if deslant else 0.0
    return shear_matrix(-slant, 0)[:2, :2] @ rotation_matrix(-skew, 0, 0)[:2, :2]
