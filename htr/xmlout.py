"""Writing a recognized page as PAGE XML (2019-07-15) or ALTO (v4.2), for eScriptorium, Transkribus, kraken.

Both hold the lines in reading order in one text region (PAGE ``TextRegion``, ALTO ``TextBlock``), each with its
outline (PAGE ``Coords``; ALTO ``Shape/Polygon`` and the bounding box), its baseline when known (from the input
XML, or the segmenter's estimate) and its text and confidence:

- PAGE: ``TextEquiv/@conf``, the line's confidence, and ``Unicode``, its text exactly as read. The region's own
  ``TextEquiv`` holds the page's text (the lines joined by line breaks), as PAGE's consistency rules expect.
- ALTO has no line confidence: the text is split at spaces into ``String`` elements (``SP`` between them, so
  runs of spaces and spaces at the ends are not kept) and each gets ``WC``, the mean of its characters'
  confidences, and ``CC``, one digit per character from 0 (sure) to 9 (unsure). A line read as empty has one
  ``String`` with an empty ``CONTENT`` (ALTO requires at least one).

Coordinates are page pixels rounded to integers and kept on the page (PAGE's points are non-negative integers);
PAGE points are written ``x,y x,y``, ALTO's ``x y x y`` as eScriptorium and kraken write them. Ids are the input
XML's line ids where they are valid XML ids, else ``line_1``, ``line_2``, ... The XML is built with
:mod:`xml.etree.ElementTree`, which escapes the text.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from htr import __version__
from htr.data.formats.pagexml import Point
from htr.page import LineResult, PageResult

PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
PAGE_XSD = f"{PAGE_NS}/pagecontent.xsd"
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
ALTO_XSD = "http://www.loc.gov/standards/alto/v4/alto-4-2.xsd"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_NCNAME = re.compile(r"[^\W\d][\w.\-]*")  # an XML id (xsd:ID is an NCName: no colon, no leading digit)


def image_reference(image: Path, xml: Path) -> str:
    """How the XML names its page image: the file name when the image is next to the XML (or, as Transkribus
    lays pages out, in the folder above a ``page/`` folder), else its path relative to the XML's folder."""
    image, folder = Path(os.path.abspath(image)), Path(os.path.abspath(xml)).parent
    if image.parent == folder or (folder.name.lower() == "page" and image.parent == folder.parent):
        return image.name
    try:
        return Path(os.path.relpath(image, folder)).as_posix()
    except ValueError:  # another drive (Windows)
        return str(image)


def page_xml(result: PageResult, image_name: str, size: tuple[int, int], now: datetime | None = None) -> str:
    """The PAGE 2019 document of a recognized page whose image is ``image_name``, ``size`` pixels large."""
    stamp = _timestamp(now)
    ids = _line_ids(result.lines)
    taken = set(ids)
    root = ET.Element("PcGts", {"xmlns": PAGE_NS, "xmlns:xsi": XSI_NS, "xsi:schemaLocation": f"{PAGE_NS} {PAGE_XSD}"})
    meta = ET.SubElement(root, "Metadata")
    ET.SubElement(meta, "Creator").text = f"htr {__version__}"
    ET.SubElement(meta, "Created").text = stamp
    ET.SubElement(meta, "LastChange").text = stamp
    page = ET.SubElement(root, "Page", imageFilename=image_name, imageWidth=str(size[0]), imageHeight=str(size[1]))
    if result.lines:
        region_id = _fresh("region_1", taken)
        order = ET.SubElement(ET.SubElement(page, "ReadingOrder"), "OrderedGroup", id=_fresh("ro_1", taken))
        ET.SubElement(order, "RegionRefIndexed", index="0", regionRef=region_id)
        region = ET.SubElement(page, "TextRegion", id=region_id)
        ET.SubElement(region, "Coords", points=_page_points(_rectangle(_all_points(result.lines), size), size))
        for line, line_id in zip(result.lines, ids, strict=True):
            el = ET.SubElement(region, "TextLine", id=line_id)
            ET.SubElement(el, "Coords", points=_page_points(line.polygon, size))
            if line.baseline:
                ET.SubElement(el, "Baseline", points=_page_points(line.baseline, size))
            equiv = ET.SubElement(el, "TextEquiv", conf=_conf(line.confidence))
            ET.SubElement(equiv, "Unicode").text = line.text
        ET.SubElement(ET.SubElement(region, "TextEquiv"), "Unicode").text = result.text
    return _serialize(root)


def alto_xml(result: PageResult, image_name: str, size: tuple[int, int], now: datetime | None = None) -> str:
    """The ALTO 4.2 document of a recognized page whose image is ``image_name``, ``size`` pixels large."""
    ids = _line_ids(result.lines)
    taken = set(ids)
    root = ET.Element(
        "alto",
        {"xmlns": ALTO_NS, "xmlns:xsi": XSI_NS, "xsi:schemaLocation": f"{ALTO_NS} {ALTO_XSD}", "SCHEMAVERSION": "4.2"},
    )
    desc = ET.SubElement(root, "Description")
    ET.SubElement(desc, "MeasurementUnit").text = "pixel"
    ET.SubElement(ET.SubElement(desc, "sourceImageInformation"), "fileName").text = image_name
    step = ET.SubElement(desc, "Processing", ID=_fresh("processing_1", taken))
    ET.SubElement(step, "processingCategory").text = "contentGeneration"
    ET.SubElement(step, "processingDateTime").text = _timestamp(now)
    software = ET.SubElement(step, "processingSoftware")
    ET.SubElement(software, "softwareName").text = "htr"
    ET.SubElement(software, "softwareVersion").text = __version__
    width, height = str(size[0]), str(size[1])
    page = ET.SubElement(
        ET.SubElement(root, "Layout"),
        "Page",
        ID=_fresh("page_1", taken),
        PHYSICAL_IMG_NR="1",
        WIDTH=width,
        HEIGHT=height,
    )
    space = ET.SubElement(page, "PrintSpace", HPOS="0", VPOS="0", WIDTH=width, HEIGHT=height)
    if not result.lines:
        return _serialize(root)
    block = ET.SubElement(space, "TextBlock", ID=_fresh("block_1", taken), **_alto_box(_all_points(result.lines), size))
    for line, line_id in zip(result.lines, ids, strict=True):
        el = ET.SubElement(block, "TextLine", ID=line_id, **_alto_box(line.polygon, size))
        if line.baseline:
            el.set("BASELINE", _alto_points(line.baseline, size))
        ET.SubElement(ET.SubElement(el, "Shape"), "Polygon", POINTS=_alto_points(line.polygon, size))
        _alto_strings(el, line)
    return _serialize(root)


def _alto_strings(el: ET.Element, line: LineResult) -> None:
    """The line's words as ``String`` elements (``WC``, ``CC``) with an ``SP`` between each two."""
    words = _words(line.text, line.char_confidences)
    if not words:
        ET.SubElement(el, "String", CONTENT="")
        return
    for i, (word, confs) in enumerate(words):
        if i:
            ET.SubElement(el, "SP")
        string = ET.SubElement(el, "String", CONTENT=word)
        if confs:
            string.set("WC", _conf(sum(confs) / len(confs)))
            string.set("CC", " ".join(str(round(9 * (1 - min(max(c, 0.0), 1.0)))) for c in confs))


def _words(text: str, confidences: Sequence[float]) -> list[tuple[str, list[float]]]:
    """The runs of non-space characters of ``text`` with their characters' confidences (none when the
    decoder gave a different number of confidences than characters)."""
    aligned = len(confidences) == len(text)
    words: list[tuple[str, list[float]]] = []
    for m in re.finditer(r"\S+", text):
        words.append((m.group(), list(confidences[m.start() : m.end()]) if aligned else []))
    return words


def _line_ids(lines: Sequence[LineResult]) -> list[str]:
    """Each line's id: its own when it is a valid, unused XML id, else ``line_<n>`` (n from 1, unused)."""
    own = [line.id if line.id and _NCNAME.fullmatch(line.id) else None for line in lines]
    taken = {i for i in own if i}
    ids: list[str] = []
    seen: set[str] = set()
    for n, line_id in enumerate(own, 1):
        if line_id is None or line_id in seen:
            line_id = _fresh(f"line_{n}", taken)
        seen.add(line_id)
        taken.add(line_id)
        ids.append(line_id)
    return ids


def _fresh(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``, ... whichever is not in ``taken`` first (then added to it)."""
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _int_points(points: Iterable[Point], size: tuple[int, int]) -> list[tuple[int, int]]:
    """Points rounded to whole pixels and kept on the page (0 to width - 1, 0 to height - 1); at least two."""
    out = [(min(max(round(x), 0), size[0] - 1), min(max(round(y), 0), size[1] - 1)) for x, y in points]
    return out * 2 if len(out) == 1 else out


def _page_points(points: Iterable[Point], size: tuple[int, int]) -> str:
    return " ".join(f"{x},{y}" for x, y in _int_points(points, size))


def _alto_points(points: Iterable[Point], size: tuple[int, int]) -> str:
    return " ".join(f"{x} {y}" for x, y in _int_points(points, size))


def _alto_box(points: Iterable[Point], size: tuple[int, int]) -> dict[str, str]:
    """``HPOS``, ``VPOS``, ``WIDTH``, ``HEIGHT`` of the points' bounding box (in whole pixels)."""
    xs, ys = zip(*_int_points(points, size), strict=True)
    return {
        "HPOS": str(min(xs)),
        "VPOS": str(min(ys)),
        "WIDTH": str(max(xs) - min(xs)),
        "HEIGHT": str(max(ys) - min(ys)),
    }


def _all_points(lines: Iterable[LineResult]) -> list[Point]:
    return [p for line in lines for p in line.polygon]


def _rectangle(points: Sequence[Point], size: tuple[int, int]) -> list[Point]:
    """The bounding rectangle of ``points``, clockwise from its top-left corner."""
    xs, ys = zip(*_int_points(points, size), strict=True)
    return [(min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys))]


def _conf(value: float) -> str:
    """A confidence in [0, 1] with four decimals, as the schemas' confidence types require."""
    return f"{min(max(float(value), 0.0), 1.0):.4f}"


def _timestamp(now: datetime | None) -> str:
    """UTC date and time to the second, as PAGE asks (``xsd:dateTime``)."""
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _serialize(root: ET.Element) -> str:
    """Indented UTF-8 XML with its declaration."""
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
