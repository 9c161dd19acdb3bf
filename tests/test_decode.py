"""Beam search (flashlight-text and pyctcdecode backends), with and without n-gram LMs."""

from __future__ import annotations

import gc
import itertools
import math

import kenlm
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from pyctcdecode.decoder import BeamSearchDecoderCTC

from htr.charset import Charset
from htr.decode import DecodeConfig, GreedyDecoder, make_decoder
from htr.decode.backends import FlashlightBackend, PyctcdecodeBackend
from htr.decode.beam import BeamDecoder, LMSpec, ctc_log_likelihood, resolve_config
from htr.errors import HTRError
from htr.lm.files import update_meta
from htr.lm.ngram import build_lm
from htr.tokens import LabelTokens, char_token, char_tokens, token_char, token_word, word_token, word_tokens

BACKENDS = ["flashlight", "pyctcdecode"]
LABELS = Charset(list(" abcdefghijklmnopqrstuvwxyz.é")).labels  # "é" never occurs in the LM text below
CORPUS = [
    "the cat sat on the mat", "my cat is a good cat", "the cat and the dog", "a cat ran to the cat",
    "the dog sat", "a good dog", "the cot is old", "she has a cat", "his cat ate the rat",
]  # fmt: skip


def torch_ctc_ll(log_probs: np.ndarray, ids: list[int]) -> float:
    """log P(ids | x) with torch's CTC loss (the reference)."""
    x = torch.from_numpy(log_probs.astype(np.float32)).unsqueeze(1)
    loss = torch.nn.functional.ctc_loss(
        x, torch.tensor([ids], dtype=torch.long), torch.tensor([len(log_probs)]), torch.tensor([len(ids)]),
        blank=0, reduction="sum",
    )  # fmt: skip
    return -float(loss)


def spell(frames: list[dict[str, float]], labels: list[str] = LABELS) -> np.ndarray:
    """Log-probs with one frame per dict (unlisted mass goes to the blank, 1e-4 floor for the rest)."""
    index = {c: i for i, c in enumerate(labels)}
    p = np.full((len(frames), len(labels)), 1e-4)
    for t, f in enumerate(frames):
        for c, q in f.items():
            p[t, index[c]] = q
        p[t, 0] = max(1.0 - sum(f.values()), 1e-4)
    return np.log(p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def text_frames(text: str | list, p: float = 0.95) -> list[dict[str, float]]:
    """A frame per character with probability ``p`` (or a dict of alternatives), each followed by a blank."""
    return [f for c in text for f in ({c: p} if isinstance(c, str) else c, {})]


@pytest.fixture(scope="module")
def lms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LMSpec]:
    d = tmp_path_factory.mktemp("lm")
    build_lm(CORPUS, d / "char.arpa", unit="char", order=4)
    build_lm(CORPUS, d / "word.arpa", unit="word", order=2)
    return {
        "char": LMSpec(str(d / "char.arpa"), "char"),
        "word": LMSpec(str(d / "word.arpa"), "word", str(d / "word.arpa.lexicon")),
    }


# Labels blank, a, b; every frame p(blank) = 0.5, p(a) = 0.4, p(b) = 0.1; T = 4.
# Greedy: blank at every frame -> "" with P("") = 0.5^4 = 0.0625.
# P("a") = sum over one run of k a's among blanks: k=1: 4 * 0.4 * 0.5^3 = 0.2; k=2: 3 * 0.4^2 * 0.5^2 = 0.12;
#          k=3: 2 * 0.4^3 * 0.5 = 0.064; k=4: 0.4^4 = 0.0256 -> 0.4096.
# P("aa") = a_a_, a__a, _a_a: 3 * 0.4^2 * 0.5^2 = 0.12, + aa_a, a_aa: 2 * 0.4^3 * 0.5 = 0.064 -> 0.184.
# All other labelings share 1 - 0.4096 - 0.0625 - 0.184 = 0.3439 < 0.4096, so "a" is the most probable one.
CLASSIC = np.log(np.tile([0.5, 0.4, 0.1], (4, 1))).astype(np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_beam_beats_best_path_on_the_classic_example(backend: str) -> None:
    labels = ["<blank>", "a", "b"]
    assert GreedyDecoder(labels).decode(CLASSIC).text == ""
    hyp = BeamDecoder(labels, backend=backend).decode(CLASSIC)
    assert hyp.text == "a"
    assert np.exp(ctc_log_likelihood(CLASSIC, [[1], [], [1, 1]])) == pytest.approx([0.4096, 0.0625, 0.184])
    assert np.exp(torch_ctc_ll(CLASSIC, [1])) == pytest.approx(0.4096, rel=1e-5)
    # The one character's confidence is its frame's posterior, 0.4, and the line's is the mean over characters.
    assert hyp.char_confidences == [pytest.approx(0.4, rel=1e-5)]
    assert hyp.confidence == pytest.approx(0.4, rel=1e-5)


def _best_labeling(lp: np.ndarray) -> tuple[tuple[int, ...], float]:
    """Exhaustive search over all C^T paths."""
    totals: dict[tuple[int, ...], float] = {}
    p = np.exp(lp.astype(np.float64))
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        lab = tuple(k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k))
        totals[lab] = totals.get(lab, 0.0) + float(np.prod(p[np.arange(len(path)), path]))
    best = max(totals, key=totals.__getitem__)
    return best, totals[best]


@pytest.mark.parametrize("backend", BACKENDS)
def test_beam_finds_the_most_probable_labeling_on_tiny_matrices(backend: str) -> None:
    rng = np.random.default_rng(1)
    labels = ["<blank>", "a", "b", "c"]
    dec = BeamDecoder(labels, backend=backend)
    for _ in range(12):
        logits = rng.normal(0.0, 1.5, (5, 4))
        lp = (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
        best, p_best = _best_labeling(lp)
        hyp = dec.decode(lp)
        ids = [labels.index(c) for c in hyp.text]
        assert np.exp(torch_ctc_ll(lp, ids)) == pytest.approx(p_best, rel=1e-4), (hyp.text, best)


@pytest.mark.parametrize("backend", BACKENDS)
def test_beam_without_lm_is_never_worse_than_greedy(backend: str) -> None:
    rng = np.random.default_rng(0)
    for trial in range(25):
        t, c = int(rng.integers(5, 40)), int(rng.integers(3, 9))
        labels = ["<blank>", *"abcdefgh"[: c - 1]]
        logits = rng.normal(0.0, 2.0, (t, c))
        logits[:, 0] += rng.uniform(0, 2)
        lp = (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
        greedy = [labels.index(ch) for ch in GreedyDecoder(labels).decode(lp).text]
        beam = [labels.index(ch) for ch in BeamDecoder(labels, backend=backend, beam_size=8).decode(lp).text]
        assert torch_ctc_ll(lp, beam) >= torch_ctc_ll(lp, greedy) - 1e-4, trial
        assert ctc_log_likelihood(lp, [beam])[0] == pytest.approx(torch_ctc_ll(lp, beam), abs=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("unit", ["char", "word"])
def test_lm_moves_an_ambiguous_word_towards_the_lm(backend: str, unit: str, lms: dict[str, LMSpec]) -> None:
    # "the c?t sat": the optical model slightly prefers "o" (0.5 vs 0.4); the LM text has "cat" 9 times,
    # "cot" once.
    lp = spell(text_frames(["t", "h", "e", " ", "c", {"o": 0.5, "a": 0.4}, "t", " ", "s", "a", "t"]))
    assert GreedyDecoder(LABELS).decode(lp).text == "the cot sat"
    assert BeamDecoder(LABELS, backend=backend).decode(lp).text == "the cot sat"
    assert BeamDecoder(LABELS, backend=backend, lm=lms[unit]).decode(lp).text == "the cat sat"


@pytest.mark.parametrize(
    ("backend", "unit"), [("flashlight", "char"), ("pyctcdecode", "char"), ("pyctcdecode", "word")]
)
def test_characters_the_lm_never_saw_survive(backend: str, unit: str, lms: dict[str, LMSpec]) -> None:
    # (pyctcdecode adds -10 (log10) * lm_weight to unknown words: clear optical evidence needed, 0.999 here)
    lp = spell(text_frames("the café sat", p=0.999))
    dec = BeamDecoder(LABELS, backend=backend, lm=lms[unit])
    assert {"f", "é"} <= set(dec.tokens.unseen({char_token(c) for line in CORPUS for c in line}))
    hyp = dec.decode(lp)
    assert hyp.text == "the café sat"
    assert len(hyp.char_confidences) == len(hyp.text)


def test_flashlight_word_lm_is_closed_vocabulary(lms: dict[str, LMSpec]) -> None:
    # flashlight's LexiconDecoder can only spell lexicon words (documented limitation).
    hyp = BeamDecoder(LABELS, backend="flashlight", lm=lms["word"]).decode(spell(text_frames("the cat sat")))
    assert hyp.text == "the cat sat"
    out = BeamDecoder(LABELS, backend="flashlight", lm=lms["word"]).decode(spell(text_frames("the café sat"))).text
    assert all(w in {w for line in CORPUS for w in line.split()} for w in out.split())


@pytest.mark.parametrize("backend", BACKENDS)
def test_bonuses_and_empty_input(backend: str, lms: dict[str, LMSpec]) -> None:
    lp = spell(text_frames("the cat sat"))
    dec = BeamDecoder(LABELS, backend=backend, lm=lms["char"], char_bonus=0.5, word_insertion_penalty=0.5)
    assert dec.decode(lp).text == "the cat sat"
    empty = dec.decode_batch([np.zeros((0, len(LABELS)), np.float32), lp])
    assert [h.text for h in empty] == ["", "the cat sat"]
    # A line the beam decodes like greedy gets greedy's confidence (same definition).
    assert BeamDecoder(LABELS, backend=backend).decode(lp).confidence == pytest.approx(
        GreedyDecoder(LABELS).decode(lp).confidence, rel=1e-5
    )


def test_tuned_values_next_to_the_lm(lms: dict[str, LMSpec]) -> None:
    update_meta(lms["char"].path, {"lm_weight": 1.5, "char_bonus": 0.25, "backend": "pyctcdecode"})
    try:
        eff, lm = resolve_config(DecodeConfig(name="beam_lm", lm_path=lms["char"].path))
        assert (eff.lm_weight, eff.char_bonus, eff.backend, lm.unit) == (1.5, 0.25, "pyctcdecode", "char")
        eff, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=lms["char"].path, lm_weight=0.8))
        assert (eff.lm_weight, eff.char_bonus) == (0.8, 0.25)  # explicit values win
        # ... the untuned defaults' values too: 0.5 and 0 given are 0.5 and 0, not the tuned 1.5 and 0.25
        eff, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=lms["char"].path, lm_weight=0.5, char_bonus=0))
        assert (eff.lm_weight, eff.char_bonus) == (0.5, 0.0)
        eff, _ = resolve_config(DecodeConfig(name="beam_lm", lm_path=lms["char"].path, backend="pyctcdecode"))
        assert eff.lm_weight == 1.5
    finally:
        update_meta(lms["char"].path, {"lm_weight": 0.5, "char_bonus": 0.0, "backend": "flashlight"})
    eff, lm = resolve_config(DecodeConfig(name="beam_lm", lm_path=lms["word"].path))
    assert lm.unit == "word" and lm.lexicon.endswith("word.arpa.lexicon")
    cfg = OmegaConf.structured(DecodeConfig(name="beam_lm", lm_path=lms["word"].path))  # as Hydra passes it
    assert make_decoder(cfg, LABELS).decode(spell(text_frames("the cat sat"))).text == "the cat sat"
    with pytest.raises(HTRError):
        make_decoder(DecodeConfig(name="beam_lm"), LABELS)
    with pytest.raises(HTRError):
        make_decoder(DecodeConfig(name="beam", backend="nope"), LABELS)


def test_token_mapping() -> None:
    assert [char_token(c) for c in " a|\u2581\t"] == ["|", "a", "<U+007C>", "<U+2581>", "<U+0009>"]
    assert "".join(token_char(char_token(c)) for c in " a|\u2581\t") == " a|\u2581\t"
    assert token_word(word_token("<s>")) == "<s>" and word_token("<s>") != "<s>"
    lt = LabelTokens.from_labels(["<blank>", " ", "|", "a"])
    assert (lt.tokens, lt.space, lt.blank) == (("<blank>", "|", "<U+007C>", "a"), 1, 0)
    assert lt.text([3, 0, 1, 2]) == "a |"
    assert lt.unseen({"|", "a"}) == ["|"]


def test_decoder_arguments_are_checked() -> None:
    labels = ["<blank>", "a", "b"]
    assert isinstance(BeamDecoder(labels).backend, FlashlightBackend)  # the default backend
    assert isinstance(BeamDecoder(labels, backend="pyctcdecode").backend, PyctcdecodeBackend)
    with pytest.raises(HTRError, match="unknown decoder backend 'nope'; expected one of flashlight, pyctcdecode"):
        BeamDecoder(labels, backend="nope")
    with pytest.raises(HTRError, match="beam_size must be at least 1, not 0"):
        BeamDecoder(labels, beam_size=0)
    assert BeamDecoder(labels, beam_size=1).decode(CLASSIC).text == ""  # one beam: no better than greedy here
    with pytest.raises(ValueError, match=r"expected log-probs of shape \(T, 3\), got \(4, 4\)"):
        BeamDecoder(labels).decode(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"shape \(T, 3\)"):
        BeamDecoder(labels).decode(np.zeros(3, np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_double_precision_and_empty_lines(backend: str) -> None:
    labels = ["<blank>", "a", "b"]
    dec = BeamDecoder(labels, backend=backend)
    assert dec.decode(CLASSIC.astype(np.float64)).text == "a"
    none = dec.decode(np.zeros((0, 3), np.float32))
    assert (none.text, none.confidence, none.char_confidences) == ("", 0.0, [])
    # A line of blanks only (regression: the pyctcdecode path crashed realigning an empty reading).
    blanks = dec.decode(np.log(np.tile([0.9, 0.05, 0.05], (5, 1))).astype(np.float32))
    assert (blanks.text, blanks.confidence, blanks.char_confidences) == ("", 0.0, [])


def test_beam_settings_reach_the_decoder() -> None:
    labels = ["<blank>", "a", "b"]
    assert isinstance(make_decoder(DecodeConfig(), labels), GreedyDecoder)
    assert make_decoder(DecodeConfig(name="greedy"), labels).decode(CLASSIC).text == ""
    assert make_decoder(DecodeConfig(name="greedy"), labels).decode(np.log([[0.1, 0.2, 0.7]])).text == "b"
    assert make_decoder(DecodeConfig(name="beam"), labels).decode(CLASSIC).text == "a"
    # A beam of one, or a threshold that keeps only each frame's best label, misses "a" (greedy's "" wins).
    assert make_decoder(DecodeConfig(name="beam", beam_size=1), labels).decode(CLASSIC).text == ""
    assert make_decoder(DecodeConfig(name="beam", beam_threshold=0.0), labels).decode(CLASSIC).text == ""
    with pytest.raises(HTRError, match="unknown decoder 'nope'; expected greedy, beam or beam_lm"):
        make_decoder(DecodeConfig(name="nope"), labels)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("unit", "char_bonus"), [("char", 0.0), ("char", 1e-9), ("word", 0.0)])
def test_lm_weight_scales_natural_log_probabilities(
    backend: str, unit: str, char_bonus: float, lms: dict[str, LMSpec]
) -> None:
    # "the c?t" with p(o) = 0.5, p(a) = 0.4: the LM's choice wins once lm_weight * (ln P_lm(cat) - ln P_lm(cot))
    # exceeds ln(0.5 / 0.4). The LM's side comes from KenLM directly (log10 scores, whole line with </s>).
    model = kenlm.Model(lms[unit].path)
    to_tokens = char_tokens if unit == "char" else word_tokens
    ln_p = {w: model.score(" ".join(to_tokens(w)), bos=True, eos=True) * math.log(10) for w in ("the cat", "the cot")}
    flip = math.log(0.5 / 0.4) / (ln_p["the cat"] - ln_p["the cot"])
    lp = spell(text_frames(["t", "h", "e", " ", "c", {"o": 0.5, "a": 0.4}, "t"]))
    for factor, text in ((0.8, "the cot"), (1.25, "the cat")):
        cfg = DecodeConfig(
            name="beam_lm", backend=backend, lm_path=lms[unit].path, lm_weight=factor * flip, char_bonus=char_bonus
        )
        assert make_decoder(cfg, LABELS).decode(lp).text == text, factor


@pytest.mark.parametrize("backend", BACKENDS)
def test_bonuses_are_per_character_and_per_space(backend: str, lms: dict[str, LMSpec]) -> None:
    lp = spell(text_frames("the cat sat"))

    def read(**bonus: float) -> str:
        cfg = DecodeConfig(name="beam_lm", backend=backend, lm_path=lms["char"].path, **bonus)
        return make_decoder(cfg, LABELS).decode(lp).text

    # Each character costs 30 nats, far more than its optical evidence (ln 0.95/0.05 ~ 3); spaces cost nothing.
    assert read(char_bonus=-30.0) == "  "
    # Each space costs 30 nats: the words run together.
    assert " " not in read(word_insertion_penalty=-30.0)
    assert read(char_bonus=5.0, word_insertion_penalty=5.0) == "the cat sat"
    if backend == "pyctcdecode":  # with a word LM, the penalty is added per word (pyctcdecode's beta)
        word = DecodeConfig(name="beam_lm", backend=backend, lm_path=lms["word"].path, word_insertion_penalty=-30.0)
        assert make_decoder(word, LABELS).decode(lp).text == "thecatsat"


@pytest.mark.parametrize("backend", BACKENDS)
def test_lm_files_kenlm_cannot_load(backend: str, tmp_path) -> None:  # noqa: ANN001
    build_lm(CORPUS, tmp_path / "o7.arpa", unit="char", order=7)
    with pytest.raises(HTRError, match=r"o7.arpa: this is a 7-gram model but this KenLM build loads at most 6-grams"):
        BeamDecoder(LABELS, backend=backend, lm=LMSpec(str(tmp_path / "o7.arpa")))
    with pytest.raises(HTRError, match=r"--order 6`$"):
        BeamDecoder(LABELS, backend=backend, lm=LMSpec(str(tmp_path / "o7.arpa")))
    (tmp_path / "bad.arpa").write_text("garbage\n")
    with pytest.raises(HTRError) as err:
        BeamDecoder(LABELS, backend=backend, lm=LMSpec(str(tmp_path / "bad.arpa")))
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'bad.arpa'}: KenLM cannot load this language model (")
    assert "FormatLoadException" in msg and "\n" not in msg  # the first line of KenLM's own message


def test_word_lms_need_a_space_label(lms: dict[str, LMSpec]) -> None:
    labels = [lab for lab in LABELS if lab != " "]
    for backend in BACKENDS:
        with pytest.raises(HTRError, match="a word LM needs a model whose labels include the space"):
            BeamDecoder(labels, backend=backend, lm=lms["word"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_word_lm_output_has_single_spaces(backend: str, lms: dict[str, LMSpec]) -> None:
    dec = BeamDecoder(LABELS, backend=backend, lm=lms["word"])
    assert dec.decode(spell(text_frames(" the cat  sat "))).text == "the cat sat"
    assert dec.decode(spell(text_frames(["t", "h", "e", " ", " ", "c", "a", "t"]))).text == "the cat"


def test_flashlight_lexicon_keeps_only_spellable_words(lms: dict[str, LMSpec]) -> None:
    no_o = [lab for lab in LABELS if lab != "o"]  # "dog", "cot", "on", ... cannot be spelled
    assert BeamDecoder(no_o, lm=lms["word"]).decode(spell(text_frames("the cat sat"), no_o)).text == "the cat sat"
    with pytest.raises(HTRError, match="word.arpa.lexicon: no lexicon word can be spelled with the model's labels"):
        BeamDecoder(["<blank>", " ", "x"], lm=lms["word"])


def test_pyctcdecode_decoders_release_their_lm(lms: dict[str, LMSpec]) -> None:
    # pyctcdecode keeps every decoder's LM in a class-level registry until cleanup(): no leak per decoder.
    before = len(BeamSearchDecoderCTC.model_container)
    dec = BeamDecoder(LABELS, backend="pyctcdecode", lm=lms["word"])
    assert len(BeamSearchDecoderCTC.model_container) == before + 1
    del dec
    gc.collect()
    assert len(BeamSearchDecoderCTC.model_container) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_rare_labels_are_still_tried(backend: str) -> None:
    # p(a) = e^-6 at each of 600 frames: P("a") ~ 600 e^-6 (1 - e^-6)^599 = 0.34 > P("") = (1 - e^-6)^600 = 0.23,
    # so "a" must win although "a" is never a frame's best label (pyctcdecode tries labels down to e^-8).
    lp = np.log(np.tile([1 - math.exp(-6), math.exp(-6)], (600, 1))).astype(np.float32)
    assert BeamDecoder(["<blank>", "a"], backend=backend).decode(lp).text == "a"
    # A beam of one, or no pruning margin, finds only greedy's "" on the classic example.
    assert BeamDecoder(["<blank>", "a", "b"], backend=backend, beam_size=1).decode(CLASSIC).text == ""
    assert BeamDecoder(["<blank>", "a", "b"], backend=backend, beam_threshold=0.0).decode(CLASSIC).text == ""


def test_greedy_reading_is_a_candidate_when_the_beam_misses_it() -> None:
    # Greedy reads "ab" (best label per frame: blank, blank, a, b, b); a 2-wide pyctcdecode beam ends with "b"
    # and "ba", both less probable than "ab" (exact CTC probabilities from torch).
    p = [[0.805, 0.089, 0.106], [0.398, 0.262, 0.34], [0.067, 0.599, 0.334], [0.152, 0.029, 0.819],
         [0.034, 0.464, 0.502]]  # fmt: skip
    lp = np.log(np.array(p)).astype(np.float32)
    assert torch_ctc_ll(lp, [1, 2]) > max(torch_ctc_ll(lp, [2]), torch_ctc_ll(lp, [2, 1]))
    assert BeamDecoder(["<blank>", "a", "b"], backend="pyctcdecode", beam_size=2).decode(lp).text == "ab"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("order", [(1, 0, 2), (1, 2, 0)])
def test_the_blank_may_be_any_label(backend: str, order: tuple[int, int, int]) -> None:
    # The example above with the labels (and their columns) reordered, the blank no longer first: the same
    # reading, greedy's candidate included (a 2-wide beam alone misses "ab"). A greedy candidate that took
    # label 0 for the blank read "b".
    p = [[0.805, 0.089, 0.106], [0.398, 0.262, 0.34], [0.067, 0.599, 0.334], [0.152, 0.029, 0.819],
         [0.034, 0.464, 0.502]]  # fmt: skip
    lp = np.log(np.array(p)).astype(np.float32)
    labels = [["<blank>", "a", "b"][i] for i in order]
    first = BeamDecoder(["<blank>", "a", "b"], backend=backend, beam_size=2).decode(lp)
    moved = BeamDecoder(labels, backend=backend, beam_size=2).decode(lp[:, list(order)])
    assert moved.text == first.text == "ab"
    assert moved.char_confidences == pytest.approx(first.char_confidences)


@pytest.mark.parametrize("backend", BACKENDS)
def test_char_bonus_is_added_once_per_character(backend: str, lms: dict[str, LMSpec]) -> None:
    # One frame is "s" or blank at 0.5 each: "the cats" and "the cat" have the same optical score, so "s" is read
    # once char_bonus exceeds -lm_weight * (ln P_lm(the cats) - ln P_lm(the cat)) (KenLM, natural log).
    model = kenlm.Model(lms["char"].path)
    ln_p = {
        w: model.score(" ".join(char_tokens(w)), bos=True, eos=True) * math.log(10) for w in ("the cat", "the cats")
    }
    flip = -0.5 * (ln_p["the cats"] - ln_p["the cat"])
    lp = spell(text_frames(["t", "h", "e", " ", "c", "a", "t", {"s": 0.5}]))
    for delta, text in ((-0.5, "the cat"), (0.5, "the cats")):
        dec = BeamDecoder(LABELS, backend=backend, lm=lms["char"], lm_weight=0.5, char_bonus=flip + delta)
        assert dec.decode(lp).text == text, delta
