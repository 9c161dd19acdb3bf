"""Bonuses baked into an ARPA copy (htr/decode/backends/arpa_bonus.py): KenLM's scores move by exactly the bonus
per occurrence, and flashlight decodes with the baked model as it did with the Python wrapper."""

from __future__ import annotations

import kenlm
import numpy as np
import pytest

import htr.decode.backends.flashlight as fl_backend
from htr.decode.backends.arpa_bonus import arpa_with_bonuses
from htr.decode.beam import BeamDecoder, LMSpec
from htr.lm.ngram import build_lm
from htr.tokens import char_tokens

from .test_decode import CORPUS, LABELS


@pytest.fixture(scope="module")
def char_arpa(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("lm") / "char.arpa"
    build_lm(CORPUS, path, unit="char", order=4)
    return str(path)


@pytest.mark.parametrize("line", ["the cat sat", "a dog ate the old mat", "zebra", "tac eht"])
def test_a_baked_bonus_moves_each_score_by_the_bonus_per_occurrence(char_arpa: str, line: str) -> None:
    tokens = " ".join(char_tokens(line))
    bonus = {"|": -0.75, "t": -0.25, "e": 0.0}
    base = kenlm.Model(char_arpa)
    with arpa_with_bonuses(char_arpa, bonus) as baked:
        assert baked is not None
        moved = kenlm.Model(baked)
    want = base.score(tokens) + sum(bonus.get(t, 0.0) for t in tokens.split())
    assert moved.score(tokens) == pytest.approx(want, abs=1e-4)
    # word by word too: every context, every n-gram order (unseen words back off to shorter n-grams)
    for (a, *_), (b, *_), t in zip(base.full_scores(tokens), moved.full_scores(tokens), [*tokens.split(), "</s>"]):
        assert b - a == pytest.approx(bonus.get(t, 0.0), abs=1e-5)


def test_bonuses_are_not_baked_where_that_would_not_be_exact(char_arpa: str, tmp_path) -> None:  # noqa: ANN001
    with arpa_with_bonuses(char_arpa, {"<U+2603>": 1.0}) as baked:  # a word the model does not know (<unk>)
        assert baked is None
    (tmp_path / "lm.bin").write_bytes(b"mmap lm http://kheafield.com/code format version 5\0\0\0")
    with arpa_with_bonuses(str(tmp_path / "lm.bin"), {"|": 1.0}) as baked:
        assert baked is None
    with arpa_with_bonuses(char_arpa, {"|": 1.0}) as baked:  # a space after "the" would be likelier than certain
        assert baked is None
    with arpa_with_bonuses(char_arpa, {"|": 0.0}) as baked:  # nothing to add: still an exact copy
        assert baked is not None and kenlm.Model(baked).score("t h e") == kenlm.Model(char_arpa).score("t h e")


def test_the_baked_lm_decodes_as_the_python_wrapper_did(char_arpa: str, monkeypatch) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    emissions = [np.log(rng.dirichlet(np.full(len(LABELS), 0.3), size=30)).astype(np.float32) for _ in range(12)]
    settings = {"lm_weight": 0.7, "word_insertion_penalty": -1.5}  # a char bonus would reach "é", unknown to the LM

    def read() -> tuple[list[str], type]:
        dec = BeamDecoder(LABELS, backend="flashlight", lm=LMSpec(char_arpa, "char"), **settings)
        return [dec.decode(e).text for e in emissions], type(dec.backend._lm)

    baked, baked_type = read()
    monkeypatch.setattr(fl_backend, "BAKE_BONUSES", False)
    wrapped, wrapped_type = read()
    assert wrapped_type is fl_backend._BonusLM and baked_type is not fl_backend._BonusLM
    assert baked == wrapped
    assert any(" " in t for t in baked) and len(set(baked)) > 6  # not a degenerate comparison
