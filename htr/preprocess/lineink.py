"""A text-line image held as 8-bit levels and a lookup table, turned into float only where it is used."""

from __future__ import annotations

import numpy as np
from PIL import Image

from htr.preprocess.contrast import ink_table, to_ink_array
from htr.preprocess.resize import INK_THRESHOLD, crop_box, ink_box, level_box


class LineInk:
    """The ink-high image of a line (:func:`~htr.preprocess.contrast.normalized_ink` or ``to_ink_array``).

    For an 8-bit image it is kept as its gray levels and the 256-entry table they map to: the box around the
    ink is found on the levels and only the crops the pipeline keeps are looked up, instead of converting the
    whole image to float and searching it.
    """

    def __init__(self, img: Image.Image | np.ndarray, contrast: bool = True) -> None:
        self.levels, self.table = ink_table(img) if contrast else (to_ink_array(img), None)

    @property
    def shape(self) -> tuple[int, int]:
        return self.levels.shape

    def box(self, threshold: float = INK_THRESHOLD) -> tuple[int, int, int, int] | None:
        """:func:`~htr.preprocess.resize.ink_box` of the image."""
        if self.table is None:
            return ink_box(self.levels, threshold)
        ink = self.table > threshold
        n = int(np.count_nonzero(ink))
        if not ink[:n].all():  # the table falls with the level, so the ink levels come first; kept for safety
            return ink_box(self.full(), threshold)
        return level_box(self.levels, n) if n else None

    def crop(self, box: tuple[int, int, int, int], margin: int = 0, pad: bool = False) -> np.ndarray:
        """:func:`~htr.preprocess.resize.crop_box` of the image (float32)."""
        return crop_box(self.levels, box, margin, pad, self.table)

    def full(self) -> np.ndarray:
        """The whole image (float32)."""
        return self.levels if self.table is None else np.take(self.table, self.levels)
