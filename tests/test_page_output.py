"""PAGE XML and ALTO output of ``recognize``: what the schemas require, round trips through htr's own readers
and ``python -m htr.data convert``, where files go and what is refused.

No PyPI package small enough for the dev extra ships both XSDs (the PAGE 2019 one is only in ocrd-validators /
ocrd, whose dependencies run to docker, fastapi and opencv; the ALTO v4 one in none found), so the output is
checked against the schemas' rules as written here: namespaces, required elements and attributes, child order,
the PAGE points pattern, confidence ranges and unique ids.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htr import recognize
from htr.charset import normalize_text
from htr.data.convert import convert
from htr.data.formats.pages import line_box, parse_page_file
from htr.errors import HTRError
from htr.inference import load_model
from htr.outputs import Output
from htr.page import LineResult, PageResult, recognize_page
from htr.xmlout import ALTO_NS, PAGE_NS, alto_xml, image_reference, page_xml

from .conftest import REPO, render_text
from .test_export import one_torch_thread, write_random_checkpoint  # noqa: F401 - the fixture, for speed
from .test_page import synthetic_page

PAGE_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "page"
SIZE = (480, 170)
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
NCNAME = re.compile(r"[^\W\d][\w.\-]*")
PAGE_POINTS = re.compile(r"([0-9]+,[0-9]+ )+([0-9]+,[0-9]+)")  # PointsType of the PAGE 2019 schema
DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("out") / "tiny.pt"
    write_random_checkpoint(path)
    return path


def crafted_page() -> PageResult:
    """Lines that test escaping, spacing, empty text, invalid and repeated ids and points off the page."""
    texts = ['Quick <brown> & "fox"', "  two  spaces ", "", "off page"]
    confs = [[0.5 + 0.02 * i for i in range(len(t))] for t in texts]
    polygons = [
        ((12.4, 20.6), (300.2, 8.0), (310.0, 40.0), (14.0, 50.5)),
        ((45.0, 62.0), (320.0, 62.0), (320.0, 104.0), (45.0, 104.0)),
        ((75.0, 116.0), (330.0, 116.0), (330.0, 158.0), (75.0, 158.0)),
        ((-5.0, 150.0), (500.0, 150.0), (500.0, 175.5), (-5.0, 175.5)),
    ]
    ids = ["l1", "1bad", "l1", None]
    baselines = [((14.0, 44.0), (308.0, 40.0)), None, None, ((-5.0, 170.0), (500.0, 170.0))]
    lines = [
        LineResult(t, float(np.mean(c)) if c else 0.0, line_box(p, SIZE), p, c, i, b)
        for t, c, p, i, b in zip(texts, confs, polygons, ids, baselines, strict=True)
    ]
    return PageResult(Path("page.png"), lines, size=SIZE)


# ------------------------------------------------------------------------------------- schema rules


def local(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def assert_children(el: ET.Element, order: list[str], required: tuple[str, ...] = ()) -> None:
    """Children named only from ``order``, in that order (repeats allowed; names joined by ``|`` share a place
    and may alternate); each of ``required`` present."""
    rank = {name: i for i, group in enumerate(order) for name in group.split("|")}
    names = [local(c) for c in el]
    assert all(n in rank for n in names), (local(el), names)
    assert [rank[n] for n in names] == sorted(rank[n] for n in names), (local(el), names)
    assert all(r in names for r in required), (local(el), names, required)


def assert_ids(root: ET.Element, attr: str) -> set[str]:
    ids = [el.get(attr) for el in root.iter() if el.get(attr) is not None]
    assert all(NCNAME.fullmatch(i) for i in ids) and len(ids) == len(set(ids)), ids
    return set(ids)


def assert_conf(value: str | None) -> None:
    assert value is not None and 0.0 <= float(value) <= 1.0


def check_page(text: str, size: tuple[int, int]) -> ET.Element:
    """The rules of the PAGE 2019-07-15 schema (pagecontent.xsd) for what htr writes."""
    root = ET.fromstring(text)
    assert root.tag == f"{{{PAGE_NS}}}PcGts" and all(el.tag.startswith(f"{{{PAGE_NS}}}") for el in root.iter())
    assert_children(root, ["Metadata", "Page"], ("Metadata", "Page"))
    meta, page = root
    assert_children(meta, ["Creator", "Created", "LastChange", "Comments"], ("Creator", "Created", "LastChange"))
    assert DATETIME.fullmatch(meta[1].text) and DATETIME.fullmatch(meta[2].text)
    assert page.get("imageFilename") and (int(page.get("imageWidth")), int(page.get("imageHeight"))) == size
    assert_children(page, ["ReadingOrder", "TextRegion"])
    ids = assert_ids(root, "id")
    for ref in page.iter(f"{{{PAGE_NS}}}RegionRefIndexed"):
        assert ref.get("regionRef") in ids and int(ref.get("index")) >= 0
    for region in page.iter(f"{{{PAGE_NS}}}TextRegion"):
        assert_children(region, ["Coords", "TextLine", "TextEquiv"], ("Coords",))
        for line in region.iter(f"{{{PAGE_NS}}}TextLine"):
            assert_children(line, ["Coords", "Baseline", "TextEquiv"], ("Coords",))
    for el in root.iter():
        if local(el) in ("Coords", "Baseline"):
            assert PAGE_POINTS.fullmatch(el.get("points")), el.get("points")
            assert all(0 <= int(v) < s for p in el.get("points").split() for v, s in zip(p.split(","), size))
        if local(el) == "TextEquiv":
            assert_children(el, ["PlainText", "Unicode"], ("Unicode",))
            if el.get("conf") is not None:
                assert_conf(el.get("conf"))
    return root


def check_alto(text: str, size: tuple[int, int]) -> ET.Element:
    """The rules of the ALTO 4.2 schema (alto-4-2.xsd) for what htr writes."""
    root = ET.fromstring(text)
    assert root.tag == f"{{{ALTO_NS}}}alto" and all(el.tag.startswith(f"{{{ALTO_NS}}}") for el in root.iter())
    assert_children(root, ["Description", "Styles", "Tags", "Layout"], ("Layout",))
    desc = root.find(f"{{{ALTO_NS}}}Description")
    assert_children(desc, ["MeasurementUnit", "sourceImageInformation", "OCRProcessing", "Processing"])
    assert desc[0].text == "pixel"
    for step in desc.iter(f"{{{ALTO_NS}}}Processing"):
        order = ["processingCategory", "processingDateTime", "processingAgency", "processingStepDescription"]
        assert_children(step, [*order, "processingStepSettings", "processingSoftware"])
        assert step.get("ID") and DATETIME.fullmatch(step.find(f"{{{ALTO_NS}}}processingDateTime").text)
    assert_ids(root, "ID")
    [page] = root.find(f"{{{ALTO_NS}}}Layout")
    assert page.get("ID") and float(page.get("PHYSICAL_IMG_NR")) >= 0
    assert (int(page.get("WIDTH")), int(page.get("HEIGHT"))) == size
    for block in page.iter(f"{{{ALTO_NS}}}TextBlock"):
        assert block.get("ID") and all(float(block.get(a)) >= 0 for a in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
        assert_children(block, ["Shape", "TextLine"])
    for line in page.iter(f"{{{ALTO_NS}}}TextLine"):
        assert_children(line, ["Shape", "String|SP", "HYP"], ("String",))  # (String, SP?)+: one String at least
        names = [local(c) for c in line if local(c) in ("String", "SP")]
        assert "SP,SP" not in ",".join(names) and names[0] == "String"
        for string in line.iter(f"{{{ALTO_NS}}}String"):
            assert string.get("CONTENT") is not None
            if string.get("WC") is not None:
                assert_conf(string.get("WC"))
                assert re.fullmatch(r"[0-9]( [0-9])*", string.get("CC"))
                assert len(string.get("CC").split()) == len(string.get("CONTENT"))
    return root


# ------------------------------------------------------------------------- documents and round trips


def written(tmp_path: Path, text: str, name: str = "out.xml") -> Path:
    """``text`` saved next to a copy of the fixture page image (which it names ``page.png``)."""
    Image.open(PAGE_FIXTURE / "page.png").save(tmp_path / "page.png")
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / name


def assert_polygons_within_rounding(read, lines, size) -> None:
    """Read points are the written ones rounded, and moved onto the page where they lay off it."""
    for got, want in zip(read, lines, strict=True):
        want = np.clip(np.asarray(want, dtype=float), 0, [size[0] - 1, size[1] - 1])
        assert np.abs(np.asarray(got, dtype=float) - want).max() <= 0.5, (got, want)


def test_page_xml_reads_back_exactly(tmp_path):
    result = crafted_page()
    text = page_xml(result, "page.png", SIZE, NOW)
    root = check_page(text, SIZE)
    assert root.find(f"{{{PAGE_NS}}}Metadata/{{{PAGE_NS}}}Created").text == "2024-05-06T07:08:09Z"
    doc = parse_page_file(written(tmp_path, text))
    assert doc.format == "page" and doc.image == tmp_path / "page.png"
    # Valid ids kept; an invalid one ("1bad") and a repeated one replaced; the texts exactly as read.
    assert [line.id for line in doc.lines] == ["l1", "line_2", "line_3", "line_4"]
    assert [line.text for line in doc.lines] == [line.text for line in result.lines]
    assert_polygons_within_rounding([line.polygon for line in doc.lines], [r.polygon for r in result.lines], SIZE)
    assert doc.lines[0].baseline == ((14, 44), (308, 40)) and doc.lines[1].baseline is None
    assert doc.lines[3].baseline == ((0, 169), (479, 169))
    confs = [el.get("conf") for el in root.iter(f"{{{PAGE_NS}}}TextEquiv") if el.get("conf")]
    assert [float(c) for c in confs] == pytest.approx([line.confidence for line in result.lines], abs=5e-5)
    region_text = root.find(f".//{{{PAGE_NS}}}TextRegion/{{{PAGE_NS}}}TextEquiv/{{{PAGE_NS}}}Unicode").text
    assert region_text == "\n".join(line.text for line in result.lines)


def test_alto_reads_back_with_word_confidences(tmp_path):
    result = crafted_page()
    text = alto_xml(result, "page.png", SIZE, NOW)
    root = check_alto(text, SIZE)
    doc = parse_page_file(written(tmp_path, text))
    assert doc.format == "alto" and doc.image == tmp_path / "page.png"
    assert [line.id for line in doc.lines] == ["l1", "line_2", "line_3", "line_4"]
    # Words between SP elements: spaces at the ends and runs of spaces are not kept; an empty line stays empty.
    assert [line.text for line in doc.lines] == [" ".join(line.text.split()) for line in result.lines]
    assert_polygons_within_rounding([line.polygon for line in doc.lines], [r.polygon for r in result.lines], SIZE)
    assert doc.lines[0].baseline == ((14, 44), (308, 40)) and doc.lines[1].baseline is None
    strings = root.findall(f".//{{{ALTO_NS}}}TextLine")[0].findall(f"{{{ALTO_NS}}}String")
    confs = result.lines[0].char_confidences
    spans = [(0, 5), (6, 13), (14, 15), (16, 21)]  # 'Quick <brown> & "fox"'
    assert [s.get("CONTENT") for s in strings] == ["Quick", "<brown>", "&", '"fox"']
    for s, (a, b) in zip(strings, spans, strict=True):
        assert float(s.get("WC")) == pytest.approx(sum(confs[a:b]) / (b - a), abs=5e-5)
        assert s.get("CC").split() == [str(round(9 * (1 - c))) for c in confs[a:b]]
    [empty] = root.findall(f".//{{{ALTO_NS}}}TextLine")[2].findall(f"{{{ALTO_NS}}}String")
    assert empty.get("CONTENT") == "" and empty.get("WC") is None
    line = root.findall(f".//{{{ALTO_NS}}}TextLine")[1]
    xs = [float(v) for v in line.find(f"{{{ALTO_NS}}}Shape/{{{ALTO_NS}}}Polygon").get("POINTS").split()[0::2]]
    assert (float(line.get("HPOS")), float(line.get("WIDTH"))) == (min(xs), max(xs) - min(xs))


def test_an_empty_page_is_a_valid_document(tmp_path):
    empty = PageResult(Path("page.png"), [], size=SIZE)
    for writer, check in ((page_xml, check_page), (alto_xml, check_alto)):
        text = writer(empty, "page.png", SIZE)
        check(text, SIZE)
        assert parse_page_file(written(tmp_path, text)).lines == ()


def test_image_reference_is_relative_to_the_xml(tmp_path):
    image = tmp_path / "scans" / "a.jpg"
    assert image_reference(image, tmp_path / "scans" / "a.xml") == "a.jpg"
    assert image_reference(image, tmp_path / "scans" / "page" / "a.xml") == "a.jpg"  # the Transkribus layout
    assert image_reference(image, tmp_path / "out" / "a.xml") == "../scans/a.jpg"


# ---------------------------------------------------------------------------------------------- the CLI


def run_main(monkeypatch, *args: str) -> int:
    """``python -m htr.recognize ARGS`` in this process (errors raise :class:`HTRError`)."""
    monkeypatch.setattr(sys, "argv", ["htr.recognize", *map(str, args)])
    return recognize.main()


def test_recognize_page_to_page_and_alto_round_trips_through_convert(tmp_path, monkeypatch):
    page, _ = synthetic_page(2.0)
    page.save(tmp_path / "scan.png")
    expected = recognize_page(load_model("default"), tmp_path / "scan.png")  # the shipped model: real words
    # How many spaces the shipped French model reads in this English font changes with each model (8, 3, then 1),
    # so the round trip asks for none: ALTO's String/SP split of multi-word lines has its own test above.
    assert len(expected.lines) == 5
    for fmt, check in (("page", check_page), ("alto", check_alto)):
        out = tmp_path / fmt
        assert run_main(monkeypatch, "--page", tmp_path / "scan.png", "--output-format", fmt, "--output-dir", out) == 0
        xml = out / "scan.xml"
        check(xml.read_text(encoding="utf-8"), page.size)
        doc = parse_page_file(xml)
        assert doc.image == tmp_path / "scan.png" and len(doc.lines) == len(expected.lines)
        assert_polygons_within_rounding([line.polygon for line in doc.lines], [r.polygon for r in expected.lines],
                                        page.size)  # fmt: skip
        assert all(line.baseline is not None for line in doc.lines)  # the segmenter's estimates
        result = convert(xml, tmp_path / f"{fmt}-lines")
        rows = [row.split("\t") for row in result.manifest.read_text(encoding="utf-8").splitlines()[1:]]
        assert [r[2] for r in rows] == [normalize_text(line.text) for line in expected.lines]
        for row, line in zip(rows, expected.lines, strict=True):
            with Image.open(result.manifest.parent / row[1]) as crop:
                x0, y0, x1, y1 = line.box
                assert abs(crop.width - (x1 - x0)) <= 1 and abs(crop.height - (y1 - y0)) <= 1


def test_xml_input_keeps_its_ids_and_baselines(tmp_path, checkpoint, monkeypatch):
    assert run_main(monkeypatch, "--page", PAGE_FIXTURE / "p2019.xml", "--checkpoint", checkpoint,
                    "--output-format", "alto", "--output-dir", tmp_path) == 0  # fmt: skip
    doc = parse_page_file(tmp_path / "p2019.xml")
    assert doc.image == PAGE_FIXTURE / "page.png"
    assert [line.id for line in doc.lines] == ["l1", "l2", "l3"]
    source = parse_page_file(PAGE_FIXTURE / "p2019.xml")
    assert [line.polygon for line in doc.lines] == [line.polygon for line in source.lines]  # integers already
    assert doc.lines[0].baseline == ((14, 44), (308, 40))


def test_line_images_write_one_file_each_with_what_stdout_shows(tmp_path, checkpoint, monkeypatch, capsys):
    render_text("hello world").save(tmp_path / "a.png")
    render_text("over the lazy dog").save(tmp_path / "b.png")
    images = [tmp_path / "a.png", tmp_path / "b.png"]
    assert run_main(monkeypatch, *images, "--checkpoint", checkpoint, "--json", "--chars") == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert run_main(monkeypatch, *images, "--checkpoint", checkpoint, "--json", "--chars", "--output-dir",
                    tmp_path / "json") == 0  # fmt: skip
    assert capsys.readouterr().out == ""
    assert [json.loads((tmp_path / "json" / f"{p.stem}.json").read_text("utf-8")) for p in images] == printed
    assert run_main(monkeypatch, *images, "--checkpoint", checkpoint, "--output-format", "txt", "--output-dir",
                    tmp_path / "txt") == 0  # fmt: skip
    assert [(tmp_path / "txt" / f"{p.stem}.txt").read_text("utf-8") for p in images] == [
        o["text"] + "\n" if o["text"] else "" for o in printed
    ]
    # PAGE next to each image, the whole image as its one line.
    assert run_main(monkeypatch, *images, "--checkpoint", checkpoint, "--output-format", "page") == 0
    for image, obj in zip(images, printed, strict=True):
        size = Image.open(image).size
        root = check_page((tmp_path / f"{image.stem}.xml").read_text("utf-8"), size)
        assert root.find(f"{{{PAGE_NS}}}Page").get("imageFilename") == image.name
        [line] = parse_page_file(tmp_path / f"{image.stem}.xml").lines
        assert line.text == obj["text"] and line_box(line.polygon, size) == (0, 0, *size)
        conf = root.find(f".//{{{PAGE_NS}}}TextLine/{{{PAGE_NS}}}TextEquiv").get("conf")
        assert math.isclose(float(conf), obj["confidence"], abs_tol=1e-4)


def test_outputs_that_would_destroy_or_fail_are_refused_before_any_work(tmp_path, monkeypatch):
    xml = tmp_path / "p2019.xml"
    xml.write_text((PAGE_FIXTURE / "p2019.xml").read_text("utf-8"), "utf-8")
    with pytest.raises(HTRError, match="page output would replace this input file; .* --output-dir"):
        run_main(monkeypatch, "--page", xml, "--output-format", "page", "--checkpoint", "no-such.pt")
    for name in ("a.png", "a.jpg", "b.png"):
        Image.new("L", (40, 20), 255).save(tmp_path / name)
    with pytest.raises(HTRError, match=r"a\.png and .*a\.jpg would both be written to .*a\.xml"):
        run_main(monkeypatch, tmp_path / "a.png", tmp_path / "a.jpg", "--output-format", "alto")
    (tmp_path / "b.xml").write_text("ground truth", "utf-8")
    with pytest.raises(HTRError, match=r"1 output file\(s\) exist already: .*b\.xml; pass --overwrite"):
        run_main(monkeypatch, "--page", tmp_path / "b.png", "--output-format", "page")
    Output("page", None, overwrite=True).prepare([tmp_path / "b.png"])  # replaced only when asked
    with pytest.raises(HTRError, match="cannot create the output folder"):
        run_main(monkeypatch, tmp_path / "b.png", "--output-format", "json", "--output-dir", tmp_path / "b.png" / "x")
    with pytest.raises(HTRError, match="the output folder is a file"):
        Output("txt", tmp_path / "b.png").prepare([tmp_path / "a.png"])
    Output("txt").prepare([xml])  # stdout: nothing to check
    with pytest.raises(SystemExit):  # a usage error, exit status 2
        run_main(monkeypatch, tmp_path / "b.png", "--json", "--output-format", "alto")
    assert (tmp_path / "b.xml").read_text("utf-8") == "ground truth" and not (tmp_path / "b.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_an_unwritable_output_folder_is_one_sentence(tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        with pytest.raises(HTRError, match="the output folder is not writable"):
            Output("page", tmp_path / "ro").prepare([tmp_path / "a.png"])
    finally:
        (tmp_path / "ro").chmod(0o700)


def test_refusal_on_the_command_line_is_one_sentence_and_exit_2(tmp_path):
    xml = tmp_path / "p.xml"
    xml.write_text((PAGE_FIXTURE / "p2019.xml").read_text("utf-8"), "utf-8")
    p = subprocess.run(
        [sys.executable, "-m", "htr.recognize", "--page", str(xml), "--output-format", "alto"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == (
        f"htr: {xml}: the alto output would replace this input file; write it to another folder with --output-dir\n"
    )
