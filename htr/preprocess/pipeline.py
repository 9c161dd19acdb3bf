"""The text-line preprocessing pipeline: ink-high, normalized, deskewed, deslanted, cropped, fixed height."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from htr.preprocess._common import warp_affine
from htr.preprocess.contrast import normalize_contrast, to_ink_array
from htr.preprocess.resize import INK_THRESHOLD, crop_to_ink, resize_to_height
from htr.preprocess.skew import WORK_HEIGHT, estimate_skew, rotation_matrix
from htr.preprocess.slant import estimate_slant, shear_matrix

#: Angles (degrees) smaller than this are not corrected: the warp would only blur the image.
_MIN_ANGLE = 0.05


@dataclass
class PreprocessConfig:
    """Settings of :func:`preprocess_line` (a Hydra structured config: plain, simply typed fields).

    Attributes:
        height: output height in pixels.
        contrast: stretch contrast so the background is exactly 0 and the ink about 1.
        deskew: estimate and undo the rotation of the line (within +-10 degrees).
        deslant: estimate and undo the slant of the strokes (within +-45 degrees).
        crop: trim background around the ink (with a margin that stays background after resizing).
    """

    height: int = 64
    contrast: bool = True
    deskew: bool = True
    deslant: bool = True
    crop: bool = True


def crop_margin(ink_h: int, height: int) -> int:
    """Margin (input pixels) around ink of height ``ink_h`` that still leaves a blank border of 2 output pixels.

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
        h, w = a.shape
        # Angles are invariant to translation and uniform scaling: estimate them on a small crop.
        small = crop_to_ink(a, margin=1)
        if small.shape[0] > WORK_HEIGHT:
            small = resize_to_height(small, WORK_HEIGHT)
        sh, sw = small.shape
        forward = np.eye(3)
        if cfg.deskew:
            skew = estimate_skew(small)
            if abs(skew) >= _MIN_ANGLE:
                forward = rotation_matrix(-skew, h, w)
                small = warp_affine(small, rotation_matrix(-skew, sh, sw))
        if cfg.deslant:
            slant = estimate_slant(small)
            if abs(slant) >= _MIN_ANGLE:
                # The shear's translation term is irrelevant: warp_affine re-fits the canvas.
                forward = shear_matrix(-slant, h) @ forward
        if not np.allclose(forward, np.eye(3)):
            a = warp_affine(a, forward)
    if cfg.crop:
        ink_rows = np.flatnonzero((a > INK_THRESHOLD).any(axis=1))
        ink_h = int(ink_rows[-1] - ink_rows[0] + 1) if ink_rows.size else a.shape[0]
        a = crop_to_ink(a, margin=crop_margin(ink_h, cfg.height))
    out = resize_to_height(a, cfg.height)
    return np.clip(out, 0.0, 1.0, out=out)
