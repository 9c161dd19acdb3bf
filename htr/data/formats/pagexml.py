"""Parsing PAGE XML (2013, 2019 and kin) and ALTO (v2 to v4) into text lines with polygons in page pixels.

Parsing uses :mod:`xml.etree.ElementTree` and matches elements by local name, so any namespace of the PAGE
family (``http://schema.primaresearch.org/PAGE/gts/pagecontent/...``) or of ALTO (``ns-v2#``, ``ns-v3#``,
``ns-v4#``, or none) reads. Lines come in file order.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from htr.errors import DataError
from htr.imageio import IMAGE_SUFFIXES

Point = tuple[float, float]

_ALTO_UNITS_PER_INCH = {"mm10": 254.0, "inch1200": 1200.0}


@dataclass(frozen=True)
class PageLine:
    """One ``TextLine``: its id, polygon in page pixels (in file order), transcription (not normalized) and
    baseline (None when the file gives none; htr does not need it to read, but writes it back out)."""

    id: str
    polygon: tuple[Point, ...]
    text: str
    baseline: tuple[Point, ...] | None = None


@dataclass(frozen=True)
class PageDoc:
    """A parsed PAGE or ALTO file: its format (``"page"`` or ``"alto"``), page image and lines in file order."""

    xml: Path
    format: str
    image: Path
    lines: tuple[PageLine, ...]


def _local(tag: object) -> str:
    """Element name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    """Direct children of ``el`` named ``name`` (any namespace)."""
    return [c for c in el if _local(c.tag) == name]


def _first(el: ET.Element, *path: str) -> ET.Element | None:
    """The first element down the chain of child names ``path``, or None."""
    for name in path:
        found = _children(el, name)
        if not found:
            return None
        el = found[0]
    return el


def xml_format(path: str | Path) -> str | None:
    """``"page"`` or ``"alto"`` from the root element of an XML file; None for other or malformed XML."""
    try:
        with open(path, "rb") as f:
            for _, el in ET.iterparse(f, events=("start",)):
                return {"PcGts": "page", "alto": "alto"}.get(_local(el.tag))
    except (ET.ParseError, OSError):
        return None
    return None


def parse_points(text: str, where: str, path: Path) -> tuple[Point, ...]:
    """Points of ``"x,y x,y ..."`` or ``"x y x y ..."`` (both occur in ALTO) as float pairs."""
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise DataError(f"{where}: points {text[:60]!r} are not numbers", path) from None
    if not values:
        raise DataError(f"{where}: has no points", path)
    if len(values) % 2:
        raise DataError(f"{where}: points {text[:60]!r} have an odd number of coordinates", path)
    return tuple(zip(values[0::2], values[1::2], strict=True))


def parse_page_file(path: str | Path) -> PageDoc:
    """Parse a PAGE or ALTO file (format told by its root element); coordinates come back in page pixels."""
    path = Path(os.path.abspath(path))
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise DataError(f"not well-formed XML ({e})", path) from None
    except OSError as e:
        raise DataError(f"XML file cannot be read ({e.strerror})", path) from None
    if _local(root.tag) == "PcGts":
        return _parse_page(root, path)
    if _local(root.tag) == "alto":
        return _parse_alto(root, path)
    raise DataError(f"root element <{_local(root.tag)}> is neither PAGE <PcGts> nor <alto>", path)


def _line_id(el: ET.Element, attr: str, index: int) -> str:
    return (el.get(attr) or "").strip() or f"line{index:04d}"


def _parse_page(root: ET.Element, path: Path) -> PageDoc:
    """PAGE: ``Page/@imageFilename``; each TextLine's ``Coords`` and its line-level ``TextEquiv/Unicode``."""
    page = _first(root, "Page")
    if page is None:
        raise DataError("PAGE file has no <Page> element", path)
    lines = []
    for i, el in enumerate(el for el in page.iter() if _local(el.tag) == "TextLine"):
        line_id = _line_id(el, "id", i)
        coords = _first(el, "Coords")
        if coords is None:
            raise DataError(f"TextLine {line_id!r} has no <Coords>", path)
        points = coords.get("points")
        if points is None:  # PAGE 2010 and older: <Point x= y=> children
            points = " ".join(f"{p.get('x', '')},{p.get('y', '')}" for p in _children(coords, "Point"))
        polygon = parse_points(points, f"TextLine {line_id!r}", path)
        baseline = _first(el, "Baseline")
        if baseline is not None:
            baseline = parse_points(baseline.get("points", ""), f"TextLine {line_id!r} Baseline", path) or None
        lines.append(PageLine(line_id, polygon, _page_text(el), baseline))
    image = find_page_image(path, page.get("imageFilename"))
    return PageDoc(path, "page", image, tuple(lines))


def _page_text(line: ET.Element) -> str:
    """The line's own TextEquiv (the lowest ``@index``, else the first); else its Words' texts joined by spaces."""
    own = _text_equiv(line)
    if own is not None:
        return own
    words = [_text_equiv(w) for w in _children(line, "Word")]
    return " ".join(w for w in words if w)


def _text_equiv(el: ET.Element) -> str | None:
    """Unicode text of the main TextEquiv child of ``el``, or None when it has none."""
    equivs = _children(el, "TextEquiv")
    if not equivs:
        return None

    def rank(e: ET.Element) -> float:
        try:
            return float(e.get("index", "inf"))
        except ValueError:
            return math.inf

    best = min(equivs, key=rank)  # min() keeps the first of equal ranks
    unicode = _first(best, "Unicode")
    return (unicode.text or "") if unicode is not None else None


def _parse_alto(root: ET.Element, path: Path) -> PageDoc:
    """ALTO: ``sourceImageInformation/fileName``; each TextLine's polygon (or box) and String/SP/HYP text."""
    declared = _first(root, "Description", "sourceImageInformation", "fileName")
    image = find_page_image(path, declared.text if declared is not None else None)
    unit_el = _first(root, "Description", "MeasurementUnit")
    unit = (unit_el.text or "").strip() if unit_el is not None else "pixel"
    scale = _alto_scale(unit or "pixel", root, image, path)
    lines = []
    for i, el in enumerate(el for el in root.iter() if _local(el.tag) == "TextLine"):
        line_id = _line_id(el, "ID", i)
        polygon = _alto_polygon(el, line_id, path)
        baseline = _alto_baseline(el, polygon, line_id, path)
        polygon = tuple((x * scale, y * scale) for x, y in polygon)
        baseline = tuple((x * scale, y * scale) for x, y in baseline) if baseline else None
        lines.append(PageLine(line_id, polygon, _alto_text(el), baseline))
    return PageDoc(path, "alto", image, tuple(lines))


def _alto_polygon(line: ET.Element, line_id: str, path: Path) -> tuple[Point, ...]:
    """``Shape/Polygon/@POINTS`` of the line, else the rectangle of its HPOS, VPOS, WIDTH and HEIGHT."""
    polygon = _first(line, "Shape", "Polygon")
    if polygon is not None and polygon.get("POINTS", "").strip():
        return parse_points(polygon.get("POINTS", ""), f"TextLine {line_id!r}", path)
    try:
        x, y, w, h = (float(line.get(a, "")) for a in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
    except ValueError:
        raise DataError(
            f"TextLine {line_id!r} has neither a Shape/Polygon nor numeric HPOS, VPOS, WIDTH, HEIGHT", path
        ) from None
    return ((x, y), (x + w, y), (x + w, y + h), (x, y + h))


def _alto_baseline(line: ET.Element, polygon: tuple[Point, ...], line_id: str, path: Path) -> tuple[Point, ...] | None:
    """``@BASELINE``: points since ALTO 4.2; one number (the baseline's height, before 4.2) is a horizontal
    line across the line's outline."""
    text = line.get("BASELINE", "").strip()
    if not text:
        return None
    try:
        y = float(text)
    except ValueError:
        return parse_points(text, f"TextLine {line_id!r} BASELINE", path) or None
    xs = [x for x, _ in polygon]
    return ((min(xs), y), (max(xs), y))


def _alto_text(line: ET.Element) -> str:
    """Join the line's ``String/@CONTENT``: ``SP`` elements are the spaces when the line has any (adjacent
    Strings then join without one), else Strings are separated by one space; ``HYP/@CONTENT`` is appended."""
    has_sp = any(_local(c.tag) == "SP" for c in line)
    parts: list[str] = []
    previous = None
    for child in line:
        name = _local(child.tag)
        if name == "String":
            if previous == "String" and not has_sp:
                parts.append(" ")
            parts.append(child.get("CONTENT", ""))
        elif name == "SP":
            parts.append(" ")
        elif name == "HYP":
            parts.append(child.get("CONTENT", ""))
        else:
            continue
        previous = name
    return "".join(parts)


def _alto_scale(unit: str, root: ET.Element, image: Path, path: Path) -> float:
    """Pixels per ALTO unit: 1 for ``pixel``; for ``mm10``/``inch1200`` the image's DPI, else the ratio of
    the image's width to ``Page/@WIDTH``."""
    if unit == "pixel":
        return 1.0
    if unit not in _ALTO_UNITS_PER_INCH:
        raise DataError(f"ALTO MeasurementUnit {unit!r} is not one of pixel, mm10, inch1200", path)
    try:
        with Image.open(image) as im:
            dpi, width = im.info.get("dpi"), im.size[0]
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the size of page image {image.name} ({e})", path) from None
    if dpi and float(dpi[0]) > 1:
        return float(dpi[0]) / _ALTO_UNITS_PER_INCH[unit]
    page = next((el for el in root.iter() if _local(el.tag) == "Page"), None)
    try:
        page_width = float(page.get("WIDTH", "")) if page is not None else 0.0
    except ValueError:
        page_width = 0.0
    if page_width > 0:
        return width / page_width
    raise DataError(
        f"coordinates are in {unit} but page image {image.name} records no resolution (DPI) and <Page> no "
        "WIDTH, so they cannot be converted to pixels",
        path,
    )


def find_page_image(xml: Path, declared: str | None) -> Path:
    """The page image: ``declared`` (relative to the XML's folder; else its file name there or, for a
    ``page/`` sub-folder as Transkribus exports it, in the parent), else an image named like the XML."""
    folders = [xml.parent] + ([xml.parent.parent] if xml.parent.name.lower() == "page" else [])
    candidates: list[Path] = []
    if declared and declared.strip():
        name = re.sub(r"^file:(//)?", "", declared.strip()).replace("\\", "/")
        if Path(name).is_absolute():
            candidates.append(Path(name))
        candidates.append(xml.parent / name)
        candidates += [folder / Path(name).name for folder in folders]
    for folder in folders:
        candidates += [folder / (xml.stem + s) for suffix in IMAGE_SUFFIXES for s in (suffix, suffix.upper())]
    for candidate in candidates:
        with contextlib.suppress(OSError):  # a name too long for the disk names no file either
            if candidate.is_file():
                return Path(os.path.normpath(candidate))
    what = f"page image {declared!r}" if declared else f"a page image named {xml.stem}.*"
    raise DataError(f"{what} not found next to the XML", xml)
