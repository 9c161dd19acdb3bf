"""``evaluate --report``: the alignment and confusion counts (hand-computed), the page's content and escaping,
the output check before evaluating, and the page as a real browser renders it (Debian's chromium)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import editdistance
import numpy as np
import pytest
from PIL import Image

from htr import evaluate
from htr.cli import run
from htr.report import align, build_report, confusions, diff_html, worst_lines

from .conftest import render_text, save_untrained_checkpoint, write_tsv_dataset

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# --- alignment and confusions ---------------------------------------------------------------------------------


def test_align_kitten_sitting():
    # The textbook example: k->s, e->i, +g (3 edits, the only minimal alignment).
    assert align("kitten", "sitting") == [
        ("replace", "k", "s"), ("equal", "itt", "itt"), ("replace", "e", "i"), ("equal", "n", "n"),
        ("insert", "", "g"),
    ]  # fmt: skip
    assert align("abc", "") == [("delete", "abc", "")]
    assert align("", "xy") == [("insert", "", "xy")]
    assert align("", "") == []


def test_confusions_hand_counted_and_add_up_to_the_edit_distance():
    pairs = [("kitten", "sitting"), ("abcd", "acd"), ("ab", "abx"), ("same", "same"), ("e", "i")]
    counts = confusions(pairs)
    assert counts == Counter({("e", "i"): 2, ("k", "s"): 1, ("", "g"): 1, ("b", ""): 1, ("", "x"): 1})
    assert sum(counts.values()) == sum(editdistance.eval(r, h) for r, h in pairs) == 6


def test_diff_html_marks_and_escapes():
    # t = t, < misread as >, m = m, x extra.
    assert diff_html("t<m", "t>mx") == ("t<mark>&lt;</mark>m", "t<mark>&gt;</mark>m<ins>x</ins>")
    # A missed space is shown, not invisible; an ampersand is escaped.
    assert diff_html("a b&", "ab&") == ("a<del>␣</del>b&amp;", "ab&amp;")
    assert diff_html("", "") == ("", "")


# --- the page -------------------------------------------------------------------------------------------------


def _result(tmp_path: Path, lines: list[tuple[str, str, str]]) -> dict[str, Any]:
    """An :func:`htr.evaluate.evaluate` result for (id, reference, prediction) lines, images rendered."""
    per_line = []
    for sid, ref, hyp in lines:
        image = tmp_path / f"{len(per_line)}.png"
        render_text(ref or "x").save(image)
        cer = editdistance.eval(ref, hyp) / max(len(ref), 1)
        per_line.append({"id": sid, "reference": ref, "prediction": hyp, "cer": cer, "wer": 0.0, "image": str(image)})
    chars, errors = sum(len(r) for _, r, _ in lines), sum(editdistance.eval(r, h) for _, r, h in lines)
    return {"cer": errors / chars, "wer": 0.5, "lines": len(lines), "chars": chars, "per_line": per_line,
            "skipped": {}, "unknown_chars": {}}  # fmt: skip


LINES = [
    ("ok", "tom ada", "tom ada"),  # no error: never listed
    ("one", "mix zoe", "mix zoo"),  # CER 1/7
    ("<b>x</b>", "cup & <script>alert(1)</script>", "cup"),  # CER 28/31
    ("half", "bed", "bad"),  # CER 1/3
]


def test_worst_lines_first_without_the_correct_ones(tmp_path):
    rows = worst_lines({"d": _result(tmp_path, LINES)}, limit=10)
    assert [r["id"] for r in rows] == ["<b>x</b>", "half", "one"]
    assert [r["errors"] for r in rows] == [28, 1, 1]
    assert [r["id"] for r in worst_lines({"d": _result(tmp_path, LINES)}, limit=2)] == ["<b>x</b>", "half"]


def test_page_holds_the_summary_confusions_and_worst_lines_all_escaped(tmp_path):
    result = _result(tmp_path, LINES)
    page = build_report({"d": result}, result, {"checkpoint": "m<1>.pt"}, max_lines=2)
    assert "<script" not in page and "<b>x" not in page  # every text escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "m&lt;1&gt;.pt" in page
    assert page.count("<img ") == 2  # --report-lines caps the lines shown
    assert "The 2 lines with the highest CER, of the 3 with errors" in page
    # Confusion tables: 30 errors = 2 substitutions (e->o, e->a), 28 deletions, no insertion.
    assert "30 character errors" in page
    assert "misread (reference → prediction): 2" in page and "missed (deleted): 28" in page
    assert "extra (inserted): 0" in page
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(uris) == 2 and Image.open(io.BytesIO(base64.b64decode(uris[0]))).height == 40  # rendered lines


def test_several_sources_get_a_row_each_and_the_total(tmp_path):
    a, b = _result(tmp_path, LINES[:2]), _result(tmp_path, LINES[3:])
    total = {"cer": 0.2, "wer": 0.0, "lines": 3, "chars": 17}
    page = build_report({"alpha": a, "beta": b}, total, {}, max_lines=5)
    rows = re.findall(r"<tr><td>(\w+)</td><td>([\d.]+)%</td>", page)
    assert rows == [("alpha", f"{100 * a['cer']:.2f}"), ("beta", f"{100 * b['cer']:.2f}"), ("total", "20.00")]
    assert "beta · half" in page and "alpha · one" in page  # each worst line says where it comes from


# --- the output path is checked before evaluating ----------------------------------------------------------


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: Any) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["htr.evaluate", *args])
    with pytest.raises(SystemExit) as exited:
        run(evaluate.main)
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_report_path_is_checked_before_the_model_is_even_loaded(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "r.html"  # a parent that is a file
    code, out, err = _cli([str(tmp_path / "no-such.pt"), str(tmp_path), "--report", str(bad)], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"htr: {bad}: cannot write this file") and err.count("\n") == 1


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny model (its readings are wrong, which is what a report is for)."""
    return save_untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_evaluate_writes_the_report(tmp_path, tiny_ckpt, monkeypatch, capsys):
    words = ["tom", "ada", "mix", "zoe", "bed"]
    tsv = write_tsv_dataset(tmp_path / "d", {"test": words})
    report = tmp_path / "r.html"
    args = [str(tiny_ckpt), str(tsv), "--report", str(report), "--report-lines", "3", "--json"]
    code, out, _ = _cli(args, monkeypatch, capsys)
    assert code == 0
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<img ") == 3
    cer = json.loads(out)["cer"]
    assert f"<tr><td>d</td><td>{100 * cer:.2f}%</td>" in page  # the CER printed is the CER shown
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


# --- in a real browser ------------------------------------------------------------------------------------------

# Appended to a copy of the page for the test only (the report itself has no script): once every image has
# loaded, each <img> gets the size the browser decoded.
PROBE = """<script>addEventListener("load", () => { for (const im of document.images)
  im.setAttribute("data-decoded", im.naturalWidth + "x" + im.naturalHeight); });</script>"""


def _chromium(url: str, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}", "--force-color-profile=srgb", "--hide-scrollbars"]  # fmt: skip
    return subprocess.run([CHROMIUM, *flags, *args, url], capture_output=True, text=True, timeout=600, check=True)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_report_renders_in_chromium(tmp_path):
    result = _result(tmp_path, LINES)
    page = build_report({"d": result}, result, {"checkpoint": "tiny.pt"})
    expected = sorted(
        f"{im.width}x{im.height}"
        for im in (Image.open(io.BytesIO(base64.b64decode(u))) for u in re.findall(r"base64,([^\"]+)", page))
    )
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium(probed.as_uri(), "--dump-dom", "--virtual-time-budget=5000", tmp=tmp_path).stdout
    assert sorted(re.findall(r'data-decoded="(\d+x\d+)"', dom)) == expected and len(expected) == 3
    assert dom.count("<table") == 5  # summary, three confusion tables, worst lines
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text, not run

    shot = tmp_path / "shot.png"
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    _chromium(report.as_uri(), f"--screenshot={shot}", "--window-size=1200,1400", tmp=tmp_path)
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    assert (pixels.min(axis=1) < 100).mean() > 0.002  # dark text and ink, not a blank page
    colours = Counter(map(tuple, pixels[(pixels != 255).any(axis=1)].tolist()))
    for name, rgb in (("<del>", (255, 208, 208)), ("<mark>", (255, 224, 138))):
        assert colours[rgb] > 50, f"no {name} highlight on the screenshot"
