"""A text-line image held as 8-bit levels and a lookup table, turned into float only where it is used."""

from __future__ import annotations

import numpy as np
from PIL import Image

from htr.preprocess.contrast import ink_table, to_ink_array
from htr.preprocess.render import straighten
from htr.preprocess.resize import (
    INK_THRESHOLD,
    crop_box,
    ink_box,
    level_box,
    resize_to_height,
    scaled_width,
    work_copy,
    work_rows,
)


class LineInk:
    """An ink-high line image: ``table[levels]`` (8-bit levels and their 256 float32 values), or ``levels`` itself.

    Contrast normalization of an 8-bit image is a 256-entry table (:func:`~htr.preprocess.contrast.ink_table`),
    and everything the pipeline does before its final crop commutes with it: the box around the ink is a
    threshold on the levels, straightening only moves pixels. So the image stays 8-bit (a quarter of the
    memory traffic) and only the crops that are kept become float.
    """

    def __init__(self, levels: np.ndarray, table: np.ndarray | None = None) -> None:
        self.levels, self.table = levels, table
        self._points: list[float] | None = None

    def _table_list(self) -> list[float]:
        """The table as the list ``Image.point`` takes (made once: the work copy and the final resize both use it)."""
        if self._points is None:
            self._points = self.table.tolist()
        return self._points

    @classmethod
    def of(cls, img: Image.Image | np.ndarray, contrast: bool = True) -> LineInk:
        """The normalized ink of ``img`` (:func:`~htr.preprocess.contrast.normalized_ink`), or ``to_ink_array``."""
        return cls(*ink_table(img)) if contrast else cls(to_ink_array(img))

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

    def resized(self, box: tuple[int, int, int, int], margin: int, height: int, aspect: float = 1.0) -> np.ndarray:
        """``resize_to_height(self.crop(box, margin, pad=True), height, aspect=aspect)`` clipped to [0, 1] (float32).

        From 8-bit levels, the crop stays 8-bit (padded with the background level) and PIL looks it up ('L' to
        'F' by the table) and resizes it: no float crop in numpy, no conversion of it for PIL. The table's values
        lie in [0, 1] and a bilinear resize only averages them (weights >= 0, summing to 1), so they need no clip.
        """
        if self.table is None or self.table[255] != 0.0:
            return np.clip(resize_to_height(self.crop(box, margin, pad=True), height, aspect=aspect), 0.0, 1.0)
        im = Image.fromarray(crop_box(self.levels, box, margin, pad=True, fill=255)).point(self._table_list(), "F")
        size = (scaled_width(im.height, im.width, height, aspect), height)
        return np.array(im if im.size == size else im.resize(size, Image.Resampling.BILINEAR))

    def full(self) -> np.ndarray:
        """The whole image (float32)."""
        return self.levels if self.table is None else np.take(self.table, self.levels)

    def work_copy(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """:func:`~htr.preprocess.resize.work_copy` of ``box`` with a 1-pixel margin (float32, read-only).

        From 8-bit levels, PIL crops them and looks them up itself ('L' to 'F' by the table), then resizes: no
        float copy of the crop in numpy, no conversion of it for PIL.
        """
        rows, cols = _region(box, 1, self.shape)
        if self.table is None:
            return work_copy(self.levels[rows, cols], crop=False)
        im = Image.fromarray(self.levels).crop((cols.start, rows.start, cols.stop, rows.stop))
        im = im.point(self._table_list(), "F")
        new_h = work_rows(im.height, im.width)
        if new_h < im.height:
            im = im.resize((scaled_width(im.height, im.width, new_h), new_h), Image.Resampling.BILINEAR)
        return np.asarray(im)

    def straightened(self, box: tuple[int, int, int, int], linear: np.ndarray) -> tuple[LineInk, float, float]:
        """:func:`~htr.preprocess.render.straighten` of ``box`` with a 2-pixel margin: ``(image, x_scale, y_scale)``."""
        rows, cols = _region(box, 2, self.shape)
        if self.table is None or self.table[255] != 0.0:  # uncovered areas must come out as background
            out, x_scale, y_scale = straighten(self.crop(box, 2), linear)
            return LineInk(out), x_scale, y_scale
        out, x_scale, y_scale = straighten(self.levels[rows, cols], linear, fill=255)
        moved = LineInk(out, self.table)
        moved._points = self._points
        return moved, x_scale, y_scale


def _region(box: tuple[int, int, int, int], margin: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The rows and columns of ``box`` with ``margin`` around it, clamped to an image of ``shape``."""
    (r0, r1, c0, c1), (h, w) = box, shape
    return slice(max(0, r0 - margin), min(h, r1 + margin)), slice(max(0, c0 - margin), min(w, c1 + margin))
