"""Dataset readers: exact results on the fixtures, and a clear DataError for each bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from htr.data.formats import read_dataset, read_folder, read_iam, read_tsv
from htr.data.samples import Sample
from htr.errors import DataError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
IAM = FIXTURES / "iam"
PAIRS = FIXTURES / "pairs"
TSV = FIXTURES / "tsv"
COPISTE = Path(__file__).resolve().parents[2] / "shared" / "data" / "copiste" / "lines.tsv"

IAM_EXPECTED = [
    ("a01-000u-00", "A MOVE to stop Mr. Gaitskell from", "000", ()),
    ("a01-000u-01", "nominating any more Labour life Peers", "000", ()),
    ("a01-000u-02", "is to be made at a meeting of Labour", "000", ()),
    ("a01-000u-03", "M Ps tomorrow . Mr. Michael Foot has", "000", ()),
    ("a01-003u-00", "Though they may gather some Left-wing support , a", "002", ()),
    ("a01-003u-01", 'large majority of " Labour M Ps " are', "002", ("err",)),
]


def iam_image(line_id: str) -> Path:
    """Where the IAM fixture keeps the image of ``line_id``."""
    form = line_id.rsplit("-", 1)[0]
    return IAM / "lines" / "a01" / form / f"{line_id}.png"


def iam_samples(ids: list[str], split: str | None = None) -> list[Sample]:
    """The expected samples of the IAM fixture with ids ``ids``."""
    return [
        Sample(id=i, image=iam_image(i), text=t, writer=w, split=split, flags=f)
        for i, t, w, f in IAM_EXPECTED
        if i in ids
    ]


ALL_IAM = [row[0] for row in IAM_EXPECTED]


def write(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (str as UTF-8) to ``path``, creating folders; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def raises_naming(path: Path, match: str) -> pytest.RaisesExc[DataError]:
    """``pytest.raises(DataError)`` whose message starts with ``path`` and matches ``match`` after it."""
    return pytest.raises(DataError, match=rf"^{re.escape(str(path))}: .*{match}")


# ------------------------------------------------------------------------------------------------- TSV


def test_tsv_fixture() -> None:
    assert read_tsv(TSV / "lines.tsv") == [
        Sample("t1", TSV / "lines/t1.png", 'He said "no" twice', "w1", "train"),
        Sample("t2", TSV / "lines/t2.png", "l'été, déjà", "w1", "val"),
        Sample("t3", TSV / "lines/t3.png", "it's 'quoted'", None, "test"),
    ]


def test_tsv_split_filter() -> None:
    assert [s.id for s in read_tsv(TSV / "lines.tsv", split="val")] == ["t2"]


def test_tsv_relative_manifest_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TSV)
    assert read_tsv("lines.tsv")[0].image == TSV / "lines/t1.png"


def test_tsv_bom_crlf_quotes_empty_text_and_extra_columns(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.tsv",
        '\ufeffid\timage\ttext\tnote\r\na\tx/a.png\t"quoted" start\tn\r\nb\tb.png\t   \tn\r\n\r\n',
    )
    assert read_tsv(manifest) == [
        Sample("a", tmp_path / "x/a.png", '"quoted" start'),
        Sample("b", tmp_path / "b.png", ""),
    ]


def test_tsv_text_is_normalized(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.tsv", "id\timage\ttext\na\ta.png\t  E\u0301t\u00e9   ok \n")
    assert read_tsv(manifest)[0].text == "\u00c9t\u00e9 ok"


def test_tsv_inner_dotdot_that_stays_inside_is_fine(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.tsv", "id\timage\ttext\na\tx/../a.png\thi\n")
    assert read_tsv(manifest)[0].image == tmp_path / "a.png"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "empty"),
        ("\n  \n", "empty"),
        ("id\timage\n", "lacks required column.*text"),
        ("a\ta.png\thello\n", "line 1: header lacks required column"),
        ("id\timage\ttext\ttext\n", "repeats column"),
        ("id\timage\ttext\n", "header but no lines"),  # e.g. a copy truncated after its first line
        ("id\timage\ttext\r\n\r\n  \n", "header but no lines"),
        ("id\timage\ttext\na\ta.png\n", "line 2: expected 3 tab-separated fields, found 2"),
        ("id\timage\ttext\na\ta.png\thi\tthere\n", "line 2: expected 3 .* found 4"),
        ("id\timage\ttext\na\ta.png\thi\nb\tb.png\tho\na\tc.png\thu\n", "line 4: duplicate id 'a'.*line 2"),
        ("id\timage\ttext\na\t../a.png\thi\n", "line 2: .*'../a.png'.*inside the manifest's folder"),
        ("id\timage\ttext\na\tx/../../a.png\thi\n", "line 2: .*inside the manifest's folder"),
        ("id\timage\ttext\na\t/etc/passwd\thi\n", "line 2: .*absolute"),
        ("id\timage\ttext\na\t\thi\n", "line 2: empty image path"),
        ("id\timage\ttext\n\timg.png\thi\n", "line 2: empty id"),
    ],
)
def test_tsv_errors(tmp_path: Path, content: str, match: str) -> None:
    manifest = write(tmp_path / "m.tsv", content)
    with raises_naming(manifest, match):
        read_tsv(manifest)


def test_tsv_not_utf8(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.tsv", b"id\timage\ttext\na\ta.png\tcaf\xe9\n")
    with raises_naming(manifest, "line 2: .*not valid UTF-8"):
        read_tsv(manifest)


def test_tsv_missing_file(tmp_path: Path) -> None:
    with raises_naming(tmp_path / "nope.tsv", "does not exist"):
        read_tsv(tmp_path / "nope.tsv")


def test_tsv_split_without_split_column(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.tsv", "id\timage\ttext\na\ta.png\thi\n")
    with raises_naming(manifest, "no 'split' column"):
        read_tsv(manifest, split="train")


def test_tsv_unknown_split() -> None:
    with raises_naming(TSV / "lines.tsv", "no rows with split 'dev'.*test, train, val"):
        read_tsv(TSV / "lines.tsv", split="dev")


def test_copiste_manifest() -> None:
    if not COPISTE.is_file():
        pytest.skip("../shared/data/copiste is not available")
    counts = {split: len(read_tsv(COPISTE, split)) for split in ("train", "val", "test")}
    assert counts == {"train": 4849, "val": 395, "test": 519}
    samples = read_tsv(COPISTE)
    assert len(samples) == 4849 + 395 + 519
    missing = [s.image for s in samples if not s.image.is_file()]
    assert missing == []


# ------------------------------------------------------------------------------------------------- IAM


@pytest.mark.parametrize("where", [IAM, IAM / "ascii", IAM / "ascii" / "lines.txt"])
def test_iam_fixture(where: Path) -> None:
    assert read_iam(where) == iam_samples(ALL_IAM)


@pytest.mark.parametrize(
    ("split", "ids"),
    [
        ("train", ["a01-000u-00", "a01-000u-01", "a01-000u-02"]),
        ("val", ["a01-000u-03"]),
        ("test", ["a01-003u-00", "a01-003u-01"]),  # test.lst lists a form id
    ],
)
def test_iam_splits(split: str, ids: list[str]) -> None:
    assert read_iam(IAM, split=split) == iam_samples(ids, split)


def test_iam_explicit_split_file(tmp_path: Path) -> None:
    lst = write(tmp_path / "mine.lst", "# comment\n\na01-003u-01\na01-000u-00  extra\n")
    assert read_iam(IAM, split_file=lst) == iam_samples(["a01-000u-00", "a01-003u-01"])


def test_iam_split_in_root_and_txt(tmp_path: Path) -> None:
    write(tmp_path / "lines.txt", "a01-000u-00 ok 1 2 3 4 5 6 Hi|there\nb02-001-01 err 1 2 3 4 5 6 x\n")
    write(tmp_path / "dev.txt", "b02-001-01\n")
    assert read_iam(tmp_path, split="dev") == [
        Sample("b02-001-01", tmp_path / "lines/b02/b02-001/b02-001-01.png", "x", None, "dev", ("err",))
    ]


def test_iam_missing_split_list() -> None:
    with raises_naming(IAM, "no list of the 'dev' split"):
        read_iam(IAM, split="dev")


def test_iam_split_list_matching_nothing(tmp_path: Path) -> None:
    lst = write(tmp_path / "x.lst", "z99-999-99\n")
    with raises_naming(lst, "none of the 1 ids"):
        read_iam(IAM, split_file=lst)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("# only comments\n", "lists no lines"),
        ("a01-000u-00 ok 154 19 408 746\n", "line 1: expected at least 9"),
        ("a01-000u-00 maybe 1 2 3 4 5 6 x\n", "line 1: segmentation result 'maybe'"),
        ("a01000u00 ok 1 2 3 4 5 6 x\n", "line 1: line id 'a01000u00'"),
        ("#\na01-000u-00 ok 1 2 3 4 5 6 x\na01-000u-00 ok 1 2 3 4 5 6 y\n", "duplicate sample id"),
    ],
)
def test_iam_errors(tmp_path: Path, content: str, match: str) -> None:
    lines = write(tmp_path / "lines.txt", content)
    with raises_naming(lines, match):
        read_iam(lines)


def test_iam_folder_without_lines_txt(tmp_path: Path) -> None:
    with raises_naming(tmp_path, "neither lines.txt nor ascii/lines.txt"):
        read_iam(tmp_path)


# ----------------------------------------------------------------------------------------------- pairs


def test_pairs_fixture() -> None:
    assert read_folder(PAIRS) == [
        Sample("a", PAIRS / "a.jpg", "Élève à l'école"),
        Sample("b", PAIRS / "b.png", "two spaces and a newline"),
        Sample("sub/c", PAIRS / "sub/c.webp", "Zwölf Boxkämpfer"),
    ]


def test_pairs_missing_transcriptions(tmp_path: Path) -> None:
    for i in range(7):
        write(tmp_path / f"img{i}.png", b"x")
    write(tmp_path / "img0.gt.txt", "hi")
    with raises_naming(tmp_path, r"6 image\(s\) have no \.gt\.txt.*img1\.png, .*img5\.png, \.\.\.$"):
        read_folder(tmp_path)


def test_pairs_missing_image(tmp_path: Path) -> None:
    write(tmp_path / "a.png", b"x")
    write(tmp_path / "a.gt.txt", "hi")
    write(tmp_path / "d/b.gt.txt", "ho")
    with raises_naming(tmp_path, r"1 \.gt\.txt file\(s\) have no image.*d/b\.gt\.txt$"):
        read_folder(tmp_path)


def test_pairs_two_images_one_id(tmp_path: Path) -> None:
    for name in ("a.png", "a.jpg", "a.gt.txt"):
        write(tmp_path / name, "x")
    with raises_naming(tmp_path, "two images for id 'a'"):
        read_folder(tmp_path)


def test_pairs_empty_folder_and_bad_gt(tmp_path: Path) -> None:
    with raises_naming(tmp_path, "no image"):
        read_folder(tmp_path)
    write(tmp_path / "a.png", b"x")
    gt = write(tmp_path / "a.gt.txt", b"\xff\xfe")
    with raises_naming(gt, "not valid UTF-8"):
        read_folder(tmp_path)


def test_pairs_ignore_hidden_and_other_files(tmp_path: Path) -> None:
    write(tmp_path / "a.PNG", b"x")
    write(tmp_path / "a.gt.txt", "hi")
    write(tmp_path / ".ipynb_checkpoints/a.png", b"x")
    write(tmp_path / "README.md", "notes")
    assert read_folder(tmp_path) == [Sample("a", tmp_path / "a.PNG", "hi")]


# -------------------------------------------------------------------------------------------- dispatch


def test_dispatch() -> None:
    assert read_dataset(TSV / "lines.tsv") == read_tsv(TSV / "lines.tsv")
    assert read_dataset(TSV, split="train") == read_tsv(TSV / "lines.tsv", split="train")
    assert read_dataset(IAM) == read_iam(IAM)
    assert read_dataset(IAM / "ascii" / "lines.txt", split="val") == read_iam(IAM, split="val")
    assert read_dataset(PAIRS) == read_folder(PAIRS)


def test_dispatch_pairs_split_subfolder(tmp_path: Path) -> None:
    write(tmp_path / "train/a.png", b"x")
    write(tmp_path / "train/a.gt.txt", "hi")
    assert read_dataset(tmp_path, split="train") == [Sample("a", tmp_path / "train/a.png", "hi", split="train")]
    with raises_naming(tmp_path, "no 'val' sub-folder"):
        read_dataset(tmp_path, split="val")


def test_dispatch_errors(tmp_path: Path) -> None:
    with raises_naming(tmp_path / "nope", "does not exist"):
        read_dataset(tmp_path / "nope")
    other = write(tmp_path / "data.csv", "a,b\n")
    with raises_naming(other, "unrecognized dataset file"):
        read_dataset(other)


def test_relative_paths_give_absolute_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    assert read_iam("iam") == iam_samples(ALL_IAM)
    assert read_folder("pairs") == read_folder(PAIRS)
