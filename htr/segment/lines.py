"""Text-line segmentation of a page image: the steps of :mod:`htr.segment` put together, and the lines it returns.

The work happens on a downscaled, straightened copy (:mod:`htr.segment.mask`, :mod:`htr.segment.bands`,
:mod:`htr.segment.outlines`); here each line's outline and baseline are turned back into page pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from htr.preprocess.contrast import normalize_contrast, to_ink_array
from htr.segment.bands import find_bands
from htr.segment.config import SegmentConfig
from htr.segment.mask import column_offsets, downscale, offsets_at, otsu, page_skew, ruled_lines, shear
from htr.segment.outlines import Point, find_seams, outline_polygon


@dataclass(frozen=True)
class LineBox:
    """One text line found on a page, in page pixels.

    Attributes:
        box: ``(x0, y0, x1, y1)``, the bounding box of ``polygon`` (right and bottom exclusive).
        polygon: the line's outline, clockwise from its top-left corner: a rectangle around its ink in the
            straightened page, less what lies beyond the paths between it and its neighbours, turned back by
            the skew.
        baseline: an estimate of the line the writing rests on, left end then right end: the lower edge of
            the line's body (its x-height rows) across the line, turned back by the skew. Baseline-based
            tools (kraken, eScriptorium) skip lines without one when they read PAGE or ALTO.
    """

    box: tuple[int, int, int, int]
    polygon: tuple[Point, ...]
    baseline: tuple[Point, ...] = ()

    @property
    def height(self) -> int:
        """Height of the bounding box in pixels."""
        return self.box[3] - self.box[1]


def segment_lines(page: Image.Image | np.ndarray, cfg: SegmentConfig | None = None) -> list[LineBox]:
    """The text lines of a page image (dark ink on light paper), top to bottom; see :mod:`htr.segment` for the steps.

    Args:
        page: a PIL image (any mode; 'L' is usual) or a 2-D array, as :func:`htr.preprocess.to_ink_array`
            takes.
        cfg: segmentation settings (defaults: :class:`SegmentConfig`).

    Returns:
        The lines in reading order (top to bottom); an empty list for a page without ink.
    """
    cfg = cfg or SegmentConfig()
    ink = normalize_contrast(to_ink_array(page))
    height, width = ink.shape
    factor = max(1, math.ceil(width / cfg.work_width))
    small = downscale(ink, factor)
    threshold = otsu(small)
    mask = small > threshold
    if not mask.any():
        return []
    skew = page_skew(mask, cfg.max_skew)
    offsets = column_offsets(mask.shape[1], skew)
    straight = shear(mask, offsets)
    # Rules are thin and often broken at the work scale: look for them in a lighter threshold too.
    faint = shear(small > 0.5 * threshold, offsets)
    ruled = straight.copy()
    straight &= ~ruled_lines(faint, max(8, round(cfg.rule_length * mask.shape[1])))
    bands, pitch, smooth = find_bands(straight, cfg)
    # The paths between lines do not cross ruled lines either: a line is cut with the rule it is written on.
    seams = find_seams(ruled, [b.peak for b in bands], smooth, pitch)
    lines = []
    for i, band in enumerate(bands):
        x0, x1 = int(band.x0), int(math.ceil(band.x1))
        # The band's rectangle, less what the paths between lines give to the neighbours (their ascenders
        # and descenders reaching into it).
        top = np.full(x1 - x0, band.top)
        if i > 0:
            top = np.maximum(top, seams[i - 1][x0:x1])
        bottom = np.full(x1 - x0, band.bottom)
        if i < len(seams):
            bottom = np.minimum(bottom, seams[i][x0:x1] + 1)
        outline = outline_polygon(np.arange(x0, x1 + 1, dtype=np.float64), top, bottom)
        polygon = tuple(_to_page(x, y, offsets, factor, (width, height)) for x, y in outline)
        xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
        box = (math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys)))
        baseline = tuple(_to_page(float(x), band.base, offsets, factor, (width, height)) for x in (x0, x1))
        lines.append(LineBox(box, polygon, baseline))
    return lines


def _to_page(x: float, y: float, offsets: np.ndarray, factor: int, size: tuple[int, int]) -> Point:
    """A point of the straightened work image in page pixels (turned back by the skew), kept on the page."""
    return (
        min(max(x * factor, 0.0), float(size[0])),
        min(max((y - offsets_at(offsets, x)) * factor, 0.0), float(size[1])),
    )
