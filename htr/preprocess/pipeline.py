"""The text-line preprocessing pipeline: ink-high, normalized, deskewed, deslanted, cropped, fixed height."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from htr.preprocess._common import ink_points, warp_affine
from htr.preprocess.contrast import normalize_contrast, to_ink_array
from htr.preprocess.resize import INK_THRESHOLD, crop_to_ink, resize_to_height, work_copy
from htr.preprocess.skew import SKEW_X_BIN, rotation_matrix, skew_from_points
from htr.preprocess.slant import shear_matrix, slant_from_points

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
    :func:`resize_to_height`, each optional per ``cfg`` except the first and the last. Skew and slant
    are estimated on a copy cropped to the ink and downscaled to at most 40 rows (the slant after
    deskewing that copy); rotation and shear are then composed into one affine warp applied once at
    full resolution.

    Returns:
        float32 array of shape (cfg.height, W) in [0, 1], ink high, background 0.
    """
    a = to_ink_array(img)
    if cfg.contrast:
        a = normalize_contrast(a)
    if cfg.deskew or cfg.deslant:
        a = _straighten(a, cfg.deskew, cfg.deslant)
    if cfg.crop:
        ink_rows = np.flatnonzero((a > INK_THRESHOLD).any(axis=1))
        ink_h = int(ink_rows[-1] - ink_rows[0] + 1) if ink_rows.size else a.shape[0]
        a = crop_to_ink(a, margin=crop_margin(ink_h, cfg.height), pad=True)
    out = resize_to_height(a, cfg.height)
    return np.clip(out, 0.0, 1.0, out=out)


def _straighten(a: np.ndarray, deskew: bool, deslant: bool) -> np.ndarray:
    """Estimate skew and/or slant on a small copy and undo both with one warp at full resolution."""
    small = work_copy(a)
    skew = skew_from_points(*ink_points(small, x_bin=SKEW_X_BIN)) if deskew else 0.0
    slant = 0.0
    if deslant:
        x, y, w = ink_points(small)
        if skew:
            # The slant is measured on the deskewed ink: rotate the sample points, not the image.
            rot = rotation_matrix(-skew, 0, 0)
            x, y = rot[0, 0] * x + rot[0, 1] * y, rot[1, 0] * x + rot[1, 1] * y
        slant = slant_from_points(x, y, w)
    # Only the ink's bounding box needs warping (the warp re-fits the canvas anyway).
    ink = crop_to_ink(a, margin=2)
    h, w = ink.shape
    # The shear's translation term is irrelevant: warp_affine re-fits the canvas.
    forward = shear_matrix(-slant, h) @ rotation_matrix(-skew, h, w)
    # Skip a warp that would move no pixel by more than _MIN_SHIFT (relative to the centre): it would
    # only blur the image.
    corners = np.array([[-w, -w, w, w], [-h, h, -h, h]], dtype=np.float64) / 2.0
    if np.abs((forward[:2, :2] - np.eye(2)) @ corners).max() < _MIN_SHIFT:
        return a
    return warp_affine(ink, forward)
