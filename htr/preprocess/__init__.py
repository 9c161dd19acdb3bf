"""Text-line image preprocessing: pure functions on numpy arrays and PIL images.

Convention: after :func:`to_ink_array`, images are float32 (H, W) arrays in [0, 1] with ink high (about
1) and background 0, so padding with zeros is neutral. Angles are in degrees; see :mod:`.skew` and
:mod:`.slant` for their sign conventions.
"""

from __future__ import annotations

from htr.preprocess.contrast import normalize_contrast, to_ink_array
from htr.preprocess.pipeline import PreprocessConfig, preprocess_line
from htr.preprocess.resize import crop_to_ink, resize_to_height
from htr.preprocess.skew import deskew, estimate_skew, rotate
from htr.preprocess.slant import deslant, estimate_slant, shear

__all__ = [
    "PreprocessConfig",
    "crop_to_ink",
    "deskew",
    "deslant",
    "estimate_skew",
    "estimate_slant",
    "normalize_contrast",
    "preprocess_line",
    "resize_to_height",
    "rotate",
    "shear",
    "to_ink_array",
]
