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
                  beam_thresholds=(0.001, 20.0, 8.0), say=lambda s: None)  # fmt: skip
    assert len(result["grid"]) == 3  # weight 0 needs no penalty grid
    assert {r["beam_threshold"] for r in result["grid"]} == {20.0}  # the grid runs at the widest beam
    grid_best = min(result["grid"], key=lambda r: (r["cer"], r["wer"]))
    tried = result["thresholds"]  # then narrower beams at the best weight and penalty
    assert [r["beam_threshold"] for r in tried] == [20.0, 8.0, 0.001] and tried[0] == grid_best
    assert all(r["lm_weight"] == grid_best["lm_weight"] for r in tried)
    best = result["best"]  # the narrowest beam that keeps the CER
    assert best["beam_threshold"] == min(r["beam_threshold"] for r in tried if r["cer"] <= grid_best["cer"])
    assert best["cer"] <= grid_best["cer"]
    meta = json.loads((tmp_path / "chars.arpa.json").read_text())
    assert meta["lm_weight"] == best["lm_weight"] and meta["unit"] == "char"
    assert meta["beam_threshold"] == best["beam_threshold"]
    resolved, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=str(lm)))
    assert resolved.lm_weight == best["lm_weight"]
    assert resolved.word_insertion_penalty == best["word_insertion_penalty"]
    assert resolved.beam_threshold == best["beam_threshold"]
    explicit, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=str(lm), beam_threshold=3.0))
    assert explicit.beam_threshold == 3.0
