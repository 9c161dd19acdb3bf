"""Tests of the synthetic line generator (needs the fontpkg-* handwriting font packages installed)."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from htr.data import synthetic
from htr.data.synthetic import (
    TSV_HEADER,
    available_fonts,
    font_name,
    generate_dataset,
    load_words,
    random_text,
    read_tsv,
    render_line,
)
from htr.data.synthetic import fonts as synthetic_fonts
from htr.data.synthetic import generate as synthetic_generate
from htr.errors import HTRError

ALLOWED = re.compile(r"^[A-Za-z0-9.,;:?!'\- ]+$")


@pytest.fixture(scope="module")
def words() -> list[str]:
    return load_words()


def small(out: Path, seed: int = 0, **kw) -> Path:
    return generate_dataset(out, n_train=5, n_val=2, n_test=2, seed=seed, **kw)


def ink_threshold(a: np.ndarray) -> float:
    """Gray level halfway between the darkest pixel (ink) and the median (paper)."""
    return (float(a.min()) + float(np.median(a))) / 2


def assert_not_clipped(img: Image.Image) -> None:
    a = np.asarray(img, dtype=np.float32)
    thr = ink_threshold(a)
    assert (a < thr).sum() > 20, "no ink"
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    assert border.min() > thr, "ink touches the border"


# ------------------------------------------------------------------------------------------------ words


def test_word_list_shipped(words: list[str]) -> None:
    assert 3000 <= len(words) <= 5000
    assert len(set(words)) == len(words)
    assert synthetic.WORDS_FILE.stat().st_size < 50_000
    assert all(re.fullmatch(r"[A-Za-z]+('[A-Za-z]+)?", w) for w in words)
    assert words[0] == "the" and "I" in words
    assert 50 < sum(w[0].isupper() for w in words) < 600


# ------------------------------------------------------------------------------------------------ fonts


def test_fonts_found() -> None:
    fonts = available_fonts()
    assert fonts and all(p.is_file() and p.suffix in (".ttf", ".otf") for p in fonts)
    assert len({font_name(p) for p in fonts}) == len(fonts)
    assert fonts == synthetic.FONTS
    assert "[" not in font_name(Path("Caveat[wght].ttf"))


def test_no_fonts_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import fontpkg

    def missing(name: str):
        raise fontpkg.FamilyNotInstalled(name)

    monkeypatch.setattr(fontpkg, "family", missing)
    synthetic_fonts._available_fonts.cache_clear()
    try:
        with pytest.raises(HTRError, match="pip install fontpkg-"):
            available_fonts()
    finally:
        monkeypatch.undo()
        synthetic_fonts._available_fonts.cache_clear()
    assert available_fonts()


# -------------------------------------------------------------------------------------------------- text


def test_random_text_constraints(words: list[str]) -> None:
    rng = random.Random(1)
    texts = [random_text(rng, words) for _ in range(3000)]
    for t in texts:
        assert 1 <= len(t) <= 48
        assert t == t.strip() and "  " not in t
        assert 1 <= len(t.split(" ")) <= 7
        assert ALLOWED.match(t), t
    joined = "".join(texts)
    for c in ".,;:?!'-":
        assert c in joined, f"punctuation {c!r} never used"
    assert any(any(ch.isdigit() for ch in t) for t in texts)
    assert any(t[0].isupper() for t in texts) and any(t[0].islower() for t in texts)
    assert len(set(texts)) > 2900
    assert {len(t.split(" ")) for t in texts} >= {1, 2, 3, 4, 5, 6}


def test_random_text_short_limit(words: list[str]) -> None:
    rng = random.Random(2)
    for _ in range(500):
        t = random_text(rng, words, max_chars=8)
        assert 1 <= len(t) <= 8 and t == t.strip()


def test_random_text_deterministic(words: list[str]) -> None:
    a = [random_text(random.Random(5), words) for _ in range(3)]
    assert a[0] == a[1] == a[2]


def test_fit_line() -> None:
    assert synthetic.fit_line("  a   b ") == "a b"
    long = " ".join(["word"] * 20)
    cut = synthetic.fit_line(long, 48)
    assert len(cut) <= 48 and long.startswith(cut) and not cut.endswith(" ") and cut.endswith("word")


# ------------------------------------------------------------------------------------------------ render


def test_render_line_images(words: list[str]) -> None:
    rng = random.Random(3)
    for font in available_fonts():
        for text in ("a", "Hg jy'Q!", random_text(rng, words)):
            img = render_line(text, rng, [font])
            assert img.mode == "L"
            assert 25 <= img.height <= 140, (font.name, text, img.size)
            assert_not_clipped(img)
            a = np.asarray(img)
            assert np.median(a) > 150, "paper must be light"


def test_render_line_deterministic() -> None:
    a = render_line("Same text, twice.", random.Random(9))
    b = render_line("Same text, twice.", random.Random(9))
    c = render_line("Same text, twice.", random.Random(10))
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert a.size != c.size or not np.array_equal(np.asarray(a), np.asarray(c))


def test_render_line_width_follows_text() -> None:
    font = available_fonts()[:1]
    short = [render_line("ab", random.Random(i), font).width for i in range(5)]
    long = [render_line("a much longer line of handwriting", random.Random(i), font).width for i in range(5)]
    assert max(short) < min(long)


# ----------------------------------------------------------------------------------------------- dataset


def load_arrays(out: Path) -> dict[str, np.ndarray]:
    return {r["id"]: np.asarray(Image.open(out / r["image"])) for r in read_tsv(out / "lines.tsv")}


def test_dataset_layout_and_determinism(tmp_path: Path, words: list[str]) -> None:
    tsv_a = small(tmp_path / "a", seed=7)
    tsv_b = small(tmp_path / "b", seed=7)
    tsv_c = small(tmp_path / "c", seed=8)
    assert tsv_a == tmp_path / "a" / "lines.tsv"
    assert tsv_a.read_bytes() == tsv_b.read_bytes()
    assert tsv_a.read_bytes() != tsv_c.read_bytes()
    assert tsv_a.read_text(encoding="utf-8").splitlines()[0] == "\t".join(TSV_HEADER)

    rows = read_tsv(tsv_a)
    assert [r["split"] for r in rows] == ["train"] * 5 + ["val"] * 2 + ["test"] * 2
    assert len({r["id"] for r in rows}) == len(rows)
    writers = {font_name(p) for p in available_fonts()}
    vocab = {w.lower() for w in words}
    for r in rows:
        assert not Path(r["image"]).is_absolute() and r["image"].startswith("lines/")
        assert r["writer"] in writers
        assert ALLOWED.match(r["text"]) and len(r["text"]) <= 48
        for token in re.split(r"[ \-]+", r["text"]):
            token = token.strip(".,;:?!'")
            assert not token or token.lower() in vocab or re.fullmatch(r"[\d.]+", token), token
        img = Image.open(tmp_path / "a" / r["image"])
        assert img.mode == "L"
        assert_not_clipped(img)
        assert (tmp_path / "a" / r["image"]).read_bytes() == (tmp_path / "b" / r["image"]).read_bytes()

    arr_a, arr_b, arr_c = (
        load_arrays(tmp_path / "a"),
        load_arrays(tmp_path / "b"),
        load_arrays(tmp_path / "c"),
    )
    assert arr_a.keys() == arr_b.keys() == arr_c.keys()
    assert all(np.array_equal(arr_a[k], arr_b[k]) for k in arr_a)
    assert not all(arr_a[k].shape == arr_c[k].shape and np.array_equal(arr_a[k], arr_c[k]) for k in arr_a)
    # nothing but the dataset, no temporary directories left beside it
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["lines", "lines.tsv", "params.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_texts_match_generator(tmp_path: Path, words: list[str]) -> None:
    """The tsv holds the very texts the per-line rng drew (seeded by seed, split and index)."""
    rows = read_tsv(small(tmp_path / "d", seed=3))
    for r in rows:
        split, i = r["id"].rsplit("-", 1)
        rng = random.Random(f"htr-synthetic:3:{split}:{int(i)}")
        assert r["text"] == random_text(rng, words)


def test_reuse_does_not_rewrite(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    tsv = small(out)
    files = [tsv, out / "params.json", *sorted((out / "lines").iterdir())]
    old = {p: p.stat().st_mtime_ns for p in files}
    for p in files:  # push the mtimes into the past so any rewrite would show
        os.utime(p, ns=(old[p] - 10**9, old[p] - 10**9))
    before = {p: p.stat().st_mtime_ns for p in files}
    assert small(out) == tsv
    assert {p: p.stat().st_mtime_ns for p in files} == before
    # other parameters: regenerated in place
    generate_dataset(out, n_train=3, n_val=1, n_test=0, seed=0)
    assert len(read_tsv(tsv)) == 4 and len(list((out / "lines").iterdir())) == 4


def test_interrupted_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = synthetic.render_line

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic_generate, "render_line", flaky)
    with pytest.raises(KeyboardInterrupt):
        small(tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []

    # an existing complete dataset survives an interrupted regeneration with other parameters
    monkeypatch.setattr(synthetic_generate, "render_line", real)
    tsv = small(tmp_path / "ds")
    content = tsv.read_bytes()
    calls["n"] = 0
    monkeypatch.setattr(synthetic_generate, "render_line", flaky)
    with pytest.raises(KeyboardInterrupt):
        small(tmp_path / "ds", seed=1)
    assert tsv.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(HTRError, match="not a synthetic dataset"):
        small(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_text_file(tmp_path: Path) -> None:
    long = "this line is much too long to fit in forty eight characters at all"
    src = tmp_path / "texts.txt"
    src.write_text(f"Hello world.\n\n  spaced    out  \n{long}\n", encoding="utf-8")
    rows = read_tsv(generate_dataset(tmp_path / "ds", 6, 0, 0, seed=1, text_file=src))
    texts = [r["text"] for r in rows]
    cut = "this line is much too long to fit in forty eight"
    assert set(texts) == {"Hello world.", "spaced out", cut}
    assert all(texts.count(t) == 2 for t in set(texts))


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert synthetic.main([str(out), "--train", "2", "--val", "1", "--test", "1", "--seed", "4"]) == 0
    assert len(read_tsv(out / "lines.tsv")) == 4
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "other").write_text("")
    assert synthetic.main([str(tmp_path / "x"), "--train", "1", "--val", "0", "--test", "0"]) == 2
    assert "htr:" in capsys.readouterr().err
