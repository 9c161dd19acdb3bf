"""Property-based checks of the manifest reader and the PAGE/ALTO parsers (hypothesis, derandomized).

Valid generated files must read back as the lines they were generated from; broken ones (a rule of the format
broken on purpose, or random bytes flipped, inserted, deleted or cut) must give a result or htr's own
:class:`DataError`, never another exception.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from htr.data.formats import read_tsv
from htr.data.formats.pagexml import PageDoc, parse_page_file
from htr.data.samples import Sample
from htr.errors import DataError

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Characters of a transcription: anything printable that is not a separator or a control/surrogate/private code.
CHAR = st.characters(blacklist_categories=("Z", "C"))
WORD = st.text(CHAR, min_size=1, max_size=8)
# Normalized texts (NFC, single spaces, no outer whitespace) read back exactly as written.
TEXT = st.lists(WORD, max_size=6).map(" ".join).filter(lambda t: unicodedata.is_normalized("NFC", t))
NAME = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_-"), min_size=1, max_size=10)
# A folder or file name: no "." or "..", no space at either end (the reader strips the field).
SEGMENT = st.text(st.sampled_from("abcxyz0189_-. "), min_size=1, max_size=10).filter(
    lambda s: s.strip(". ") != "" and s == s.strip()
)


def _mutate(data: bytes, how: str, at: int, byte: int) -> bytes:
    """``data`` with one byte flipped, inserted or deleted at ``at``, or cut there."""
    at = at % (len(data) + 1)
    if how == "flip" and at < len(data):
        return data[:at] + bytes([data[at] ^ (byte or 1)]) + data[at + 1 :]
    if how == "insert":
        return data[:at] + bytes([byte]) + data[at:]
    if how == "delete":
        return data[:at] + data[at + 1 :]
    return data[:at]


MUTATION = st.tuples(st.sampled_from(["flip", "insert", "delete", "cut"]), st.integers(0, 2**16), st.integers(0, 255))

# ------------------------------------------------------------------------------------------ TSV manifests


@st.composite
def manifests(draw: st.DrawFn) -> tuple[list[str], list[dict[str, str]], str, bool]:
    """``(columns, rows, line ending, BOM)`` of a valid manifest: unique ids, relative image paths (some with
    Windows separators), normalized texts, optional writer/split/extra columns in any order."""
    columns = ["id", "image", "text"] + [c for c in ("writer", "split", "notes") if draw(st.booleans())]
    columns = draw(st.permutations(columns))
    ids = draw(st.lists(NAME, min_size=1, max_size=8, unique=True))
    rows = []
    for i in ids:
        parts = draw(st.lists(SEGMENT, min_size=1, max_size=3))
        row = {"id": i, "image": draw(st.sampled_from(["/", "\\"])).join(parts) + ".png", "text": draw(TEXT)}
        row |= {"writer": draw(st.sampled_from(["", "w1", "w2"])), "split": draw(st.sampled_from(["", "train", "val"]))}
        rows.append(row | {"notes": draw(st.text(CHAR, max_size=5))})
    return columns, rows, draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans())


def _tsv_bytes(columns: list[str], rows: list[dict[str, str]], eol: str, bom: bool) -> bytes:
    lines = ["\t".join(columns)] + ["\t".join(r[c] for c in columns) for r in rows]
    return ("\ufeff" if bom else "").encode() + (eol.join(lines) + eol).encode()


def _expected(columns: list[str], rows: list[dict[str, str]], root: Path) -> list[Sample]:
    return [
        Sample(
            id=r["id"],
            image=Path(os.path.normpath(root / r["image"].replace("\\", "/"))),
            text=r["text"],
            writer=(r["writer"] or None) if "writer" in columns else None,
            split=(r["split"] or None) if "split" in columns else None,
        )
        for r in rows
    ]


@FUZZ
@given(manifest=manifests())
def test_fuzz_valid_manifests_read_back_exactly(tmp_path: Path, manifest: tuple) -> None:
    columns, rows, eol, bom = manifest
    path = tmp_path / "lines.tsv"
    path.write_bytes(_tsv_bytes(columns, rows, eol, bom))
    assert read_tsv(path) == _expected(columns, rows, tmp_path)


def _renamed(columns: list[str], rows: list[dict[str, str]], old: str, new: str) -> tuple[list, list]:
    """The manifest with column ``old`` called ``new``."""
    return [new if c == old else c for c in columns], [{**r, new: r[old]} for r in rows]


# Each breaks one rule of the format: (what, function of (columns, rows) -> (columns, rows)).
BREAKS = {
    "no id column": lambda c, r: _renamed(c, r, "id", "ID"),
    "no text column": lambda c, r: _renamed(c, r, "text", "txt"),
    "a duplicate id": lambda c, r: (c, [*r, dict(r[0])]),
    "an empty id": lambda c, r: (c, [*r, {**r[0], "id": " "}]),
    "an absolute image path": lambda c, r: (c, [*r, {**r[0], "id": "abs", "image": "/etc/x.png"}]),
    "a Windows drive path": lambda c, r: (c, [*r, {**r[0], "id": "drive", "image": "C:\\x.png"}]),
    "an image outside the folder": lambda c, r: (c, [*r, {**r[0], "id": "up", "image": "a\\..\\..\\x.png"}]),
    "an empty image path": lambda c, r: (c, [*r, {**r[0], "id": "none", "image": ""}]),
    "a NUL in an image path": lambda c, r: (c, [*r, {**r[0], "id": "nul", "image": "a\0b.png"}]),
}


@FUZZ
@given(manifest=manifests(), broken=st.sampled_from(sorted(BREAKS)))
def test_fuzz_manifests_breaking_a_rule_are_a_data_error(tmp_path: Path, manifest: tuple, broken: str) -> None:
    columns, rows, eol, bom = manifest
    path = tmp_path / "lines.tsv"
    path.write_bytes(_tsv_bytes(*BREAKS[broken](columns, rows), eol, bom))
    with pytest.raises(DataError, match=f"^{path}: "):
        read_tsv(path)


@FUZZ
@given(manifest=manifests(), extra=st.sampled_from(["", "\t"]), byte=st.sampled_from([b"\xff", b"\xc3", b"\x80"]))
def test_fuzz_manifests_with_a_wrong_field_count_or_bad_utf8(
    tmp_path: Path, manifest: tuple, extra: str, byte: bytes
) -> None:
    columns, rows, eol, bom = manifest
    data = _tsv_bytes(columns, rows, eol, bom)
    path = tmp_path / "lines.tsv"
    path.write_bytes(data + (f"x{extra}y{eol}".encode() if extra else byte + b"\tb\tc" + eol.encode()))
    with pytest.raises(DataError, match=f"^{path}: line {len(rows) + 2}: "):
        read_tsv(path)


@FUZZ
@given(manifest=manifests(), mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_fuzz_damaged_manifests_read_or_raise_a_data_error(tmp_path: Path, manifest: tuple, mutations: list) -> None:
    data = _tsv_bytes(*manifest)
    for how, at, byte in mutations:
        data = _mutate(data, how, at, byte)
    path = tmp_path / "lines.tsv"
    path.write_bytes(data)
    try:
        samples = read_tsv(path)
    except DataError as e:
        assert str(e).startswith(f"{path}: ")
        return
    assert samples and all(isinstance(s, Sample) and s.image.is_relative_to(tmp_path) for s in samples)


# ------------------------------------------------------------------------------------------- PAGE and ALTO

PAGE_NS = [
    "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15",
    "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15",
]
ALTO_NS = ["", "http://www.loc.gov/standards/alto/ns-v2#", "http://www.loc.gov/standards/alto/ns-v3#",
           "http://www.loc.gov/standards/alto/ns-v4#"]  # fmt: skip
POINT = st.tuples(st.integers(0, 5000), st.integers(0, 5000))


@st.composite
def page_lines(draw: st.DrawFn) -> list[tuple[str, list[tuple[int, int]], list[str]]]:
    """``(id, polygon, words)`` of each line: unique ids, 1-8 integer points, 0-5 words."""
    ids = draw(st.lists(NAME, max_size=6, unique=True))
    return [(i, draw(st.lists(POINT, min_size=1, max_size=8)), draw(st.lists(WORD, max_size=5))) for i in ids]


def _page_xml(ns: str, lines: list, word_level: list[bool], image: str) -> str:
    """A PAGE document: each line's text in its own TextEquiv (with a lower-ranked variant) or in its Words."""
    body = []
    for (line_id, polygon, words), by_word in zip(lines, word_level, strict=True):
        points = " ".join(f"{x},{y}" for x, y in polygon)
        if by_word:
            text = "".join(
                f'<Word id="{line_id}_w{k}"><Coords points="0,0"/><TextEquiv><Unicode>{escape(w)}</Unicode>'
                "</TextEquiv></Word>"
                for k, w in enumerate(words)
            )
        else:
            text = (
                f'<TextEquiv index="2"><Unicode>not this</Unicode></TextEquiv>'
                f'<TextEquiv index="1"><Unicode>{escape(" ".join(words))}</Unicode></TextEquiv>'
            )
        body.append(f'<TextLine id="{line_id}"><Coords points="{points}"/>{text}</TextLine>')
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<PcGts xmlns="{ns}"><Metadata/>'
        f"<Page imageFilename={quoteattr(image)} "
        f'imageWidth="5001" imageHeight="5001"><TextRegion id="r1"><Coords points="0,0 1,1"/>{"".join(body)}'
        "</TextRegion></Page></PcGts>"
    )


def _alto_xml(ns: str, lines: list, with_sp: list[bool], image: str) -> str:
    """An ALTO document in pixels: each line a polygon (or, for one point, a box) with its words as Strings."""
    body = []
    for (line_id, polygon, words), sp in zip(lines, with_sp, strict=True):
        strings = ("<SP/>" if sp else "").join(f"<String CONTENT={quoteattr(w)}/>" for w in words)
        if len(polygon) == 1:
            (x, y), shape = polygon[0], ""
            box = f'HPOS="{x}" VPOS="{y}" WIDTH="7" HEIGHT="3"'
        else:
            box = 'HPOS="0" VPOS="0" WIDTH="1" HEIGHT="1"'
            shape = f'<Shape><Polygon POINTS="{" ".join(f"{x},{y}" for x, y in polygon)}"/></Shape>'
        body.append(f'<TextLine ID="{line_id}" {box}>{shape}{strings}</TextLine>')
    xmlns = f' xmlns="{ns}"' if ns else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<alto{xmlns}><Description><MeasurementUnit>pixel</MeasurementUnit>'
        f"<sourceImageInformation><fileName>{escape(image)}</fileName></sourceImageInformation></Description>"
        f'<Layout><Page WIDTH="5001" HEIGHT="5001"><PrintSpace><TextBlock ID="b1">{"".join(body)}</TextBlock>'
        "</PrintSpace></Page></Layout></alto>"
    )


def _expected_polygon(kind: str, polygon: list[tuple[int, int]]) -> tuple[tuple[float, float], ...]:
    if kind == "alto" and len(polygon) == 1:
        (x, y) = polygon[0]
        return ((x, y), (x + 7, y), (x + 7, y + 3), (x, y + 3))
    return tuple((float(x), float(y)) for x, y in polygon)


@pytest.fixture
def page_folder(tmp_path: Path) -> Path:
    Image.new("L", (8, 8), 255).save(tmp_path / "page 1.png")
    return tmp_path


@FUZZ
@given(kind=st.sampled_from(["page", "alto"]), ns=st.integers(0, 3), lines=page_lines(), flags=st.lists(st.booleans()))
def test_fuzz_valid_page_and_alto_read_back_exactly(page_folder: Path, kind: str, ns: int, lines: list,
                                                    flags: list[bool]) -> None:  # fmt: skip
    flags = (flags + [False] * len(lines))[: len(lines)]
    path = page_folder / f"p.{kind}.xml"
    xml = _page_xml(PAGE_NS[ns % 2], lines, flags, "page 1.png") if kind == "page" else (
        _alto_xml(ALTO_NS[ns], lines, flags, "page 1.png"))  # fmt: skip
    path.write_text(xml, encoding="utf-8")
    doc = parse_page_file(path)
    assert isinstance(doc, PageDoc) and doc.format == kind and doc.image == page_folder / "page 1.png"
    assert [(ln.id, ln.polygon, ln.text) for ln in doc.lines] == [
        (i, _expected_polygon(kind, polygon), " ".join(words)) for i, polygon, words in lines
    ]


_LINE_POINTS = r'(<TextLine id="[^"]*"><Coords points=")([^"]*)"'
PAGE_BREAKS = {
    "no Coords": lambda x: x.replace('<Coords points="', '<Cords points="'),
    "points not numbers": lambda x: re.sub(_LINE_POINTS, r'\1\2 x"', x),
    "an odd number of coordinates": lambda x: re.sub(_LINE_POINTS, r'\1\2 9"', x),
    "no points": lambda x: re.sub(_LINE_POINTS, r'\1"', x),
    "no Page": lambda x: x.replace("<Page ", "<Pagina ").replace("</Page>", "</Pagina>"),
    "a missing image": lambda x: x.replace("page 1.png", "other.png"),
    "an image name too long for the disk": lambda x: x.replace("page 1.png", "p" * 300 + ".png"),
    "not well-formed": lambda x: x[: len(x) // 2],
    "another root": lambda x: x.replace("PcGts", "Other"),
}


@FUZZ
@given(ns=st.integers(0, 1), lines=page_lines().filter(bool), flags=st.lists(st.booleans()),
       broken=st.sampled_from(sorted(PAGE_BREAKS)))  # fmt: skip
def test_fuzz_page_breaking_a_rule_is_a_data_error(page_folder: Path, ns: int, lines: list, flags: list[bool],
                                                   broken: str) -> None:  # fmt: skip
    flags = (flags + [False] * len(lines))[: len(lines)]
    xml = PAGE_BREAKS[broken](_page_xml(PAGE_NS[ns], lines, flags, "page 1.png"))
    path = page_folder / "p.xml"
    path.write_text(xml, encoding="utf-8")
    with pytest.raises(DataError, match=f"^{path}: "):
        parse_page_file(path)


@FUZZ
@given(kind=st.sampled_from(["page", "alto"]), lines=page_lines(), mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_fuzz_damaged_page_and_alto_parse_or_raise_a_data_error(page_folder: Path, kind: str, lines: list,
                                                                mutations: list) -> None:  # fmt: skip
    flags = [False] * len(lines)
    xml = _page_xml(PAGE_NS[1], lines, flags, "page 1.png") if kind == "page" else (
        _alto_xml(ALTO_NS[3], lines, flags, "page 1.png"))  # fmt: skip
    data = xml.encode()
    for how, at, byte in mutations:
        data = _mutate(data, how, at, byte)
    path = page_folder / "p.xml"
    path.write_bytes(data)
    try:
        doc = parse_page_file(path)
    except DataError as e:
        assert str(e).startswith(f"{path}: ")
        return
    assert isinstance(doc, PageDoc) and all(len(ln.polygon) >= 1 for ln in doc.lines)
