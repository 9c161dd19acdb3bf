"""The model bundle (htr.bundle): one reader and writer of what checkpoints and ONNX files say about the model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from htr.bundle import ModelBundle
from htr.checkpoint import load_checkpoint, save_checkpoint
from htr.errors import CheckpointError, HTRError
from htr.inference import DEFAULT_MODEL, DEFAULT_ONNX, load_model
from htr.onnx_file import checked_bytes
from tests.conftest import write_tsv_dataset
from tests.test_robustness import tiny_train

WORDS = ["abc", "bca", "cab", "acb"]


def test_the_shipped_files_hold_the_same_model_description() -> None:
    pt = ModelBundle.from_checkpoint(load_checkpoint(DEFAULT_MODEL), DEFAULT_MODEL)
    onnx = ModelBundle.from_onnx_metadata(checked_bytes(DEFAULT_ONNX, DEFAULT_ONNX)[1], DEFAULT_ONNX)
    assert (onnx.charset.chars, onnx.model, onnx.preprocess) == (pt.charset.chars, pt.model, pt.preprocess)
    assert pt.input_height == pt.preprocess.height == 48
    assert onnx.weights_sha256 == pt.weights_sha256 is not None  # the export names the weights it came from


def test_a_bundle_reads_back_what_it_writes() -> None:
    pt = ModelBundle.from_checkpoint(load_checkpoint(DEFAULT_MODEL), DEFAULT_MODEL)
    again = ModelBundle.from_checkpoint({**pt.checkpoint_entries(), "model": {}}, "x.pt")
    assert (again.charset.chars, again.model, again.preprocess, again.config) == (
        pt.charset.chars, pt.model, pt.preprocess, pt.config,
    )  # fmt: skip
    onnx = ModelBundle.from_onnx_metadata(pt.onnx_metadata(source_sha256="ab"), "x.onnx")
    assert (onnx.charset.chars, onnx.model, onnx.preprocess) == (pt.charset.chars, pt.model, pt.preprocess)
    assert onnx.provenance["source_sha256"] == "ab"


def test_a_checkpoint_whose_heights_disagree_is_refused(tmp_path: Path) -> None:
    ckpt = load_checkpoint(DEFAULT_MODEL)
    ckpt["preprocess"] = {**ckpt["preprocess"], "height": 40}
    path = tmp_path / "edited.pt"
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k not in ("format", "htr_version")})
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: its preprocessing height 40 differs from "
                       r"its model's input height 48"):  # fmt: skip
        load_model(path, backend="torch")


def test_a_checkpoint_without_a_charset_is_one_clear_error(tmp_path: Path) -> None:
    ckpt = load_checkpoint(DEFAULT_MODEL)
    del ckpt["charset"]
    with pytest.raises(CheckpointError, match=r"^m\.pt: the checkpoint lacks the model settings \('charset'\)"):
        ModelBundle.from_checkpoint(ckpt, "m.pt")
    with pytest.raises(CheckpointError, match=r"^m\.pt: the checkpoint has no charset"):
        ModelBundle.charset_of(ckpt, "m.pt")


def test_training_refuses_a_preprocessing_height_other_than_the_models(tmp_path: Path) -> None:
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    with pytest.raises(HTRError, match=r"data\.preprocess\.height=40 differs from model\.height=32"):
        tiny_train(tsv, tmp_path / "run", ["data.preprocess.height=40"])


def test_the_bundle_needs_no_torch() -> None:
    code = "import sys, htr.bundle; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
