"""The decoders' building blocks against hand-worked answers and brute-force references: CTC likelihood,
Viterbi realignment, per-character confidences, space clean-up for word LMs, and the label <-> LM token map."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from htr.decode.backends.common import dedupe
from htr.decode.backends.flashlight import _single_spaces
from htr.decode.beam import ctc_log_likelihood, path_confidences, viterbi_path
from htr.tokens import LabelTokens, char_token, token_char, token_word, word_token, word_tokens

from .test_decode import torch_ctc_ll


def _collapse(path: tuple[int, ...] | list[int], blank: int = 0) -> list[int]:
    return [int(k) for i, k in enumerate(path) if k != blank and (i == 0 or path[i - 1] != k)]


def _random_log_probs(rng: np.random.Generator, t: int, c: int) -> np.ndarray:
    logits = rng.normal(0.0, 1.5, (t, c))
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)


def test_ctc_likelihood_of_the_empty_labeling_alone() -> None:
    lp = _random_log_probs(np.random.default_rng(3), 3, 3)
    # "" has one alignment: blank at every frame.
    assert ctc_log_likelihood(lp, [[]])[0] == pytest.approx(float(lp[:, 0].astype(np.float64).sum()), abs=1e-6)


def test_ctc_likelihood_of_an_impossible_labeling_is_minus_infinity_without_warnings() -> None:
    lp = np.log(np.tile([0.5, 0.4, 0.1], (2, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ll = ctc_log_likelihood(lp, [[1, 1], [1]])  # "aa" needs 3 frames (a, blank, a); T = 2
    assert ll[0] == -math.inf
    # "a" in 2 frames: a_, _a, aa -> 0.4*0.5 + 0.5*0.4 + 0.4*0.4 = 0.56
    assert ll[1] == pytest.approx(math.log(0.56))
    # Probabilities exactly 0 (log-prob -inf): frame 0 is surely blank, frame 1 surely "b"; "a" is impossible.
    lp = np.array([[0.0, -np.inf, -np.inf], [-np.inf, -np.inf, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ll = ctc_log_likelihood(lp, [[1], [2]])
    assert ll.tolist() == [-math.inf, 0.0]


def test_ctc_likelihood_of_long_lines_does_not_underflow() -> None:
    # 1000 frames with p(blank) = 0.1 below the best label's 0.8: P("") = 0.1^1000 underflows without rescaling.
    lp = np.log(np.tile([0.1, 0.8, 0.1], (1000, 1))).astype(np.float32)
    ll = ctc_log_likelihood(lp, [[], [2, 1]])
    assert ll[0] == pytest.approx(1000 * math.log(0.1), rel=1e-5)
    assert ll[1] == pytest.approx(torch_ctc_ll(lp, [2, 1]), rel=1e-4)


def test_ctc_likelihood_is_computed_in_double_precision() -> None:
    # exp(-110) is 0 in float32: a float32 computation would call a possible labeling impossible.
    lp = np.array([[0.0, -110.0]], dtype=np.float32)
    assert ctc_log_likelihood(lp, [[1]])[0] == pytest.approx(-110.0)


def test_path_confidences_by_hand() -> None:
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.5, 0.4], [0.9, 0.05, 0.05],
                  [0.3, 0.6, 0.1], [0.2, 0.2, 0.6], [0.1, 0.1, 0.8]])  # fmt: skip
    ids, confs = path_confidences(np.log(p), [0, 1, 1, 0, 1, 2, 2], blank=0)
    assert ids == [1, 1, 2] and all(type(i) is int for i in ids)
    # "a" from frames 1-2 (geometric mean of 0.7 and 0.5), "a" from frame 4, "b" from frames 5-6.
    assert confs == pytest.approx([math.sqrt(0.35), 0.6, math.sqrt(0.48)])
    assert path_confidences(np.log(p[:3]), [0, 2, 0], blank=0) == ([2], [pytest.approx(0.1)])
    assert path_confidences(np.log(p[:2]), [0, 0], blank=0) == ([], [])


@pytest.mark.parametrize("ids", [[1], [2], [1, 1], [1, 2], [2, 1, 2], [1, 1, 2], []])
def test_viterbi_path_is_the_most_probable_alignment(ids: list[int]) -> None:
    rng = np.random.default_rng(len(ids) * 7 + sum(ids))
    for t in (4, 6):
        lp = _random_log_probs(rng, t, 3)
        paths = [p for p in itertools.product(range(3), repeat=t) if _collapse(p) == ids]
        best = max(paths, key=lambda p: lp[np.arange(t), p].astype(np.float64).sum())
        got = viterbi_path(lp, ids, blank=0)
        assert _collapse(got.tolist()) == ids
        assert tuple(got.tolist()) == best


def test_viterbi_path_when_ending_on_a_label_wins() -> None:
    # The last frame is surely "b": the path must end on the label, not on a blank.
    lp = np.log(np.array([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.05, 0.05, 0.9]]))
    assert viterbi_path(lp, [1, 2], blank=0).tolist() == [1, 0, 2]
    assert viterbi_path(lp, [1, 2, 1, 2, 1], blank=0).tolist() == [0, 0, 0]  # infeasible: no crash


def test_single_spaces_for_word_lms() -> None:
    s, a, b = 3, 1, 2  # space, two letters; blank 0
    path = np.array([s, s, a, 0, s, 0, s, b, b, s, s])
    # leading spaces go, the first space between words stays, the repeat after a blank goes, trailing go.
    assert _single_spaces(path, s, 0).tolist() == [0, 0, a, 0, s, 0, 0, b, b, 0, 0]
    assert path[0] == s  # the input is not modified
    assert _single_spaces(np.array([a, s, s, 0, b]), s, 0).tolist() == [a, s, s, 0, b]
    assert _single_spaces(np.array([0, s, 0, s]), s, 0).tolist() == [0, 0, 0, 0]
    assert _single_spaces(np.array([a, 0, b]), s, 0).tolist() == [a, 0, b]


def test_dedupe_keeps_the_first_of_each_labeling() -> None:
    p1, p2, p3 = np.array([1]), np.array([1, 1]), np.array([2])
    out = dedupe([([1], p1), ([1], p2), ([2], p3), ([2], None)])
    assert [ids for ids, _ in out] == [[1], [2]]
    assert out[0][1] is p1 and out[1][1] is p3


def test_char_tokens_escape_what_an_arpa_file_cannot_hold() -> None:
    assert char_token("\x00") == "<U+0000>"  # not printable, not a space
    assert char_token("\u200b") == "<U+200B>"
    assert char_token("\u00a0") == "<U+00A0>"
    assert char_token("é") == "é"


def test_token_char_inverts_only_escapes() -> None:
    assert token_char("<U+00E9>") == "é"
    for token in ("abcde", "xyz41>", "<U+0041", "<U+>", "<U+zz>", "ch"):
        assert token_char(token) == token


def test_word_tokens() -> None:
    assert word_token("cat") == "cat"
    assert [word_token(w) for w in ("<s>", "</s>", "<unk>")] == ["<U+003C>s>", "<U+003C>/s>", "<U+003C>unk>"]
    for w in ("cat", "<s>", "<U+003C>cat"):
        assert token_word(word_token(w)) == w
    assert word_tokens("  the\tcat,  <s> ") == ["the", "cat,", "<U+003C>s>"]
    assert word_tokens("") == []


def test_label_tokens_of_odd_labels() -> None:
    lt = LabelTokens.from_labels(["<blank>", "ch", "a b", "", "x"])
    assert lt.tokens == ("<blank>", "ch", "a<U+0020>b", "<U+0020>", "x")
    assert (lt.blank, lt.space) == (0, None)
    assert lt.ids_of_tokens(["x", "ch"]) == [4, 1]
    # The blank is found by name; without one, label 0 is the blank.
    lt = LabelTokens.from_labels(["a", "<blank>", " "])
    assert (lt.blank, lt.space, lt.tokens) == (1, 2, ("a", "<blank>", "|"))
    assert lt.text([0, 1, 2, 0]) == "a a"
    assert lt.unseen({"|"}) == ["a"]
    lt = LabelTokens.from_labels(["-", "a", " "])
    assert (lt.blank, lt.space, lt.tokens) == (0, 2, ("<blank>", "a", "|"))
    assert lt.text([1, 0, 1]) == "aa"


def test_label_tokens_refuse_bad_label_sets() -> None:
    with pytest.raises(ValueError, match="no labels"):
        LabelTokens.from_labels([])
    with pytest.raises(ValueError, match="duplicate LM tokens"):
        LabelTokens.from_labels(["<blank>", "|", "<U+007C>"])  # "|" is escaped to the other label's spelling
