"""`python -m htr.lm tune` picks LM settings on a validation split and stores them next to the LM."""

from __future__ import annotations

import json

from htr.decode.beam import resolve_config
from htr.decode.config import DecodeConfig
from htr.lm.ngram import build_lm
from htr.lm.tune import tune
from htr.train import train

from .conftest import TINY_MODEL, compose_config, write_tsv_dataset

WORDS = ["tom", "ada", "mix", "zoe", "bed", "cup", "hat", "jug"]


def test_tune_writes_best_setting_used_by_the_decoder(tmp_path):
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:4]})
    cfg = compose_config(["data=copiste", f"data.root={tsv}", f"train.out_dir={tmp_path / 'run'}",
                          "data.cache_dir=null", "train.progress=false", "train.max_steps=30",
                          "optim.lr=0.01", *TINY_MODEL])  # fmt: skip
    train(cfg)
    lm = tmp_path / "chars.arpa"
    build_lm(WORDS * 3, lm, unit="char", order=3)
    result = tune(tmp_path / "run" / "best.pt", tsv, lm, "val", weights=(0.0, 0.5), penalties=(0.0, 1.0),
                  say=lambda s: None)  # fmt: skip
    assert len(result["grid"]) == 3  # weight 0 needs no penalty grid
    best = result["best"]
    assert best["cer"] == min(r["cer"] for r in result["grid"])
    meta = json.loads((tmp_path / "chars.arpa.json").read_text())
    assert meta["lm_weight"] == best["lm_weight"] and meta["unit"] == "char"
    resolved, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=str(lm)))
    assert resolved.lm_weight == best["lm_weight"]
    assert resolved.word_insertion_penalty == best["word_insertion_penalty"]
