"""Which LM, lexicon and tuned values a decoding config resolves to (htr.decode.beam.resolve_config)."""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
from pathlib import Path

import pytest

from htr.decode import DecodeConfig, make_decoder
from htr.decode.beam import resolve_config
from htr.decode.config import UNTUNED_DEFAULTS
from htr.errors import HTRError
from htr.lm.files import read_meta, update_meta
from htr.lm.ngram import build_lm

CORPUS = ["the cat sat", "a cat ran", "the dog sat"]
LABELS = ["<blank>", " ", *"acdegnorst"]
NO_LM = "decode=beam_lm needs decode.lm_path=PATH (an ARPA file from python -m htr.lm build)"


@pytest.fixture()
def lm_dir(tmp_path: Path) -> Path:
    build_lm(CORPUS, tmp_path / "char.arpa", unit="char", order=3)
    build_lm(CORPUS, tmp_path / "word.arpa", unit="word", order=2)
    return tmp_path


def _drop_meta_keys(lm: Path, *keys: str) -> None:
    meta = {k: v for k, v in read_meta(lm).items() if k not in keys}
    update_meta(lm, meta, replace=True)


def test_plain_beam_ignores_the_lm_path(lm_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = DecodeConfig(name="beam", lm_path=str(lm_dir / "char.arpa"))
    update_meta(cfg.lm_path, {"beam_threshold": 5.0})  # nor its tuned values: the untuned defaults
    assert resolve_config(cfg) == (dataclasses.replace(cfg, **UNTUNED_DEFAULTS), None)
    with caplog.at_level(logging.INFO, logger="htr.decode.beam"):
        assert make_decoder(cfg, LABELS).lm is None
    assert "decode.name=beam ignores decode.lm_path; use beam_lm to decode with the LM" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="htr.decode.beam"):
        make_decoder(DecodeConfig(name="beam"), LABELS)
        assert make_decoder(DecodeConfig(name="beam_lm", lm_path=str(lm_dir / "char.arpa")), LABELS).lm is not None
    assert "ignores" not in caplog.text


def test_missing_files_are_named(lm_dir: Path) -> None:
    with pytest.raises(HTRError, match=re.escape(NO_LM)):
        resolve_config(DecodeConfig(name="beam_lm"))
    missing = lm_dir / "none.arpa"
    with pytest.raises(HTRError, match="language model file does not exist") as err:
        resolve_config(DecodeConfig(name="beam_lm", lm_path=str(missing)))
    assert err.value.path == str(missing)
    lexicon = lm_dir / "none.lexicon"
    with pytest.raises(HTRError, match="lexicon file does not exist") as err:
        resolve_config(DecodeConfig(name="beam_lm", lm_path=str(lm_dir / "word.arpa"), lexicon=str(lexicon)))
    assert err.value.path == str(lexicon)


def test_tuned_values_belong_to_their_backend(lm_dir: Path) -> None:
    lm = str(lm_dir / "char.arpa")
    update_meta(lm, {"lm_weight": 1.5, "backend": "pyctcdecode"})
    eff, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=lm, backend="flashlight"))
    assert (eff.backend, eff.lm_weight) == ("pyctcdecode", 1.5)  # "flashlight" is the default: the stored one wins
    update_meta(lm, {"backend": "flashlight"})
    eff, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=lm, backend="pyctcdecode"))
    assert (eff.backend, eff.lm_weight) == ("pyctcdecode", 0.5)  # tuned for another backend: not used
    _drop_meta_keys(lm_dir / "char.arpa", "backend")
    eff, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=lm, backend="pyctcdecode"))
    assert (eff.backend, eff.lm_weight) == ("pyctcdecode", 1.5)  # no backend stored: the values apply to any


def test_unit_and_lexicon(lm_dir: Path) -> None:
    char, word = lm_dir / "char.arpa", lm_dir / "word.arpa"
    _, spec = resolve_config(DecodeConfig(name="beam_lm", lm_path=str(char)))
    assert (spec.unit, spec.lexicon) == ("char", None)
    # A char LM keeps its unit even when a lexicon is given.
    _, spec = resolve_config(DecodeConfig(name="beam_lm", lm_path=str(char), lexicon=str(lm_dir / "word.arpa.lexicon")))
    assert (spec.unit, spec.lexicon) == ("char", None)
    # Without a stored unit, a lexicon next to the LM makes it a word LM, none a char LM.
    _drop_meta_keys(char, "unit")
    _drop_meta_keys(word, "unit", "lexicon")
    assert resolve_config(DecodeConfig(name="beam_lm", lm_path=str(char)))[1].unit == "char"
    _, spec = resolve_config(DecodeConfig(name="beam_lm", lm_path=str(word)))
    assert (spec.unit, spec.lexicon) == ("word", str(lm_dir / "word.arpa.lexicon"))
    # A lexicon elsewhere, given explicitly or named (relative to the LM) in PATH.json.
    other = lm_dir / "sub" / "words.txt"
    other.parent.mkdir()
    shutil.move(lm_dir / "word.arpa.lexicon", other)
    update_meta(word, {"unit": "word"})
    with pytest.raises(
        HTRError, match=r"word LM without a lexicon: expected .*word.arpa.lexicon or decode.lexicon"
    ) as err:
        resolve_config(DecodeConfig(name="beam_lm", lm_path=str(word)))
    assert err.value.path == str(word)
    _, spec = resolve_config(DecodeConfig(name="beam_lm", lm_path=str(word), lexicon=str(other)))
    assert (spec.unit, spec.lexicon) == ("word", str(other))
    update_meta(word, {"lexicon": "sub/words.txt"})
    assert resolve_config(DecodeConfig(name="beam_lm", lm_path=str(word)))[1].lexicon == str(other)
    update_meta(word, {"lexicon": "sub/gone.txt"})
    with pytest.raises(HTRError, match=r"lexicon named in .*word.arpa.json does not exist") as err:
        resolve_config(DecodeConfig(name="beam_lm", lm_path=str(word)))
    assert err.value.path == str(lm_dir / "sub" / "gone.txt")
    update_meta(char, {"unit": "phoneme"})
    with pytest.raises(HTRError, match=r"unknown LM unit 'phoneme' in .*char.arpa.json"):
        resolve_config(DecodeConfig(name="beam_lm", lm_path=str(char)))


@pytest.mark.parametrize("lm_path", [None, ""])
def test_beam_lm_without_an_lm_is_refused_naming_the_key(lm_path: str | None) -> None:
    with pytest.raises(HTRError) as e:
        make_decoder(DecodeConfig(name="beam_lm", lm_path=lm_path), LABELS)
    assert str(e.value) == NO_LM


def test_the_beam_lm_group_without_an_lm_stops_training_before_it_starts(tmp_path: Path) -> None:
    """``lm_path: ???`` in the group's YAML would be merged away into the schema's null: training must still
    refuse it (before reading data: the root here does not exist, which would otherwise be the error)."""
    from htr.train import train

    from .conftest import compose_config

    out = tmp_path / "run"
    cfg = compose_config(
        ["decode=beam_lm", "data=copiste", f"data.root={tmp_path / 'none.tsv'}", f"train.out_dir={out}"]
    )
    assert cfg.decode.lm_path is None
    with pytest.raises(HTRError) as e:
        train(cfg)
    assert str(e.value) == NO_LM
    assert not out.exists()
