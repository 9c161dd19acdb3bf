"""``python -m htr.data convert`` and ``check``: manifests that read back, writer-aware splits, each problem."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from htr.checkpoint import save_checkpoint
from htr.cli import run
from htr.config import ModelConfig
from htr.data.__main__ import main
from htr.data.convert import convert
from htr.data.formats import read_iam, read_tsv
from htr.data.formats.pages import read_pages
from htr.data.splits import assign_splits
from htr.errors import HTRError
from htr.model.crnn import CRNN
from htr.preprocess.pipeline import PreprocessConfig
from tests.conftest import REPO, render_text

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def write_writers_dataset(root: Path, n_writers: int = 12, per_writer: int = 3) -> Path:
    """A manifest without splits: ``per_writer`` small lines by each of ``n_writers`` writers."""
    (root / "img").mkdir(parents=True)
    rows = ["id\timage\ttext\twriter"]
    for w in range(n_writers):
        for i in range(per_writer):
            name = f"w{w:02d}-{i}"
            Image.new("L", (60, 20), 230).save(root / "img" / f"{name}.jpg")
            rows.append(f"{name}\timg/{name}.jpg\tline {i} of writer {w}\tw{w:02d}")
    (root / "lines.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "lines.tsv"


# ---------------------------------------------------------------------------------------------- convert


def test_convert_pages_writes_a_manifest_that_reads_back(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["convert", str(FIXTURES / "page"), str(tmp_path / "out")]) == 0
    assert "wrote 5 lines" in capsys.readouterr().out
    back = read_tsv(tmp_path / "out" / "lines.tsv")
    expected = read_pages(FIXTURES / "page", cache_dir=tmp_path / "crops")
    assert [(s.id, s.text) for s in back] == [(s.id, s.text) for s in expected]
    for got, want in zip(back, expected, strict=True):
        assert got.image == tmp_path / "out" / "lines" / f"{got.id}.png"
        assert Image.open(got.image).size == Image.open(want.image).size
    assert not (FIXTURES / "page" / ".htr-lines").exists()  # crops went straight to the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crops", "out"]  # no temporary folder left


def test_convert_pages_by_page_groups(tmp_path: Path) -> None:
    convert(FIXTURES / "page", tmp_path / "out", split_fractions=(0.0, 0.4), seed=1)
    splits = {s.id.split("_")[0]: set() for s in read_tsv(tmp_path / "out" / "lines.tsv")}
    for s in read_tsv(tmp_path / "out" / "lines.tsv"):
        splits[s.id.split("_")[0]].add(s.split)
    assert sorted(map(len, splits.values())) == [1, 1]  # each page in one split
    assert set().union(*splits.values()) == {"train", "test"}


def test_writer_aware_splits_never_share_a_writer(tmp_path: Path) -> None:
    src = write_writers_dataset(tmp_path / "src")
    result = convert(src, tmp_path / "out", split_fractions=(0.25, 0.25), seed=3)
    samples = read_tsv(tmp_path / "out" / "lines.tsv")
    assert len(samples) == 36 and all(s.image.suffix == ".png" and s.image.is_file() for s in samples)
    splits_of = defaultdict(set)
    for s in samples:
        splits_of[s.writer].add(s.split)
    assert all(len(v) == 1 for v in splits_of.values())
    assert result.lines == {"train": 18, "val": 9, "test": 9} and result.groups == {"train": 6, "val": 3, "test": 3}
    again = convert(src, tmp_path / "again", split_fractions=(0.25, 0.25), seed=3)
    assert (tmp_path / "again" / "lines.tsv").read_text() == (tmp_path / "out" / "lines.tsv").read_text()
    assert again.lines == result.lines


def test_assign_splits_rules() -> None:
    sizes = {f"g{i}": 1 + i % 4 for i in range(30)}
    split_of = assign_splits(sizes, 0.1, 0.2, seed=0)
    assert set(split_of) == set(sizes) and set(split_of.values()) == {"train", "val", "test"}
    lines = defaultdict(int)
    for g, name in split_of.items():
        lines[name] += sizes[g]
    total = sum(sizes.values())
    assert abs(lines["test"] - 0.2 * total) <= 4 and abs(lines["val"] - 0.1 * total) <= 4
    assert assign_splits(sizes, 0.1, 0.2, seed=0) == split_of != assign_splits(sizes, 0.1, 0.2, seed=1)
    assert set(assign_splits({"a": 100, "b": 1, "c": 1}, 0.01, 0.01).values()) == {"train", "val", "test"}
    with pytest.raises(HTRError, match="too few"):
        assign_splits({"a": 3, "b": 4}, 0.1, 0.1)
    with pytest.raises(HTRError, match="sum below 1"):
        assign_splits(sizes, 0.5, 0.5)


def test_convert_iam_keeps_its_splits_and_writers(tmp_path: Path) -> None:
    convert(FIXTURES / "iam", tmp_path / "out")
    back = read_tsv(tmp_path / "out" / "lines.tsv")
    iam = read_iam(FIXTURES / "iam")
    assert [(s.id, s.text, s.writer) for s in back] == [(s.id, s.text, s.writer) for s in iam]
    listed = {name: {s.id for s in read_iam(FIXTURES / "iam", split=name)} for name in ("train", "val", "test")}
    for s in back:
        assert s.split == next((name for name, ids in listed.items() if s.id in ids), None)


def test_convert_refuses_a_non_empty_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(HTRError, match="--overwrite"):
        main(["convert", str(FIXTURES / "tsv"), str(tmp_path / "out")])
    assert main(["convert", str(FIXTURES / "tsv"), str(tmp_path / "out"), "--overwrite"]) == 0
    assert not (tmp_path / "out" / "keep.txt").exists() and (tmp_path / "out" / "lines.tsv").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _pages_with_two_bad(folder: Path) -> Path:
    """The fixture pages plus two that fail: one whose image is missing, one whose last line lies outside the
    page (its first two crops are written before the error)."""
    shutil.copytree(FIXTURES / "page", folder)
    xml = (folder / "p2019.xml").read_text(encoding="utf-8")
    (folder / "p2019gone.xml").write_text(xml.replace('imageFilename="page.png"', 'imageFilename="gone.png"'))
    outside = xml.replace('points="75,116 330,116 330,158 75,158"', 'points="600,200 700,200 700,260 600,260"')
    (folder / "p2019out.xml").write_text(outside, encoding="utf-8")
    return folder


def test_convert_leaves_out_the_pages_it_cannot_read(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _pages_with_two_bad(tmp_path / "src")
    assert main(["convert", str(src), str(tmp_path / "out")]) == 1  # 1: not all done
    back = read_tsv(tmp_path / "out" / "lines.tsv")
    good = read_pages(FIXTURES / "page", cache_dir=tmp_path / "crops")
    assert [(s.id, s.text) for s in back] == [(s.id, s.text) for s in good]
    # no crop of a page left out stays behind (p2019out's first two lines were cut before its error)
    assert sorted(p.name for p in (tmp_path / "out" / "lines").iterdir()) == sorted(s.image.name for s in back)
    rows = (tmp_path / "out" / "left_out.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "kind\tname\treason" and len(rows) == 3
    reasons = dict(row.split("\t", 2)[1:] for row in rows[1:])
    assert sorted(reasons) == ["p2019gone.xml", "p2019out.xml"]
    assert "gone.png" in reasons["p2019gone.xml"] and "'l3'" in reasons["p2019out.xml"]
    err = capsys.readouterr().err
    assert "left out 2 pages" in err and str(tmp_path / "out" / "left_out.tsv") in err and "p2019gone.xml" in err


def test_convert_leaves_out_pages_in_split_folders(tmp_path: Path) -> None:
    pages = _pages_with_two_bad(tmp_path / "pages")
    for split, names in (("train", ["p2013.xml"]), ("val", ["p2019.xml", "p2019gone.xml"])):
        (tmp_path / "src" / split).mkdir(parents=True)
        for name in [*names, "page.png"]:
            shutil.copy(pages / name, tmp_path / "src" / split / name)
    result = convert(tmp_path / "src", tmp_path / "out")
    assert [(x.kind, x.name) for x in result.left_out] == [("page", "val/p2019gone.xml")]
    back = read_tsv(tmp_path / "out" / "lines.tsv")
    assert {s.id.split("_")[0]: s.split for s in back} == {"p2013": "train", "p2019": "val"}
    assert sorted(p.name for p in (tmp_path / "out" / "lines").iterdir()) == sorted(s.image.name for s in back)


def test_convert_with_no_usable_page_does_nothing(tmp_path: Path) -> None:
    src = _pages_with_two_bad(tmp_path / "src")
    for name in ("p2013.xml", "p2019.xml"):
        (src / name).unlink()
    with pytest.raises(HTRError, match=r"none of its 2 pages could be converted; the first: .*p2019gone.xml"):
        main(["convert", str(src), str(tmp_path / "out")])
    with pytest.raises(HTRError, match=r"p2019gone.xml: page image 'gone.png' not found"):  # one page: its error
        main(["convert", str(src / "p2019gone.xml"), str(tmp_path / "out")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no output, no temporary folder


def test_convert_leaves_out_lines_whose_image_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(FIXTURES / "tsv", tmp_path / "src")
    every = read_tsv(tmp_path / "src" / "lines.tsv")
    every[0].image.unlink()
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out")]) == 1
    assert [s.id for s in read_tsv(tmp_path / "out" / "lines.tsv")] == [s.id for s in every[1:]]
    rows = (tmp_path / "out" / "left_out.tsv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2 and rows[1].startswith(f"line\t{every[0].id}\t{every[0].image}: ")
    assert "left out 1 line;" in capsys.readouterr().err
    for s in every[1:]:
        s.image.unlink()
    with pytest.raises(HTRError, match=f"none of its 3 lines could be converted; the first: .*{every[0].id}.png"):
        main(["convert", str(tmp_path / "src"), str(tmp_path / "out2")])
    assert not (tmp_path / "out2").exists()


# ------------------------------------------------------------------------------------------------ check


def write_bad_dataset(root: Path) -> Path:
    """One line with each problem kind, plus good lines."""
    lines = root / "lines"
    lines.mkdir(parents=True)
    rows = ["id\timage\ttext\tsplit"]

    def add(name: str, image: Image.Image | None, text: str) -> None:
        if image is not None:
            image.save(lines / f"{name}.png")
        rows.append(f"{name}\tlines/{name}.png\t{text}\ttrain")

    for i in range(3):
        add(f"good{i}", render_text(f"good line {i}"), f"good line {i}")
    add("truncated", render_text("cut short"), "cut short")
    data = (lines / "truncated.png").read_bytes()
    (lines / "truncated.png").write_bytes(data[: len(data) // 2])
    add("missing", None, "no image")
    add("blank", render_text("xx"), "   ")
    add("good0", render_text("again"), "again")  # duplicate id
    add("narrow", Image.new("L", (40, 40), 230), "a long text on a tiny image")
    add("alien", render_text("naïve"), "naïve")  # ï outside the charset of the good lines
    add("flat", Image.new("L", (60, 5), 230), "f")
    add("tall", Image.new("L", (1300, 1200), 230), "tall")
    add("long", Image.new("L", (3300, 32), 230), "long")
    add("square", Image.new("L", (30, 80), 230), "s")
    # a polygon's white fill over most of the box, blank grey paper under it: with no ink darker than that paper,
    # nothing tells it from grey ink on white, and it is taken for ink
    fill = Image.new("L", (300, 60), 255)
    fill.paste(190, (0, 36, 300, 60))
    add("fill", fill, "under a fill")
    (root / "lines.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "lines.tsv"


def test_check_flags_each_problem_and_blocks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = write_bad_dataset(tmp_path / "bad")
    charset_src = tmp_path / "cs.tsv"
    charset_src.write_text("id\timage\ttext\nx\tx.png\tgood line 0123 abcdefghijklmnopqrstuvwxyz\n", "utf-8")
    assert main(["check", str(bad), "--charset-from", str(charset_src), "--jobs", "2"]) == 1
    out = capsys.readouterr().out
    rows = {line[:34].strip(): line[34:] for line in out.splitlines()}

    def row(label: str) -> tuple[int, str]:
        count, _blocks, *ids = rows[label].split(maxsplit=2)
        return int(count), "".join(ids)

    assert row("unreadable image") == (2, "truncated, missing")
    assert row("empty or whitespace-only text") == (1, "blank")
    assert row("duplicate id") == (1, "good0")
    assert row("too narrow for its text")[1].startswith("narrow")
    assert row("characters outside the charset") == (1, "alien")
    assert row("height below 8 px") == (1, "flat")
    assert row("height above 1000 px") == (1, "tall")
    assert row("width/height above 100") == (1, "long")
    assert row("width/height below 0.5") == (1, "square")
    assert row("no ink after preprocessing") == (5, "narrow, flat, tall, ...")  # constant gray: nothing to read
    assert row("mostly ink after preprocessing") == (1, "fill")
    assert "'ï'x1" in out and "image is corrupt or truncated" in out
    assert "BLOCKED: unreadable image: 2; empty or whitespace-only text: 1; duplicate id: 1" in out


def test_check_narrow_lines_block_above_the_threshold(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "d"
    (root / "l").mkdir(parents=True)
    rows = ["id\timage\ttext"] + [f"n{i}\tl/n{i}.png\twide enough" for i in range(10)]
    for i in range(10):
        Image.new("L", (200, 32), 230).save(root / "l" / f"n{i}.png")  # 400 px at height 64 -> 100 frames
    (root / "lines.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["check", str(root)]) == 0
    assert "OK: nothing blocks training" in capsys.readouterr().out
    # at height 8 and stride 16 a 200x32 line has 50 // 16 = 3 frames for 11 characters (12 with "ee")
    assert main(["check", str(root), "--height", "8", "--stride", "16"]) == 1
    assert "too narrow for its text: 10 of 10 lines (more than 5%)" in capsys.readouterr().out


def test_check_takes_settings_from_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = ModelConfig(height=32, conv_channels=[4, 4], conv_kernels=[3, 3], conv_pools=[[2, 2], [2, 1]])
    cfg = dataclasses.replace(cfg, conv_dropout=[0.0, 0.0])
    chars = sorted(set("good line 012"))
    payload = {
        "model": CRNN(cfg, len(chars) + 1).state_dict(),
        "charset": chars,
        "config": {"model": dataclasses.asdict(cfg)},
        "preprocess": dataclasses.asdict(PreprocessConfig(height=32)),
    }
    save_checkpoint(tmp_path / "m.pt", payload)
    data = shutil.copytree(FIXTURES / "tsv", tmp_path / "tsv")
    main(["check", str(data), "--checkpoint", str(tmp_path / "m.pt")])
    out = capsys.readouterr().out
    assert f"height 32, stride 2, charset: {len(chars)} characters from checkpoint" in out


def test_check_exit_status_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = shutil.copytree(FIXTURES / "tsv", tmp_path / "tsv")
    proc = subprocess.run(
        [sys.executable, "-m", "htr.data", "check", str(data)], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checked 3 lines" in proc.stdout and "OK" in proc.stdout
    with pytest.raises(SystemExit) as exit_info:
        run(lambda: main(["check", str(tmp_path / "nope")]))
    assert exit_info.value.code == 2 and "does not exist" in capsys.readouterr().err
