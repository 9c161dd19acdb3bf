"""`python -m htr.lm tune` picks LM settings on a validation split and stores them next to the LM."""

from __future__ import annotations

import json

import pytest

from htr.decode import beam
from htr.decode.beam import resolve_config
from htr.decode.config import DecodeConfig
from htr.errors import DataError
from htr.lm.files import meta_path, update_meta
from htr.lm.ngram import build_lm
from htr.lm.tune import narrow, tune
from htr.train import train

from .conftest import TINY_MODEL, compose_config, write_tsv_dataset

WORDS = ["tom", "ada", "mix", "zoe", "bed", "cup", "hat", "jug"]


def test_tune_writes_best_setting_used_by_the_decoder(tmp_path, monkeypatch):
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:4]})
    cfg = compose_config(["data=copiste", f"data.root={tsv}", f"train.out_dir={tmp_path / 'run'}",
                          "data.cache_dir=null", "train.progress=false", "train.max_steps=30",
                          "optim.lr=0.01", *TINY_MODEL])  # fmt: skip
    train(cfg)
    lm = tmp_path / "chars.arpa"
    build_lm(WORDS * 3, lm, unit="char", order=3)
    assert resolve_config(DecodeConfig(name="beam_lm", lm_path=str(lm)))[0].beam_threshold == 20.0  # untuned
    # Values a previous tune stored must not replace the grid's values that equal the defaults.
    update_meta(lm, {"lm_weight": 1.3, "word_insertion_penalty": 5.0, "beam_threshold": 0.001})
    decoded_with = []

    class Spy(beam.BeamDecoder):
        def __init__(self, labels, **kw):
            decoded_with.append((kw["lm_weight"], kw["word_insertion_penalty"], kw["beam_threshold"]))
            super().__init__(labels, **kw)

    monkeypatch.setattr(beam, "BeamDecoder", Spy)
    result = tune(tmp_path / "run" / "best.pt", tsv, lm, "val", weights=(0.0, 0.5), penalties=(0.0, 1.0),
                  beam_thresholds=(0.001, 20.0, 8.0), say=lambda s: None)  # fmt: skip
    rows = result["grid"] + result["thresholds"][1:]
    assert decoded_with == [(r["lm_weight"], r["word_insertion_penalty"], r["beam_threshold"]) for r in rows]
    assert len(result["grid"]) == 3  # weight 0 needs no penalty grid
    assert {r["beam_threshold"] for r in result["grid"]} == {20.0}  # the grid runs at the widest beam
    grid_best = min(result["grid"], key=lambda r: (r["cer"], r["wer"]))
    assert result["thresholds"][0] == grid_best  # then narrower beams at the best weight and penalty
    assert all(r["lm_weight"] == grid_best["lm_weight"] for r in result["thresholds"])
    best = result["best"]
    meta = json.loads(meta_path(lm).read_text())
    assert meta["lm_weight"] == best["lm_weight"] and meta["unit"] == "char"
    assert meta["beam_threshold"] == best["beam_threshold"]
    resolved, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=str(lm)))
    assert resolved.lm_weight == best["lm_weight"]
    assert resolved.word_insertion_penalty == best["word_insertion_penalty"]
    assert resolved.beam_threshold == best["beam_threshold"]
    for explicit in (3.0, 20.0):  # a threshold given is kept, the default's value too
        eff, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=str(lm), beam_threshold=explicit))
        assert eff.beam_threshold == explicit
    unreadable = write_tsv_dataset(tmp_path / "bad", {"val": ["tom"]})
    (unreadable.parent / "lines" / "val000.png").write_bytes(b"")
    with pytest.raises(DataError, match="none of the 1 lines in split 'val' could be read"):
        tune(tmp_path / "run" / "best.pt", unreadable, lm, say=lambda s: None)


@pytest.mark.parametrize(
    ("cers", "kept", "tried"),
    [
        ({12.0: 0.10, 8.0: 0.12, 5.0: 0.10}, 12.0, [20.0, 12.0, 8.0]),  # stops at the first that loses
        ({12.0: 0.10, 8.0: 0.09, 5.0: 0.10}, 5.0, [20.0, 12.0, 8.0, 5.0]),  # ties and gains narrow on
        ({12.0: 0.11, 8.0: 0.10, 5.0: 0.10}, 20.0, [20.0, 12.0]),
    ],
)
def test_narrow_keeps_the_narrowest_beam_until_the_cer_rises(cers, kept, tried):
    wide = {"beam_threshold": 20.0, "cer": 0.10}
    best, rows = narrow(wide, [12.0, 8.0, 5.0], lambda t: {"beam_threshold": t, "cer": cers[t]})
    assert best["beam_threshold"] == kept and [r["beam_threshold"] for r in rows] == tried
