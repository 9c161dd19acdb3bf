"""Reliability: damaged ONNX files, outputs that cannot be written, resumed runs in a new folder, Windows
manifests, bad recognize arguments, file names no disk can hold. Each failure is one sentence, found before the
work where it can be, and never a silent wrong result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest

import htr.export
import htr.train
from htr import evaluate, recognize
from htr.checkpoint import load_checkpoint
from htr.data.formats import read_tsv
from htr.errors import CheckpointError, DataError, HTRError
from htr.export import cache_is_current, cache_path, export_checkpoint, onnx_for_checkpoint, save_onnx
from htr.inference import OnnxModel, load_model
from htr.lm.__main__ import main as lm_main
from htr.onnx_file import CHECKSUM_KEY

from .conftest import REPO, render_text, write_tsv_dataset
from .test_export import write_random_checkpoint
from .test_robustness import ENV, WORDS, cli, overrides, tiny_train

LONG_NAME = "q" * 300  # longer than a file name may be (255 bytes on the usual file systems)


def _flip_weights(path: Path) -> None:
    """Flip an exponent bit of every value of one weight tensor where the file stores it."""
    raw = next(i for i in onnx.load(path).graph.initializer if i.name == "linear.bias").raw_data
    data = bytearray(path.read_bytes())
    at = bytes(data).find(raw)
    assert at > 0 and bytes(data).count(raw) == 1
    for k in range(3, len(raw), 4):
        data[at + k] ^= 0x40
    path.write_bytes(bytes(data))


def _texts(model: Any, images: list[Path]) -> list[str]:
    from htr.data.lines import preprocess_file
    from htr.inference import recognize_lines

    return [h.text for h in recognize_lines(model, [preprocess_file(p, model.preprocess) for p in images])]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny model's checkpoint."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    write_random_checkpoint(path)
    return path


@pytest.fixture
def lines(tmp_path: Path) -> list[Path]:
    out = []
    for w in WORDS[:3]:
        render_text(w).save(tmp_path / f"{w}.png")
        out.append(tmp_path / f"{w}.png")
    return out


# -------------------------------------------------------------------------------------------------- ONNX


def test_an_onnx_file_with_flipped_weight_bytes_is_refused(
    tmp_path: Path, tiny_ckpt: Path, lines: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = tmp_path / "m.onnx"
    save_onnx(export_checkpoint(tiny_ckpt), path)
    meta = {p.key: json.loads(p.value) for p in onnx.load(path).metadata_props}
    assert meta["source_weights_sha256"] == load_checkpoint(tiny_ckpt)["weights_sha256"]
    assert _texts(load_model(path), lines) == _texts(load_model(tiny_ckpt), lines)  # intact: reads as the .pt
    _flip_weights(path)
    with pytest.raises(CheckpointError, match="does not match the checksum recorded when it was exported"):
        OnnxModel(path)
    code, out, err = cli(recognize.main, [str(lines[0]), "--checkpoint", str(path)], monkeypatch, capsys)
    assert code == 2 and out == "" and err.startswith(f"htr: {path}: the model does not match the checksum")


def test_a_damaged_or_unchecked_cached_export_is_exported_again(
    tmp_path: Path, tiny_ckpt: Path, lines: list[Path]
) -> None:
    ckpt = tmp_path / "best.pt"
    shutil.copy(tiny_ckpt, ckpt)
    expected = _texts(load_model(ckpt), lines)
    cache = onnx_for_checkpoint(ckpt)
    assert cache == cache_path(ckpt) and cache_is_current(cache, ckpt)
    _flip_weights(cache)  # the recorded source hash still matches the .pt: only the checksum tells
    assert not cache_is_current(cache, ckpt)
    assert _texts(load_model(ckpt, backend="onnxruntime"), lines) == expected
    assert cache_is_current(cache, ckpt)  # rewritten
    proto = onnx.load(cache)  # a cache written before htr recorded checksums: not trusted, exported again
    [entry] = [p for p in proto.metadata_props if p.key == CHECKSUM_KEY]
    proto.metadata_props.remove(entry)
    save_onnx(proto, cache)
    assert not cache_is_current(cache, ckpt) and isinstance(load_model(cache), OnnxModel)  # a legacy file loads
    assert onnx_for_checkpoint(ckpt) == cache and cache_is_current(cache, ckpt)


# ------------------------------------------------------------------------------- outputs checked up front


def test_evaluate_checks_its_per_line_output_before_the_work(
    tmp_path: Path, tiny_ckpt: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    tsv = write_tsv_dataset(tmp_path / "d", {"test": WORDS[:2]})
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "x.tsv"  # a parent that is a file: no folder can be made there
    monkeypatch.setattr(evaluate, "load_model", lambda *a: pytest.fail("the work started"))
    code, out, err = cli(evaluate.main, [str(tiny_ckpt), str(tsv), "--per-line", str(bad)], monkeypatch, capsys)
    assert code == 2 and out == "" and err.startswith(f"htr: {bad}: cannot write this file (")
    assert len(err.splitlines()) == 1
    monkeypatch.undo()
    missing = tmp_path / "new" / "folder" / "x.tsv"  # missing folders are created, as every htr writer does
    code, out, err = cli(evaluate.main, [str(tiny_ckpt), str(tsv), "--per-line", str(missing)], monkeypatch, capsys)
    assert code == 0 and "CER" in out
    written = missing.read_text().splitlines()
    assert written[0] == "id\treference\tprediction\tcer" and len(written) == 3


def test_export_and_lm_build_check_their_output_before_the_work(
    tmp_path: Path, tiny_ckpt: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "m.onnx"
    monkeypatch.setattr(htr.export, "export_checkpoint", lambda *a: pytest.fail("the export started"))
    code, out, err = cli(htr.export.main, [str(tiny_ckpt), str(bad)], monkeypatch, capsys)
    assert code == 2 and out == "" and err.startswith(f"htr: {bad}: cannot write this file (")
    texts = tmp_path / "texts.txt"
    texts.write_text("tom ada\nmix zoe\n")
    code, out, err = cli(lambda: lm_main(), ["build", str(texts), "--output", str(bad.with_suffix(".arpa"))],
                         monkeypatch, capsys)  # fmt: skip
    assert code == 2 and out == "" and err.startswith(f"htr: {bad.with_suffix('.arpa')}: cannot write this file (")
    code, out, err = cli(lambda: lm_main(), ["build", str(texts), "--output", str(tmp_path / "new" / "c.arpa"),
                                             "--order", "2"], monkeypatch, capsys)  # fmt: skip
    assert code == 0 and (tmp_path / "new" / "c.arpa").is_file()


def test_training_whose_run_folder_cannot_be_made_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    (tmp_path / "runs").write_text("")  # where Hydra would make runs/DATE
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(htr.train, "_hydra_main", lambda: pytest.fail("Hydra started"))
    code, out, err = cli(htr.train.main, ["train.max_steps=1"], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err == (
        "htr: cannot create the run folder runs/${now:%Y-%m-%d_%H-%M-%S}: runs is a file; run from a writable "
        "folder or set hydra.run.dir=FOLDER\n"
    )
    code, out, err = cli(htr.train.main, ["hydra.run.dir=runs/x"], monkeypatch, capsys)
    assert code == 2 and "cannot create the run folder runs/x: runs is a file" in err
    monkeypatch.setattr(htr.train, "_hydra_main", lambda: None)
    # Printing the config creates nothing; a run folder that can be created is fine.
    for argv in (["--cfg", "job"], ["hydra.run.dir=elsewhere/${now:%H}"]):
        assert cli(htr.train.main, argv, monkeypatch, capsys)[0] is None


def _read_only_prefix(folder: Path) -> list[str]:
    """A command prefix that runs what follows with ``folder`` read-only (a read-only bind mount in a private
    mount namespace, for root), or skips the test where that cannot be set up."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    mount = f'mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && exec "$@"'
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", mount, "sh", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no way to make a read-only folder here (unshare -rm failed)")
    return ["unshare", "-rm", "sh", "-c", mount, "sh"]


def test_training_from_a_read_only_working_folder(tmp_path: Path) -> None:
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS[:4], "val": WORDS[:2]})
    cwd = tmp_path / "ro"
    cwd.mkdir()
    prefix = _read_only_prefix(cwd)
    env = {**ENV, "PYTHONPATH": str(REPO)}
    args = [a for a in overrides(tsv, tmp_path / "unused") if not a.startswith("train.out_dir")] + ["train.max_steps=1"]
    cmd = [*prefix, sys.executable, "-m", "htr.train", *args]
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.startswith("htr: cannot create the run folder runs/"), p.stderr
    assert "Traceback" not in p.stderr and "hydra.run.dir=FOLDER" in p.stderr
    runs = tmp_path / "runs"  # elsewhere and writable: it just works
    p = subprocess.run([*cmd, f"hydra.run.dir={runs}"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (runs / "best.pt").is_file() and not list(cwd.iterdir())


# ------------------------------------------------------------------------------------ resumed elsewhere


@pytest.fixture
def fixed_cers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Validation reports these CERs in turn (the real validation still runs)."""
    cers: list[float] = []
    real = htr.train.validate
    monkeypatch.setattr(htr.train, "validate", lambda *a, **k: {**real(*a, **k), "cer": cers.pop(0)})
    return cers


def test_a_run_resumed_in_a_new_folder_names_a_best_pt_that_exists(
    tmp_path: Path, fixed_cers: list[float], capsys: Any
) -> None:
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})  # 2 steps an epoch
    fixed_cers += [0.5, 0.7, 0.9]  # the best is the first run's; the resumed one never beats it
    tiny_train(tsv, tmp_path / "a", ["train.max_steps=2"])
    result = tiny_train(tsv, tmp_path / "b", ["train.max_steps=3", f"train.resume={tmp_path / 'a' / 'last.pt'}"])
    best = tmp_path / "b" / "best.pt"
    assert result["best"] == str(best) and best.read_bytes() == (tmp_path / "a" / "best.pt").read_bytes()
    assert f"best val CER 0.5000; {best}\n" in capsys.readouterr().out
    # Without the first run's best.pt the run says so instead of naming a file that is not there.
    fixed_cers += [0.9]
    (tmp_path / "a" / "best.pt").unlink()
    result = tiny_train(tsv, tmp_path / "c", ["train.max_steps=3", f"train.resume={tmp_path / 'a' / 'last.pt'}"])
    printed = capsys.readouterr().out
    assert result["best"] is None and not (tmp_path / "c" / "best.pt").exists()
    assert f"note: no best.pt of this run next to {tmp_path / 'a' / 'last.pt'}" in printed
    assert f"best val CER 0.5000; no best.pt in {tmp_path / 'c'}" in printed


def test_resuming_into_a_folder_of_another_run_is_refused(tmp_path: Path) -> None:
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    tiny_train(tsv, tmp_path / "a", ["train.max_steps=1"])
    tiny_train(tsv, tmp_path / "b", ["train.max_steps=1"])
    with pytest.raises(HTRError, match=f"{tmp_path / 'b'} already holds best.pt and last.pt of another run"):
        tiny_train(tsv, tmp_path / "b", ["train.max_steps=2", f"train.resume={tmp_path / 'a' / 'last.pt'}"])


# ---------------------------------------------------------------------------------------- input files


def test_a_manifest_with_windows_separators_reads(
    tmp_path: Path, tiny_ckpt: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    tsv = write_tsv_dataset(tmp_path / "d", {"test": WORDS[:2]})
    tsv.write_text(tsv.read_text().replace("lines/", "lines\\"))
    assert [s.image for s in read_tsv(tsv)] == [tmp_path / "d" / "lines" / f"test00{i}.png" for i in range(2)]
    code, out, err = cli(evaluate.main, [str(tiny_ckpt), str(tsv)], monkeypatch, capsys)
    assert code == 0 and "lines 2" in out and err == ""
    odd = tmp_path / "d" / "odd\\name.png"  # a file whose name holds a backslash is taken as it is
    render_text("tom").save(odd)
    tsv.write_text("id\timage\ttext\nA\todd\\name.png\ttom\n")
    assert [s.image for s in read_tsv(tsv)] == [odd]


def test_recognize_reports_an_empty_folder_and_an_unmatched_pattern_and_reads_the_rest(
    tmp_path: Path, tiny_ckpt: Path, lines: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    (tmp_path / "empty").mkdir()
    args = [str(lines[0]), str(tmp_path / "empty"), str(tmp_path / "nothing*.png"), str(lines[1])]
    code, out, err = cli(recognize.main, [*args, "--checkpoint", str(tiny_ckpt)], monkeypatch, capsys)
    assert code == 1 and len(out.splitlines()) == 2  # the two good lines, read
    assert err.splitlines() == [
        f"htr: {tmp_path / 'empty'}: the folder holds no images",
        f"htr: {tmp_path / 'nothing*.png'}: no file matches this pattern",
    ]
    code, out, _ = cli(recognize.main, [*args, "--checkpoint", str(tiny_ckpt), "--json"], monkeypatch, capsys)
    assert code == 1 and [("error" in json.loads(o), json.loads(o)["image"]) for o in out.splitlines()] == [
        (False, args[0]), (True, args[1]), (True, args[2]), (False, args[3])
    ]  # fmt: skip


def test_names_no_file_can_have_are_one_sentence(
    tmp_path: Path, tiny_ckpt: Path, lines: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    long = tmp_path / f"{LONG_NAME}.png"
    args = [str(long), str(lines[0]), "--checkpoint", str(tiny_ckpt)]
    code, out, err = cli(recognize.main, args, monkeypatch, capsys)
    assert code == 1 and len(out.splitlines()) == 1
    assert err == f"htr: {long}: image file cannot be read (File name too long)\n"
    tsv = tmp_path / "lines.tsv"
    tsv.write_text(f"id\timage\ttext\nA\t{lines[0].name}\ttom\nB\t{LONG_NAME}\\x.png\tada\n")
    args = [str(tiny_ckpt), str(tsv), "--split", "all", "--max-bad-fraction", "0.5"]
    code, out, err = cli(evaluate.main, args, monkeypatch, capsys)
    assert code == 0 and "lines 1" in out and "File name too long" in err and "Traceback" not in err, err
    tsv.write_text("id\timage\ttext\nA\ta\0b.png\ttom\n")
    with pytest.raises(DataError, match=r"line 2: image path 'a\\x00b.png' contains a NUL byte"):
        read_tsv(tsv)


def test_bad_utf8_after_a_bom_is_located_exactly(tmp_path: Path) -> None:
    tsv = tmp_path / "lines.tsv"
    tsv.write_bytes(b"\xef\xbb\xbfid\timage\ttext\nA\ta.png\tcaf\xe9\n")
    with pytest.raises(DataError, match=r"line 2: manifest is not valid UTF-8 \(byte 0xe9\)"):
        read_tsv(tsv)


def test_a_page_xml_naming_an_image_no_disk_can_hold_is_a_data_error(tmp_path: Path) -> None:
    from htr.data.formats.pagexml import parse_page_file

    xml = tmp_path / "p.xml"
    ns = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
    xml.write_text(f'<PcGts xmlns="{ns}"><Page imageFilename="{LONG_NAME}.png"/></PcGts>')
    with pytest.raises(DataError, match=f"page image '{LONG_NAME}.png' not found next to the XML"):
        parse_page_file(xml)
    xml.write_text(f'<PcGts xmlns="{ns}"><Page imageFilename="p.png"><TextLine id="l"><Coords points=""/>'
                   "</TextLine></Page></PcGts>")  # fmt: skip
    with pytest.raises(DataError, match="TextLine 'l': has no points"):
        parse_page_file(xml)
