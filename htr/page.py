"""Reading a whole page: its lines (found by :mod:`htr.segment`, or from a PAGE/ALTO file) recognized in order.

:func:`recognize_page` takes a page image (lines are segmented, top to bottom) or a PAGE/ALTO XML file (its
lines and their order are used as they are; the page image is the one the XML names) and returns a
:class:`PageResult`: each line's text, confidence and outline, and the page's text, one line per line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from htr.data.formats.pages import crop_line, line_box
from htr.data.formats.pagexml import PageDoc, Point, parse_page_file
from htr.data.lines import preprocess_image
from htr.decode import DecodeConfig, make_decoder
from htr.errors import DataError, HTRError
from htr.imageio import load_image
from htr.inference import LoadedModel, OnnxModel, line_log_probs
from htr.segment import SegmentConfig, segment_lines


@dataclass
class LineResult:
    """One recognized line of a page: text, confidence (in [0, 1]), outline and baseline (when known) in page
    pixels."""

    text: str
    confidence: float
    box: tuple[int, int, int, int]
    polygon: tuple[Point, ...]
    char_confidences: list[float] = field(default_factory=list)
    id: str | None = None
    baseline: tuple[Point, ...] | None = None


@dataclass
class PageResult:
    """A recognized page: its image, the XML its lines came from (None when segmented), its lines in order and
    the page image's ``(width, height)``."""

    image: Path | None
    lines: list[LineResult]
    xml: Path | None = None
    size: tuple[int, int] | None = None

    @property
    def text(self) -> str:
        """The page's text: the lines' texts in reading order, one per line."""
        return "\n".join(line.text for line in self.lines)

    def to_json(self, chars: bool = False) -> dict[str, Any]:
        """A JSON-ready dict: ``image`` (``xml`` too for an XML input), ``lines`` (``text``, ``confidence``,
        ``box`` ``[x0, y0, x1, y1]``, ``polygon`` ``[[x, y], ...]``; with ``chars``, per-character confidences)
        and ``text``."""
        lines = []
        for line in self.lines:
            obj: dict[str, Any] = {
                "text": line.text,
                "confidence": round(line.confidence, 4),
                "box": list(line.box),
                "polygon": [[round(x, 1), round(y, 1)] for x, y in line.polygon],
            }
            if line.id is not None:
                obj["id"] = line.id
            if chars:
                obj["chars"] = [
                    {"char": c, "confidence": round(conf, 4)}
                    for c, conf in zip(line.text, line.char_confidences, strict=False)
                ]
            lines.append(obj)
        out: dict[str, Any] = {"image": str(self.image) if self.image is not None else None}
        if self.xml is not None:
            out["xml"] = str(self.xml)
        out.update(lines=lines, text=self.text)
        return out


@dataclass
class PageLines:
    """A page ready for recognition: its image, line outlines (reading order), their baselines where known
    and, from XML, line ids."""

    page: Image.Image
    polygons: list[tuple[Point, ...]]
    image: Path | None = None
    xml: Path | None = None
    ids: list[str] | None = None
    baselines: list[tuple[Point, ...] | None] | None = None


def is_page_xml(path: str | Path) -> bool:
    """Whether ``path`` names an XML file (taken as PAGE or ALTO)."""
    return Path(path).suffix.lower() == ".xml"


def page_lines(source: str | Path | Image.Image | PageDoc, segment_cfg: SegmentConfig | None = None) -> PageLines:
    """The lines of a page: from a PAGE/ALTO file (path or parsed) as they are, else segmented from the image.

    Raises:
        HTRError: an unreadable image or XML file.
    """
    if isinstance(source, (str, Path)) and is_page_xml(source):
        source = parse_page_file(source)
    if isinstance(source, PageDoc):
        try:
            page = load_image(source.image)
        except HTRError as e:
            raise DataError(f"page image: {e}", source.xml) from None
        lines = [line for line in source.lines if line.polygon]
        return PageLines(
            page,
            [line.polygon for line in lines],
            source.image,
            source.xml,
            [line.id for line in lines],
            [line.baseline for line in lines],
        )
    path = None
    if isinstance(source, Image.Image):
        page = source.convert("L") if source.mode != "L" else source
    else:
        path = Path(source)
        page = load_image(path)
    found = segment_lines(page, segment_cfg)
    return PageLines(page, [line.polygon for line in found], path, baselines=[line.baseline or None for line in found])


def recognize_page(
    loaded: LoadedModel | OnnxModel,
    page: str | Path | Image.Image | PageDoc | PageLines,
    decode_cfg: DecodeConfig | None = None,
    batch_size: int = 16,
    segment_cfg: SegmentConfig | None = None,
    decoder: Any = None,
    progress: Callable[[int], None] | None = None,
) -> PageResult:
    """Recognize every line of a page, in reading order.

    Args:
        loaded: the model (:func:`htr.inference.load_model`).
        page: a page image (path or PIL image; its lines are found by :func:`htr.segment.segment_lines`), a
            PAGE/ALTO file (path ending in ``.xml``, or parsed; its lines are used as they are), or the
            :class:`PageLines` of :func:`page_lines`.
        decode_cfg: decoder settings (greedy by default); ignored when ``decoder`` is given.
        batch_size: lines per forward pass.
        segment_cfg: segmentation settings for a page image.
        decoder: a decoder made by :func:`htr.decode.make_decoder`, to share one between pages.
        progress: called with the number of lines just recognized, after each batch.
    """
    lines = page if isinstance(page, PageLines) else page_lines(page, segment_cfg)
    decoder = decoder or make_decoder(decode_cfg or DecodeConfig(), loaded.charset.labels)
    arrays = []
    for k, polygon in enumerate(lines.polygons):
        try:
            crop = crop_line(lines.page, polygon)
        except ValueError as e:  # only an XML's line can lie off its page
            raise DataError(f"TextLine {lines.ids[k] if lines.ids else k}: {e}", lines.xml) from None
        arrays.append(preprocess_image(crop, loaded.preprocess))
    # Batches of similar widths, as recognize_lines makes them, one at a time so progress can be told.
    order = sorted(range(len(arrays)), key=lambda i: arrays[i].shape[1])
    hyps: list[Any] = [None] * len(arrays)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        for i, lp in zip(idx, line_log_probs(loaded, [arrays[i] for i in idx], batch_size), strict=True):
            hyps[i] = decoder.decode(lp)
        if progress is not None:
            progress(len(idx))
    results = []
    for k, (polygon, hyp) in enumerate(zip(lines.polygons, hyps, strict=True)):
        box = line_box(polygon, lines.page.size)
        results.append(
            LineResult(
                hyp.text,
                float(hyp.confidence),
                box,
                tuple((float(x), float(y)) for x, y in polygon),
                list(hyp.char_confidences),
                lines.ids[k] if lines.ids is not None else None,
                lines.baselines[k] if lines.baselines is not None else None,
            )
        )
    return PageResult(lines.image, results, lines.xml, lines.page.size)


def draw_lines(page: Image.Image, polygons: list[tuple[Point, ...]], width: int = 3) -> Image.Image:
    """An RGB copy of ``page`` with each line's outline drawn (alternating colours), for checking by eye."""
    out = page.convert("RGB")
    draw = ImageDraw.Draw(out)
    colours = [(220, 30, 30), (30, 90, 220)]
    for i, polygon in enumerate(polygons):
        draw.polygon([tuple(p) for p in np.asarray(polygon, dtype=float)], outline=colours[i % 2], width=width)
    return out
