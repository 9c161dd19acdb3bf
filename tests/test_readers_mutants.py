"""Readers' corner cases that mutation testing found unpinned (docs/testing.md, "Manifest and PAGE/ALTO readers").

Each test pins one behaviour a user sees: the message and the file of an error, the text or image path of a
sample, or the folder crops are written to. Expected values are written by hand from the fixtures.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from htr.data.formats import read_dataset, read_folder, read_iam, read_tsv
from htr.data.formats.pages import line_box
from htr.data.formats.pagexml import parse_page_file
from htr.data.samples import Sample
from htr.errors import DataError

from .test_readers import write

FIXTURES = Path(__file__).resolve().parent / "fixtures"
IAM = FIXTURES / "iam"
PAGE_FIXTURE = FIXTURES / "page"
IAM_LINE = "a01-000u-00 ok 154 19 408 746 1661 89 "
P2019 = [("l1", "Quick brown fox"), ("l2", "jumps over the"), ("l3", "lazy dog & co.")]


def raises_exactly(path: Path, message: str) -> pytest.RaisesExc[DataError]:
    """``pytest.raises(DataError)`` whose message is exactly ``<path>: <message>``."""
    return pytest.raises(DataError, match=rf"^{re.escape(f'{path}: {message}')}$")


def page_folder(folder: Path) -> Path:
    """``folder`` holding a copy of the PAGE 2019 fixture and its image; return it."""
    folder.mkdir(parents=True)
    shutil.copy(PAGE_FIXTURE / "p2019.xml", folder)
    shutil.copy(PAGE_FIXTURE / "page.png", folder)
    return folder


# ------------------------------------------------------------------------------------------------- TSV


def test_tsv_split_column_all_empty_says_none_present(tmp_path: Path) -> None:
    tsv = write(tmp_path / "lines.tsv", "id\timage\ttext\tsplit\na\ta.png\thi\t\n")
    with raises_exactly(tsv, "no rows with split 'train' (splits present: none)"):
        read_tsv(tsv, split="train")


def test_tsv_windows_separators_in_a_name_too_long_for_a_file(tmp_path: Path) -> None:
    # `lines\<300 x>.png` can be no file's name (the disk refuses names over 255 bytes), so the backslash
    # is a Windows separator: the image is lines/<300 x>.png.
    name = "x" * 300 + ".png"
    tsv = write(tmp_path / "lines.tsv", f"id\timage\ttext\na\tlines\\{name}\thi\n")
    assert read_tsv(tsv) == [Sample("a", tmp_path / "lines" / name, "hi")]


# ------------------------------------------------------------------------------------------------- IAM


def test_iam_transcription_escapes_and_stray_spaces(tmp_path: Path) -> None:
    # `|` separates words, &amp; and &quot; are XML escapes; a space inside the transcription (fields 9 and
    # on) is kept as one space.
    lines = write(tmp_path / "lines.txt", IAM_LINE + "R&amp;D|&quot;x&quot;  two\n")
    assert [s.text for s in read_iam(lines)] == ['R&D "x" two']


def test_iam_missing_or_empty_lines_txt(tmp_path: Path) -> None:
    with raises_exactly(tmp_path / "lines.txt", "IAM lines.txt does not exist"):
        read_iam(tmp_path / "lines.txt")
    with raises_exactly(tmp_path, "folder holds neither lines.txt nor ascii/lines.txt"):
        read_iam(tmp_path)
    lines = write(tmp_path / "lines.txt", "# a01-000u-00 ok 1 2 3 4 5 6 x\n\n")
    with raises_exactly(lines, "IAM lines.txt lists no lines"):
        read_iam(lines)


def test_iam_files_not_utf8_are_named_by_role(tmp_path: Path) -> None:
    lines = write(tmp_path / "lines.txt", IAM_LINE.encode() + b"x\n\xff\n")
    with raises_exactly(lines, "line 2: IAM lines.txt is not valid UTF-8 (byte 0xff)"):
        read_iam(lines)
    write(lines, IAM_LINE + "x\n")
    forms = write(tmp_path / "forms.txt", b"# forms\n\xfe\n")
    with raises_exactly(forms, "line 2: IAM forms.txt is not valid UTF-8 (byte 0xfe)"):
        read_iam(lines)
    forms.unlink()
    split_list = write(tmp_path / "dev.lst", b"\xff")
    with raises_exactly(split_list, "line 1: split list is not valid UTF-8 (byte 0xff)"):
        read_iam(lines, split_file=split_list)


def test_iam_forms_with_two_fields_and_with_one(tmp_path: Path) -> None:
    lines = write(tmp_path / "lines.txt", IAM_LINE + "x\n")
    forms = write(tmp_path / "forms.txt", "a01-000u 042\n")  # form id and writer id: all that is needed
    assert [s.writer for s in read_iam(lines)] == ["042"]
    write(forms, "# comment\na01-000u\n")
    with raises_exactly(forms, "line 2: expected a form id and a writer id"):
        read_iam(lines)


def test_iam_split_lists_tried_are_named() -> None:
    tried = "splits/dev.lst, splits/dev.txt, dev.lst, dev.txt"
    with raises_exactly(IAM, f"no list of the 'dev' split found (tried {tried}); pass split_file"):
        read_iam(IAM, split="dev")


def test_iam_split_list_of_comments_only(tmp_path: Path) -> None:
    split_list = write(tmp_path / "dev.lst", "# nothing yet\n\n")
    with raises_exactly(split_list, "split list is empty"):
        read_iam(IAM, split_file=split_list)


# ----------------------------------------------------------------------------------------------- pairs


def test_pairs_folder_missing_or_a_file(tmp_path: Path) -> None:
    with raises_exactly(tmp_path / "nope", "dataset folder does not exist"):
        read_folder(tmp_path / "nope")
    file = write(tmp_path / "a.png", b"x")
    with raises_exactly(file, "is not a folder"):
        read_folder(file)


def test_pairs_exactly_five_lonely_images_are_all_listed(tmp_path: Path) -> None:
    for i in range(1, 6):
        write(tmp_path / f"img{i}.png", b"x")
    with raises_exactly(
        tmp_path, "5 image(s) have no .gt.txt transcription: img1.png, img2.png, img3.png, img4.png, img5.png"
    ):
        read_folder(tmp_path)


def test_pairs_lonely_transcription_lists_image_suffixes(tmp_path: Path) -> None:
    write(tmp_path / "b.gt.txt", "ho")
    with raises_exactly(
        tmp_path, "1 .gt.txt file(s) have no image (.png/.jpg/.jpeg/.webp/.tif/.tiff/.bmp/.gif/.pgm/.ppm): b.gt.txt"
    ):
        read_folder(tmp_path)


def test_pairs_transcription_not_utf8(tmp_path: Path) -> None:
    write(tmp_path / "a.png", b"x")
    gt = write(tmp_path / "a.gt.txt", b"ok\n\xc3(")
    with raises_exactly(gt, "line 2: transcription is not valid UTF-8 (byte 0xc3)"):
        read_folder(tmp_path)


# ----------------------------------------------------------------------------------------------- pages


def test_page_split_subfolder_samples(tmp_path: Path) -> None:
    train = page_folder(tmp_path / "pages" / "train")
    crops = train / ".htr-lines"
    assert read_dataset(tmp_path / "pages", split="train") == [
        Sample(f"p2019_{line}", crops / f"p2019_{line}.png", text, None, "train", ()) for line, text in P2019
    ]


def test_page_split_errors(tmp_path: Path) -> None:
    folder = page_folder(tmp_path / "pages")
    with raises_exactly(folder / "p2019.xml", "split 'train' was asked for but a single page XML has no splits"):
        read_dataset(folder / "p2019.xml", split="train")
    with raises_exactly(
        folder,
        "split 'train' was asked for but this page folder has no 'train' sub-folder; make splits with "
        "`python -m htr.data convert SRC OUT_DIR --split-by-writer VAL TEST`",
    ):
        read_dataset(folder, split="train")


@pytest.mark.parametrize("xdg", [True, False])
def test_page_crops_go_to_the_user_cache_when_the_folder_cannot_hold_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg: bool
) -> None:
    folder = page_folder(tmp_path / "pages")
    write(folder / ".htr-lines", "a file where the crop folder would go")
    if xdg:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        base = tmp_path / "xdg"
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", "")  # unset or empty: ~/.cache
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        base = tmp_path / "home" / ".cache"
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()
    cache = base / "htr" / "page-lines" / f"pages-{digest[:16]}"
    samples = read_dataset(folder)
    assert [s.image for s in samples] == [cache / f"p2019_{line}.png" for line, _ in P2019]
    assert all(s.image.is_file() for s in samples)


# ------------------------------------------------------------------------------------------------ ALTO


def alto(folder: Path, line: str) -> Path:
    """An ALTO file (pixel units, image found by its stem) whose only TextLine is ``line``; return it."""
    Image.new("L", (100, 60), 200).save(folder / "pg.png")
    xml = folder / "pg.xml"
    xml.write_text(f"<alto><Layout><Page><PrintSpace><TextBlock>{line}</TextBlock></PrintSpace></Page></Layout></alto>")
    return xml


def test_alto_polygon_without_points_falls_back_to_the_box(tmp_path: Path) -> None:
    xml = alto(tmp_path, '<TextLine HPOS="5" VPOS="6" WIDTH="20" HEIGHT="10"><Shape><Polygon/></Shape></TextLine>')
    line = parse_page_file(xml).lines[0]
    assert line.polygon == ((5, 6), (25, 6), (25, 16), (5, 16)) and line.id == "line0000"  # no ID: numbered


def test_alto_line_without_polygon_or_box(tmp_path: Path) -> None:
    xml = alto(tmp_path, '<TextLine ID="x" HPOS="5" VPOS="6" WIDTH="20"><String CONTENT="a"/></TextLine>')
    with raises_exactly(xml, "TextLine 'x' has neither a Shape/Polygon nor numeric HPOS, VPOS, WIDTH, HEIGHT"):
        parse_page_file(xml)


def test_alto_bad_polygon_and_baseline_points_name_the_line(tmp_path: Path) -> None:
    xml = alto(tmp_path, '<TextLine ID="x"><Shape><Polygon POINTS="5 5 9 y"/></Shape></TextLine>')
    with raises_exactly(xml, "TextLine 'x': points '5 5 9 y' are not numbers"):
        parse_page_file(xml)
    line = '<TextLine ID="x" BASELINE="5 9 7"><Shape><Polygon POINTS="5 5 9 5 9 9"/></Shape></TextLine>'
    xml = alto(tmp_path, line)
    with raises_exactly(xml, "TextLine 'x' BASELINE: points '5 9 7' have an odd number of coordinates"):
        parse_page_file(xml)


def test_alto_string_and_hyp_without_content_add_nothing(tmp_path: Path) -> None:
    body = '<String CONTENT="a"/><String/><SP/><String CONTENT="b"/><HYP/>'
    xml = alto(tmp_path, f'<TextLine ID="x" HPOS="0" VPOS="0" WIDTH="9" HEIGHT="9">{body}</TextLine>')
    assert parse_page_file(xml).lines[0].text == "a b"


# ------------------------------------------------------------------------------------------------ PAGE

PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"


def page_xml(folder: Path, lines: str, image: str = "page.png", name: str = "p.xml") -> Path:
    """A PAGE file in ``folder`` whose Page (image ``image``) holds ``lines``; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    xml = folder / name
    xml.write_text(
        f'<PcGts xmlns="{PAGE_NS}"><Page imageFilename="{image}"><TextRegion>{lines}</TextRegion></Page></PcGts>'
    )
    return xml


def te(text: str | None, index: str = "") -> str:
    """A TextEquiv (with ``index`` when given) holding ``text`` (no Unicode element when None)."""
    unicode = "" if text is None else f"<Unicode>{text}</Unicode>"
    return f"<TextEquiv{f' index={index!r}' if index else ''}>{unicode}</TextEquiv>"


def test_page_line_ids_texts_and_text_equiv_choice(tmp_path: Path) -> None:
    shutil.copy(PAGE_FIXTURE / "page.png", tmp_path)
    box = '<Coords points="1,2 30,2 30,9"/>'
    lines = (
        f"<TextLine>{box}{te('no', 'x')}{te('two', '2')}</TextLine>"
        f'<TextLine id=" ">{box}{te("first")}{te("second")}</TextLine>'
        f'<TextLine id="w">{box}{te("")}<Word>{te("x")}</Word></TextLine>'
        f'<TextLine id="v">{box}<Word>{te("a")}</Word><Word/><Word>{te("")}</Word><Word>{te("b")}</Word></TextLine>'
        f'<TextLine id="u">{box}{te(None)}<Word>{te("c")}</Word></TextLine>'
    )
    doc = parse_page_file(page_xml(tmp_path, lines))
    assert [(line.id, line.text) for line in doc.lines] == [
        ("line0000", "two"),  # a numeric index beats a non-numeric one
        ("line0001", "first"),  # equal ranks: the first; a blank id is numbered like a missing one
        ("w", ""),  # the line's own (empty) text, not its words'
        ("v", "a b"),  # words without text are skipped
        ("u", "c"),  # a TextEquiv without Unicode is no text
    ]
    assert doc.lines[0].polygon == ((1, 2), (30, 2), (30, 9)) and doc.lines[0].baseline is None


def test_page_structural_errors(tmp_path: Path) -> None:
    shutil.copy(PAGE_FIXTURE / "page.png", tmp_path)
    xml = page_xml(tmp_path, '<TextLine id="a"><TextEquiv/></TextLine>')
    with raises_exactly(xml, "TextLine 'a' has no <Coords>"):
        parse_page_file(xml)
    xml = page_xml(tmp_path, '<TextLine id="a"><Coords points=" "/></TextLine>')
    with raises_exactly(xml, "TextLine 'a': has no points"):
        parse_page_file(xml)
    xml = page_xml(tmp_path, '<TextLine id="a"><Coords points="1,2 3,4"/><Baseline/></TextLine>')
    with raises_exactly(xml, "TextLine 'a' Baseline: has no points"):
        parse_page_file(xml)
    other = write(tmp_path / "o.xml", "<TEI><text/></TEI>")
    with raises_exactly(other, "root element <TEI> is neither PAGE <PcGts> nor <alto>"):
        parse_page_file(other)
    folder = tmp_path / "d.xml"
    folder.mkdir()
    with raises_exactly(folder, "XML file cannot be read (Is a directory)"):
        parse_page_file(folder)


def test_page_image_lookup(tmp_path: Path) -> None:
    export = tmp_path / "export"
    write(export / "scan.JPG", b"x")  # next to the page/ folder, as Transkribus exports it; found by the XML stem
    xml = page_xml(export / "page", "", image="", name="scan.xml")
    assert parse_page_file(xml).image == export / "scan.JPG"
    write(tmp_path / "img" / "f.png", b"x")
    xml = page_xml(tmp_path, "", image="file://img\\f.png")
    assert parse_page_file(xml).image == tmp_path / "img" / "f.png"
    xml = page_xml(tmp_path / "abs", "", image=f"file://{tmp_path}/img/f.png")
    assert parse_page_file(xml).image == tmp_path / "img" / "f.png"
    xml = page_xml(tmp_path / "none", "", image="")
    with raises_exactly(xml, "a page image named p.* not found next to the XML"):
        parse_page_file(xml)


# ----------------------------------------------------------------------------------------- ALTO units

ALTO_UNIT = (
    "<alto><Description><MeasurementUnit>{unit}</MeasurementUnit></Description><Layout><Page{width}><PrintSpace>"
    '<TextLine ID="t" HPOS="100" VPOS="50" WIDTH="200" HEIGHT="40" BASELINE="80"/></PrintSpace></Page></Layout></alto>'
)


@pytest.mark.parametrize(
    ("unit", "dpi", "width", "scale"),
    [
        ("inch1200", (600, 300), "", 0.5),  # 600 dpi (across) / 1200 units an inch
        ("mm10", (1, 1), ' WIDTH="1000"', 0.4),  # no usable DPI: 400 pixels wide / Page WIDTH 1000
        ("", None, "", 1.0),  # an empty unit is pixels
    ],
)
def test_alto_scale(tmp_path: Path, unit: str, dpi: tuple[int, int] | None, width: str, scale: float) -> None:
    # TIFF keeps DPI exactly (PNG rounds it to pixels per metre): 1 dpi is 1.0, the "no resolution" placeholder
    Image.new("L", (400, 200), 255).save(tmp_path / "s.tif", **({"dpi": dpi} if dpi else {}))
    xml = write(tmp_path / "s.xml", ALTO_UNIT.format(unit=unit, width=width))
    line = parse_page_file(xml).lines[0]
    flat = [v for point in line.polygon + (line.baseline or ()) for v in point]
    assert flat == pytest.approx([v * scale for v in (100, 50, 300, 50, 300, 90, 100, 90, 100, 80, 300, 80)], rel=1e-5)


def test_alto_unit_errors(tmp_path: Path) -> None:
    Image.new("L", (400, 200), 255).save(tmp_path / "s.png")
    xml = write(tmp_path / "s.xml", ALTO_UNIT.format(unit="cm", width=""))
    with raises_exactly(xml, "ALTO MeasurementUnit 'cm' is not one of pixel, mm10, inch1200"):
        parse_page_file(xml)
    write(xml, ALTO_UNIT.format(unit="mm10", width=' WIDTH="wide"'))
    with raises_exactly(
        xml,
        "coordinates are in mm10 but page image s.png records no resolution (DPI) and <Page> no WIDTH, "
        "so they cannot be converted to pixels",
    ):
        parse_page_file(xml)
    no_page = ALTO_UNIT.replace("<Page{width}><PrintSpace>", "<PrintSpace>").replace(
        "</PrintSpace></Page>", "</PrintSpace>"
    )
    write(xml, no_page.format(unit="mm10"))
    with raises_exactly(
        xml,
        "coordinates are in mm10 but page image s.png records no resolution (DPI) and <Page> no WIDTH, "
        "so they cannot be converted to pixels",
    ):
        parse_page_file(xml)
    write(tmp_path / "s.png", b"not a png")
    with pytest.raises(DataError, match=rf"^{re.escape(str(xml))}: cannot read the size of page image s\.png \("):
        parse_page_file(xml)


# ------------------------------------------------------------------------------------------- cropping


def test_line_box_at_the_page_edges() -> None:
    # inclusive of the extreme points, grown by pad, clipped to the 100 x 50 page on all four sides
    assert line_box([(0.0, 0.0), (10.0, 0.0), (10.0, 5.0)], (100, 50)) == (0, 0, 11, 6)
    assert line_box([(2.5, 3.0), (97.2, 46.9)], (100, 50), pad=4) == (0, 0, 100, 50)
    assert line_box([(20.0, 10.0), (30.9, 20.0)], (100, 50), pad=2) == (18, 8, 33, 23)
