"""Page reading: line segmentation (synthetic pages, the Copiste ALTO pages) and ``recognize --page``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from htr.data.formats.pages import line_box, page_xml_files, parse_page_file
from htr.imageio import load_image
from htr.inference import load_model
from htr.page import PageResult, recognize_page
from htr.segment import SegmentConfig, segment_lines

from .conftest import REPO, SHARED, render_text
from .test_export import write_random_checkpoint

COPISTE_ALTO = SHARED / "copiste-alto"
TEXTS = [
    "The quick brown fox jumps",
    "over the lazy dog",
    "Pack my box with five dozen liquor jugs",
    "hello world",
    "Sphinx of black quartz judge my vow",
]
PAPER = 235  # render_text's paper: the page is one sheet of it


def synthetic_page(angle: float = 0.0, ys: tuple[int, ...] = (60, 150, 230, 330, 410)):
    """A 900x520 page with TEXTS at the rows ``ys`` (irregular spacing), turned by ``angle`` degrees.

    Returns the page and each line's ink box ``(x0, y0, x1, y1)`` on it (of the turned box when turned).
    """
    page = Image.new("L", (900, 520), PAPER)
    boxes = []
    for i, (text, y) in enumerate(zip(TEXTS, ys)):
        line = render_text(text, 40)
        ink = np.asarray(line) < 128
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        x = 60 + 25 * (i % 2)
        page.paste(line, (x, y))
        boxes.append((x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1))
    if angle:
        page = page.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=PAPER)
        t = np.deg2rad(angle)
        cx, cy = page.width / 2, page.height / 2
        turned = []
        for x0, y0, x1, y1 in boxes:
            dx, dy = np.array([x0, x1, x1, x0]) - cx, np.array([y0, y0, y1, y1]) - cy
            # PIL turns counter-clockwise as displayed (image y points down).
            xs, ys_ = dx * np.cos(t) + dy * np.sin(t) + cx, -dx * np.sin(t) + dy * np.cos(t) + cy
            turned.append((xs.min(), ys_.min(), xs.max(), ys_.max()))
        boxes = turned
    return page, boxes


def iou(a, b) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# ---------------------------------------------------------------------------------------------- segmentation


@pytest.mark.parametrize("angle", [0.0, 2.0, -2.0])
def test_synthetic_page_lines_are_found_in_order(angle):
    page, truth = synthetic_page(angle)
    lines = segment_lines(page)
    assert len(lines) == len(truth)
    for line, box in zip(lines, truth):  # top to bottom, each over its own text
        assert iou(line.box, box) > 0.5, (line.box, box)
        x0, y0, x1, y1 = line.box
        assert 0 <= x0 < x1 <= page.width and 0 <= y0 < y1 <= page.height
    # The outline follows the skew: its top edge rises to the right as the text does.
    (left, top_left), (right, top_right) = lines[0].polygon[:2]
    assert (top_left - top_right) / (right - left) == pytest.approx(np.tan(np.deg2rad(angle)), abs=0.01)


def test_segmented_lines_have_baselines_at_the_foot_of_their_letters():
    page, truth = synthetic_page()
    lines = segment_lines(page)
    for text, line, (*_, bottom) in zip(TEXTS, lines, truth):
        (left, y_left), (right, y_right) = line.baseline
        assert (left, right) == (line.box[0], line.box[2])  # across the whole line
        if text == "hello world":  # no descenders: the letters end on the baseline
            assert bottom - 2 <= y_left <= bottom + 1 and bottom - 2 <= y_right <= bottom + 1
        else:  # the descenders of y, q, p, j, g reach below it
            assert bottom - 0.4 * line.height < y_left < bottom - 3
    page, _ = synthetic_page(2.0)
    for line in segment_lines(page):  # it follows the skew: rising to the right as the text does
        (left, y_left), (right, y_right) = line.baseline
        assert (y_left - y_right) / (right - left) == pytest.approx(np.tan(np.deg2rad(2.0)), abs=0.01)


def test_segmentation_edge_cases():
    assert segment_lines(Image.new("L", (400, 300), 255)) == []  # a blank page
    [line] = segment_lines(render_text("a single line"))  # a line image is a page of one line
    assert line.height > 10
    page, truth = synthetic_page()
    # An array works as well as an image; a ruled line under each text line changes nothing.
    a = np.asarray(page).copy()
    for _, _, _, y1 in truth:
        a[int(y1) + 3 : int(y1) + 5, 20:880] = 60
    ruled, plain = segment_lines(a), segment_lines(page)
    assert len(ruled) == len(plain)
    assert np.abs(np.array([line.box for line in ruled]) - [line.box for line in plain]).max() <= 4
    # Small print among larger text is dropped by default, kept with min_height_ratio=0.
    small = page.copy()
    small.paste(render_text("a printed form header in small type", 14), (60, 5))
    assert len(segment_lines(small)) == len(truth)
    assert len(segment_lines(small, SegmentConfig(min_height_ratio=0))) == len(truth) + 1


@pytest.mark.skipif(not COPISTE_ALTO.is_dir(), reason="no ../shared/data/copiste-alto")
@pytest.mark.parametrize("xml", page_xml_files(COPISTE_ALTO) if COPISTE_ALTO.is_dir() else [], ids=lambda p: p.stem)
def test_copiste_pages_segment_like_their_alto(xml):
    doc = parse_page_file(xml)
    page = load_image(doc.image)
    lines = segment_lines(page)
    truth = [line_box(line.polygon, page.size) for line in doc.lines]
    # Found: every ALTO line (23, 19, 14), the printed form header left out; each ALTO line is covered by one
    # found line at IoU 0.67 or more (measured), so 0.6 leaves a margin without letting a half-line through.
    assert len(lines) == len(truth)
    assert min(max(iou(line.box, box) for line in lines) for box in truth) > 0.6
    assert [line.box[1] for line in lines] == sorted(line.box[1] for line in lines)


# ----------------------------------------------------------------------------------------------- recognition


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("page") / "tiny.pt"
    write_random_checkpoint(path)
    return path


def write_alto(path, image_name: str, boxes) -> None:
    """A minimal ALTO v4 file with one TextLine (HPOS/VPOS/WIDTH/HEIGHT) per box."""
    lines = "".join(
        f'<TextLine ID="l{i}" HPOS="{x0}" VPOS="{y0}" WIDTH="{x1 - x0}" HEIGHT="{y1 - y0}">'
        f'<String CONTENT="line{i}"/></TextLine>'
        for i, (x0, y0, x1, y1) in enumerate(boxes)
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">'
        f"<Description><MeasurementUnit>pixel</MeasurementUnit><sourceImageInformation><fileName>{image_name}"
        f"</fileName></sourceImageInformation></Description><Layout><Page><PrintSpace><TextBlock>{lines}"
        "</TextBlock></PrintSpace></Page></Layout></alto>",
        encoding="utf-8",
    )


def test_recognize_page_in_process(checkpoint):
    torch.set_num_threads(1)
    loaded = load_model(checkpoint)
    page, truth = synthetic_page(2.0)
    done: list[int] = []
    result = recognize_page(loaded, page, batch_size=2, progress=done.append)
    assert isinstance(result, PageResult) and len(result.lines) == len(truth) and sum(done) == len(truth)
    assert result.text == "\n".join(line.text for line in result.lines)
    assert all(0.0 <= line.confidence <= 1.0 for line in result.lines)


def _recognize(*args: str, status: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(
        [sys.executable, "-m", "htr.recognize", *args], cwd=REPO, capture_output=True, text=True, timeout=600, env=env
    )
    assert p.returncode == status, f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def test_recognize_page_cli(tmp_path, checkpoint):
    page, truth = synthetic_page(2.0)
    page.save(tmp_path / "page.png")
    n = len(segment_lines(page))
    write_alto(tmp_path / "page.xml", "page.png", [tuple(round(v) for v in b) for b in truth[:3]])

    p = _recognize("--page", str(tmp_path / "page.png"), "--checkpoint", str(checkpoint))
    assert len(p.stdout.split("\n")) == n + 1  # one text line per segmented line (texts may be empty)
    assert p.stderr == ""  # no progress bar when stderr is not a terminal

    p = _recognize("--page", str(tmp_path / "page.png"), str(tmp_path / "page.xml"), "--json", "--checkpoint",
                   str(checkpoint))  # fmt: skip
    segmented, from_xml = (json.loads(line) for line in p.stdout.splitlines())
    assert set(segmented) == {"image", "lines", "text"} and segmented["image"] == str(tmp_path / "page.png")
    assert len(segmented["lines"]) == n
    for line in segmented["lines"]:
        assert {"text", "confidence", "box", "polygon"} <= set(line) and len(line["box"]) == 4
    assert segmented["text"] == "\n".join(line["text"] for line in segmented["lines"])
    assert from_xml["xml"] == str(tmp_path / "page.xml") and from_xml["image"] == str(tmp_path / "page.png")
    assert [line["id"] for line in from_xml["lines"]] == ["l0", "l1", "l2"]  # the XML's lines, in its order

    # Without --page, an XML file is refused, in one sentence.
    p = _recognize(str(tmp_path / "page.xml"), "--checkpoint", str(checkpoint), status=1)
    assert p.stderr.strip() == f"htr: {tmp_path / 'page.xml'}: a PAGE/ALTO file is read with --page"
