"""End to end through the command line: train a few steps, evaluate, recognize; every config group composes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import editdistance
import pytest

from htr.lm.files import update_meta
from htr.lm.ngram import build_lm

from .conftest import REPO, TINY_MODEL, compose_config, write_tsv_dataset

CONF = REPO / "htr" / "conf"


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def test_train_evaluate_recognize(tmp_path):
    texts = ["one two", "three", "four five six", "seven"]
    tsv = write_tsv_dataset(tmp_path / "d", {"train": texts, "val": texts[:2], "test": texts[2:]})
    out = tmp_path / "run"
    _run("htr.train", "data=copiste", f"data.root={tsv}", f"train.out_dir={out}", f"hydra.run.dir={out}",
         "data.cache_dir=null", "train.max_steps=3", "train.progress=false", *TINY_MODEL)  # fmt: skip
    ckpt = out / "best.pt"
    assert ckpt.is_file() and (out / "last.pt").is_file()

    p = _run("htr.evaluate", str(ckpt), str(tsv), "--split", "test", "--json")
    result = json.loads(p.stdout)
    assert result["lines"] == 2 and result["chars"] == len("four five six") + len("seven")
    p = _run("htr.evaluate", str(ckpt), str(tsv), "--split", "test")
    assert p.stdout.startswith("CER ") and "lines 2" in p.stdout and "decoding" not in p.stderr  # greedy
    lm = tmp_path / "chars.arpa"  # with an LM, stderr says which settings the figures come from
    build_lm(texts * 2, lm, unit="char", order=3)
    update_meta(lm, {"lm_weight": 0.3, "beam_threshold": 7.0})
    p = _run("htr.evaluate", str(ckpt), str(tsv), "--split", "test", "--lm", str(lm), "--beam-threshold", "20")
    assert f"decoding: beam_lm (flashlight): beam 16, threshold 20, char LM {lm} at weight 0.3," in p.stderr
    p = _run("htr.evaluate", str(ckpt), str(tsv), "--split", "test", "--lm", str(lm), "--lm-weight", "0.5")
    assert f"threshold 7, char LM {lm} at weight 0.5," in p.stderr  # 0.5 given, the untuned default's value

    images = sorted((tmp_path / "d" / "lines").glob("test*.png"))
    p = _run("htr.recognize", *map(str, images), "--checkpoint", str(ckpt), "--json", "--chars")
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["image"] for r in rows] == [str(i) for i in images]
    for r in rows:
        assert set(r) == {"image", "text", "confidence", "chars"} and 0.0 <= r["confidence"] <= 1.0
        assert len(r["chars"]) == len(r["text"])
    p = _run("htr.recognize", str(tmp_path / "d" / "lines"), "--checkpoint", str(ckpt))
    assert len(p.stdout.splitlines()) == 8  # a folder expands to its images, one text line each
    # evaluate's CER is the edit distance of what recognize reads, counted here by another library
    refs = {"test000.png": "four five six", "test001.png": "seven"}
    errors = sum(editdistance.eval(refs[Path(r["image"]).name], r["text"]) for r in rows)
    assert result["cer"] == pytest.approx(errors / result["chars"])


def test_recognize_bad_inputs_are_one_sentence(tmp_path):
    p = _run("htr.recognize", str(tmp_path / "missing.png"), "--checkpoint", str(tmp_path / "none.pt"), check=False)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().startswith("htr: ") and len(p.stderr.strip().splitlines()) == 1


def _options(group: str) -> list[str]:
    return sorted(f.stem for f in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "override",
    [f"{g}={o}" for g in ("data", "model", "optim", "decode", "debug") for o in _options(g)]
    + [f"experiment={o}" for o in _options("experiment")],
)
def test_every_config_group_composes(override):
    extra = ["data.root=/x"] if override in ("data=iam", "data=folder") else []
    if override == "decode=beam_lm":
        extra.append("decode.lm_path=/x.arpa")
    cfg = compose_config([override, "train.out_dir=/tmp/x", *extra])
    from omegaconf import OmegaConf

    from htr.config import Config

    obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), cfg))
    assert obj.data.preprocess.height == obj.model.height


def test_typo_in_config_fails_at_start(tmp_path):
    with pytest.raises(Exception, match="max_epoch"):
        compose_config(["train.max_epoch=3", "train.out_dir=/tmp/x"])
    with pytest.raises(Exception, match="lr"):
        compose_config(["optim.lr=fast", "train.out_dir=/tmp/x"])


def test_conf_dir_is_visible_at_top_level():
    assert (REPO / "conf" / "config.yaml").is_file()
    assert Path(REPO / "conf").resolve() == CONF.resolve()


@pytest.mark.parametrize(("override", "expected"), [
    ("data=folder", "data=folder needs data.root=FOLDER, the folder whose train/ and val/"),
    ("data=iam", "data=iam needs data.root=FOLDER, the IAM folder"),
    ("data.root=", "data=synthetic needs data.root=PATH, a lines.tsv"),
])  # fmt: skip
def test_a_data_group_without_its_root_says_to_set_it(override, expected):
    from htr.config import Config, structured
    from htr.data.sources import load_split
    from htr.errors import HTRError

    cfg = structured(Config, compose_config([override, "train.out_dir=/tmp/x"]))
    with pytest.raises(HTRError, match=re.escape(expected)):
        load_split(cfg.data, "train")


def test_train_data_folder_without_root_is_one_sentence(tmp_path):
    p = _run("htr.train", "data=folder", f"hydra.run.dir={tmp_path}", check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [
        "htr: data=folder needs data.root=FOLDER, the folder whose train/ and val/ sub-folders hold image + .gt.txt "
        "pairs"
    ]


def test_train_with_beam_lm_and_no_lm_path_says_which_key_to_set(tmp_path):
    out = tmp_path / "run"
    missing = tmp_path / "none.tsv"  # would be the error if the decode config were not checked first
    p = _run("htr.train", "decode=beam_lm", "data=copiste", f"data.root={missing}", f"train.out_dir={out}",
             f"hydra.run.dir={out}", check=False)  # fmt: skip
    assert p.returncode == 2
    assert p.stderr.strip() == (
        "htr: decode=beam_lm needs decode.lm_path=PATH (an ARPA file from python -m htr.lm build)"
    )
