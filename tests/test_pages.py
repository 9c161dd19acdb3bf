"""PAGE XML and ALTO readers: exact texts and polygons, crops cut and masked right, clear errors."""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from htr.data.formats import read_dataset
from htr.data.formats.pages import (
    crop_line,
    line_box,
    page_xml_files,
    parse_page_file,
    read_pages,
    safe_name,
    xml_format,
)
from htr.errors import DataError
from tests.conftest import SHARED

PAGE_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "page"
ALTO_DIR = SHARED / "copiste-alto"
ALTO_PAGES = {"imp_wikitexte_0022": 23, "imp_wikitexte_0093": 19, "imp_wikitexte_0111": 14}
needs_alto = pytest.mark.skipif(not ALTO_DIR.is_dir(), reason="../shared/data/copiste-alto is absent")


def alto_lines_by_regex(xml: Path) -> list[tuple[str, str, list[float]]]:
    """(line id, text, polygon numbers) of each TextLine, found with regular expressions, not ElementTree."""
    out = []
    for block in re.findall(r"<TextLine\b(.*?)</TextLine>", xml.read_text(encoding="utf-8"), flags=re.S):
        line_id = re.search(r'\bID="([^"]*)"', block).group(1)
        contents = [html.unescape(c) for c in re.findall(r'\bCONTENT="([^"]*)"', block)]
        points = [float(v) for v in re.search(r'POINTS="([^"]*)"', block).group(1).split()]
        out.append((line_id, " ".join(contents), points))
    return out


@pytest.fixture(scope="module")
def alto_samples(tmp_path_factory: pytest.TempPathFactory) -> list:
    """copiste-alto read once, crops in a temporary folder (the shared data stay untouched)."""
    return read_pages(ALTO_DIR, cache_dir=tmp_path_factory.mktemp("alto-lines"))


# ---------------------------------------------------------------------------------------- copiste-alto


@needs_alto
def test_copiste_alto_texts_match_the_xml_exactly(alto_samples: list) -> None:
    expected = []
    for stem, n_lines in ALTO_PAGES.items():
        lines = alto_lines_by_regex(ALTO_DIR / f"{stem}.xml")
        assert len(lines) == n_lines
        expected += [(f"{stem}_{line_id}", text) for line_id, text, _ in lines]
    assert [(s.id, s.text) for s in alto_samples] == expected
    by_id = {s.id: s.text for s in alto_samples}
    assert by_id["imp_wikitexte_0022_eSc_line_3bd0f280"] == "La Fédération du Laos de football est une association"
    assert "l'AFC depuis 1980." in by_id.values()
    assert "également président du Consul>at< (1789)." in by_id.values()
    assert all(s.writer is None and s.split is None for s in alto_samples)


@needs_alto
def test_copiste_alto_crops_are_the_polygon_boxes_with_background_outside(alto_samples: list) -> None:
    doc = parse_page_file(ALTO_DIR / "imp_wikitexte_0093.xml")
    assert doc.format == "alto" and doc.image.name == "imp_wikitexte_0093.jpg"
    regex_lines = alto_lines_by_regex(doc.xml)
    crops = {s.id: s.image for s in alto_samples}
    for line, (_, _, numbers) in zip(doc.lines, regex_lines, strict=True):
        xs, ys = numbers[0::2], numbers[1::2]
        with Image.open(crops[f"imp_wikitexte_0093_{line.id}"]) as crop:
            assert crop.mode == "L"
            assert crop.size == (int(max(xs) - min(xs)) + 1, int(max(ys) - min(ys)) + 1)
    line = doc.lines[3]
    left, top, _, _ = line_box(line.polygon, (2550, 3300))
    mask = Image.new("L", Image.open(crops[f"imp_wikitexte_0093_{line.id}"]).size, 0)
    ImageDraw.Draw(mask).polygon([(x - left, y - top) for x, y in line.polygon], fill=255, outline=255)
    a = np.asarray(Image.open(crops[f"imp_wikitexte_0093_{line.id}"]))
    outside = a[np.asarray(mask) == 0]
    assert outside.size > 0 and len(np.unique(outside)) == 1
    assert outside[0] >= np.median(a[np.asarray(mask) > 0]) > 128  # light paper


# ---------------------------------------------------------------------------------------- PAGE fixtures


def test_page_2019_fixture() -> None:
    doc = parse_page_file(PAGE_FIXTURE / "p2019.xml")
    assert doc.format == "page" and doc.image == PAGE_FIXTURE / "page.png"
    assert [line.id for line in doc.lines] == ["l1", "l2", "l3"]
    # the line-level TextEquiv of lowest index; Word texts joined when the line has none; not the region's
    assert [line.text for line in doc.lines] == ["Quick brown fox", "jumps over the", "lazy dog & co."]
    assert doc.lines[0].polygon == ((12, 20), (120, 6), (300, 8), (310, 40), (200, 52), (14, 50))
    assert doc.lines[1].polygon == ((45, 62), (320, 62), (320, 104), (45, 104))
    assert [line.baseline for line in doc.lines] == [((14, 44), (308, 40)), None, None]  # kept where given


def test_page_2013_fixture_with_a_foreign_image_path() -> None:
    doc = parse_page_file(PAGE_FIXTURE / "p2013.xml")
    assert doc.image == PAGE_FIXTURE / "page.png"  # "C:\scans\page.png" found by its file name
    assert [(line.id, " ".join(line.text.split())) for line in doc.lines] == [
        ("tl_2", "jumps over the"),
        ("tl_3", "lazy dog & co."),
    ]


def test_read_pages_on_the_fixture_folder(tmp_path: Path) -> None:
    samples = read_pages(PAGE_FIXTURE, cache_dir=tmp_path)
    assert [(s.id, s.text) for s in samples] == [
        ("p2013_tl_2", "jumps over the"),
        ("p2013_tl_3", "lazy dog & co."),
        ("p2019_l1", "Quick brown fox"),
        ("p2019_l2", "jumps over the"),
        ("p2019_l3", "lazy dog & co."),
    ]
    assert all(s.image.parent == tmp_path and s.image.is_file() for s in samples)
    with Image.open(samples[2].image) as crop:
        assert crop.size == (310 - 12 + 1, 52 - 6 + 1)
        a = np.asarray(crop)
    assert a[0, 0] == a[-1, -1] == 225  # outside the hexagon: the paper's gray
    assert a.min() < 100  # the ink is there
    with Image.open(samples[3].image) as crop:
        assert crop.size == (320 - 45 + 1, 104 - 62 + 1)


def test_crops_are_reused_until_the_xml_changes(tmp_path: Path) -> None:
    folder = shutil.copytree(PAGE_FIXTURE, tmp_path / "pages")
    first = read_pages(folder)
    assert first[0].image.parent == folder / ".htr-lines"
    stamp = first[0].image.stat().st_mtime_ns
    assert read_pages(folder) == first and first[0].image.stat().st_mtime_ns == stamp
    later = stamp + 10**9
    os.utime(folder / "p2013.xml", ns=(later, later))
    read_pages(folder)
    assert first[0].image.stat().st_mtime_ns > stamp  # p2013 rewritten
    assert first[-1].image.stat().st_mtime_ns <= stamp + 10**9  # p2019's crops untouched


def test_read_dataset_dispatches_page_folders(tmp_path: Path) -> None:
    folder = shutil.copytree(PAGE_FIXTURE, tmp_path / "pages")
    assert [s.id for s in read_dataset(folder)][:2] == ["p2013_tl_2", "p2013_tl_3"]
    assert [s.id for s in read_dataset(folder / "p2019.xml")] == ["p2019_l1", "p2019_l2", "p2019_l3"]
    with pytest.raises(DataError, match="no 'train' sub-folder"):
        read_dataset(folder, split="train")
    shutil.copytree(PAGE_FIXTURE, tmp_path / "split" / "train")
    train = read_dataset(tmp_path / "split", split="train")
    assert len(train) == 5 and {s.split for s in train} == {"train"}


# ------------------------------------------------------------------------------------------------ ALTO

ALTO_V2 = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v2#">
  <Description><MeasurementUnit>mm10</MeasurementUnit>
    <sourceImageInformation><fileName>scan.tif</fileName></sourceImageInformation></Description>
  <Layout><Page ID="p1" WIDTH="254" HEIGHT="127"><PrintSpace>
    <TextBlock ID="b1">
      <TextLine ID="a1" HPOS="10" VPOS="10" WIDTH="200" HEIGHT="30" BASELINE="35">
        <Shape><Polygon POINTS="10,10 210,10 210,40 10,40"/></Shape>
        <String CONTENT="Hel" HPOS="10" VPOS="10" WIDTH="20" HEIGHT="30"/><String CONTENT="lo"/>
        <SP WIDTH="5"/><String CONTENT="wor"/><HYP CONTENT="-"/>
      </TextLine>
      <TextLine ID="a2" HPOS="20" VPOS="60" WIDTH="100" HEIGHT="25">
        <String CONTENT="no"/><String CONTENT="spaces"/><String CONTENT="&amp;&lt;&quot;"/>
      </TextLine>
    </TextBlock></PrintSpace></Page></Layout>
</alto>
"""


def test_alto_units_points_spaces_and_box_fallback(tmp_path: Path) -> None:
    Image.new("L", (300, 150), 240).save(tmp_path / "scan.tif", dpi=(300, 300))
    (tmp_path / "scan.xml").write_text(ALTO_V2, encoding="utf-8")
    doc = parse_page_file(tmp_path / "scan.xml")
    assert [line.text for line in doc.lines] == ["Hello wor-", 'no spaces &<"']
    # mm10 at 300 dpi: 300 / 254 pixels per unit; "x,y" points and the HPOS/VPOS/WIDTH/HEIGHT box
    k = 300 / 254
    assert np.allclose(doc.lines[0].polygon, np.array([(10, 10), (210, 10), (210, 40), (10, 40)]) * k)
    assert np.allclose(doc.lines[1].polygon, np.array([(20, 60), (120, 60), (120, 85), (20, 85)]) * k)
    # A BASELINE of one number (ALTO before 4.2) is a horizontal line across the line, in pixels too.
    assert np.allclose(doc.lines[0].baseline, np.array([(10, 35), (210, 35)]) * k) and doc.lines[1].baseline is None
    samples = read_pages(tmp_path, cache_dir=tmp_path / "out")
    assert [s.id for s in samples] == ["scan_a1", "scan_a2"]
    with Image.open(samples[1].image) as crop:
        assert crop.size == (int(120 * k) - int(20 * k) + 1, int(85 * k) - int(60 * k) + 1)


def test_alto_without_namespace_space_separated_points_and_stem_image(tmp_path: Path) -> None:
    Image.new("L", (100, 60), 200).save(tmp_path / "pg.png")
    (tmp_path / "pg.xml").write_text(
        '<alto><Layout><Page><PrintSpace><TextBlock><TextLine ID="x" BASELINE="5 25 30 26 50 24">'
        '<Shape><Polygon POINTS="5 5 50 5 50 30 5 30"/></Shape><String CONTENT="a"/><String CONTENT="b"/>'
        "</TextLine></TextBlock></PrintSpace></Page></Layout></alto>",
        encoding="utf-8",
    )
    doc = parse_page_file(tmp_path / "pg.xml")
    assert doc.image == tmp_path / "pg.png"
    assert doc.lines[0].polygon == ((5, 5), (50, 5), (50, 30), (5, 30)) and doc.lines[0].text == "a b"
    assert doc.lines[0].baseline == ((5, 25), (30, 26), (50, 24))  # ALTO 4.2: points


def test_alto_unit_without_resolution_is_an_error(tmp_path: Path) -> None:
    Image.new("L", (300, 150), 240).save(tmp_path / "scan.png")
    (tmp_path / "scan.xml").write_text(ALTO_V2.replace("scan.tif", "scan.png").replace(' WIDTH="254"', ""), "utf-8")
    with pytest.raises(DataError, match="no resolution"):
        parse_page_file(tmp_path / "scan.xml")


# --------------------------------------------------------------------------------- cropping and errors


def test_crop_line_masks_outside_the_polygon_and_pads() -> None:
    page = Image.fromarray(np.tile(np.linspace(0, 255, 200).astype(np.uint8), (100, 1)))
    triangle = [(20.0, 10.0), (120.0, 10.0), (20.0, 60.0)]
    crop = crop_line(page, triangle, background=255)
    assert crop.size == (101, 51)
    a = np.asarray(crop)
    assert a[-1, -1] == 255 and a[0, 0] == np.asarray(page)[10, 20]
    padded = np.asarray(crop_line(page, triangle, pad=4, background=255))
    assert padded.shape == (51 + 8, 101 + 8)
    assert padded[4 + 10, 4 + 60] != 255  # just past the hypotenuse: kept by the dilated mask
    assert crop_line(page, [(190.0, 90.0), (250.0, 130.0)], background=0).size == (10, 10)  # clipped
    with pytest.raises(ValueError, match="outside"):
        crop_line(page, [(300.0, 300.0), (400.0, 300.0), (400.0, 400.0)])


def test_page_errors_are_data_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.xml").write_text("<PcGts><Page><TextLine", encoding="utf-8")
    with pytest.raises(DataError, match="not well-formed"):
        parse_page_file(tmp_path / "bad.xml")
    (tmp_path / "bad.xml").write_text("<PcGts><Metadata/></PcGts>", encoding="utf-8")
    with pytest.raises(DataError, match="no <Page>"):
        parse_page_file(tmp_path / "bad.xml")
    xml = (PAGE_FIXTURE / "p2019.xml").read_text(encoding="utf-8")
    (tmp_path / "bad.xml").write_text(xml.replace("page.png", "missing.png"), encoding="utf-8")
    with pytest.raises(DataError, match="'missing.png' not found"):
        parse_page_file(tmp_path / "bad.xml")
    shutil.copy(PAGE_FIXTURE / "page.png", tmp_path / "p2019.png")  # found by the XML's stem
    xml = xml.replace("page.png", "missing.png")
    (tmp_path / "bad.xml").write_text(xml.replace("45,62 320,62", "45,62 3x0,62"), encoding="utf-8")
    with pytest.raises(DataError, match="'l2': points"):
        parse_page_file(tmp_path / "bad.xml")
    (tmp_path / "bad.xml").write_text(xml.replace("14,44 308,40", "14,44 308"), encoding="utf-8")
    with pytest.raises(DataError, match="'l1' Baseline: points .* odd number"):
        parse_page_file(tmp_path / "bad.xml")
    (tmp_path / "p2019.xml").write_text(xml.replace("45,62 320,62 320,104 45,104", "900,900 990,990"), "utf-8")
    with pytest.raises(DataError, match="'l2'.*outside"):
        read_pages(tmp_path / "p2019.xml", cache_dir=tmp_path / "c")


def test_other_xml_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / "mets.xml").write_text('<mets xmlns="http://www.loc.gov/METS/"/>', encoding="utf-8")
    assert xml_format(tmp_path / "mets.xml") is None and page_xml_files(tmp_path) == []
    with pytest.raises(DataError, match="no PAGE or ALTO"):
        read_pages(tmp_path)
    shutil.copy(PAGE_FIXTURE / "p2019.xml", tmp_path / "p.xml")
    assert page_xml_files(tmp_path) == [tmp_path / "p.xml"]


def test_safe_name() -> None:
    assert safe_name("p2019_l1") == "p2019_l1"
    assert safe_name("a/b") != safe_name("a_b") and "/" not in safe_name("a/b")
    assert not safe_name("..").startswith(".")


def test_page_2010_point_children(tmp_path: Path) -> None:
    xml = (PAGE_FIXTURE / "p2019.xml").read_text(encoding="utf-8")
    old = '<Coords points="45,62 320,62 320,104 45,104"/>'
    new = '<Coords><Point x="45" y="62"/><Point x="320" y="62"/><Point x="320" y="104"/></Coords>'
    (tmp_path / "page.xml").write_text(xml.replace(old, new), encoding="utf-8")
    shutil.copy(PAGE_FIXTURE / "page.png", tmp_path / "page.png")
    assert parse_page_file(tmp_path / "page.xml").lines[1].polygon == ((45, 62), (320, 62), (320, 104))
