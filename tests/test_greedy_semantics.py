"""Best-path decoding and error rates pinned to answers worked out by hand (not by the code under test)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from htr.decode import GreedyDecoder
from htr.metrics import error_rates, score_line

LABELS = ["<blank>", "a", "b", " "]  # index 0 is CTC's blank


def path_log_probs(path: list[int], p: float = 0.7) -> np.ndarray:
    """(T, C) log-probabilities whose argmax at frame t is ``path[t]`` with probability ``p``."""
    lp = np.full((len(path), len(LABELS)), (1 - p) / (len(LABELS) - 1))
    lp[np.arange(len(path)), path] = p
    return np.log(lp)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ([1, 1, 0, 1], "aa"),  # a blank between repeats keeps both
        ([1, 1, 1], "a"),  # repeats without a blank merge
        ([0, 1, 0], "a"),  # blanks at both ends vanish
        ([1, 2, 1], "aba"),  # different neighbours are all kept
        ([0, 0, 0], ""),  # all blank: nothing
        ([1, 3, 3, 2], "a b"),  # the space is a label like any other, and its repeats merge too
        ([2, 0, 0, 2, 2, 0, 1], "bba"),
    ],
)
def test_greedy_merges_repeats_then_drops_blanks(path: list[int], text: str) -> None:
    assert GreedyDecoder(LABELS).decode(path_log_probs(path)).text == text


def test_greedy_confidences_by_hand() -> None:
    lp = path_log_probs([1, 1, 0, 2])
    lp[1, :] = np.log([0.1, 0.5, 0.2, 0.2])  # the second 'a' frame is less sure
    hyp = GreedyDecoder(LABELS).decode(lp)
    assert hyp.text == "ab"
    # 'a' was emitted by frames 0 and 1: exp(mean(log 0.7, log 0.5)) = sqrt(0.35); 'b' by frame 3: 0.7.
    assert hyp.char_confidences == pytest.approx([math.sqrt(0.35), 0.7])
    # The line: the mean of its characters' confidences.
    assert hyp.confidence == pytest.approx((math.sqrt(0.35) + 0.7) / 2)


def test_an_empty_reading_has_confidence_zero_however_sure_the_blanks() -> None:
    hyp = GreedyDecoder(LABELS).decode(path_log_probs([0, 0, 0, 0], p=0.99))
    assert (hyp.text, hyp.confidence) == ("", 0.0)


def test_greedy_on_no_frames() -> None:
    hyp = GreedyDecoder(LABELS).decode(np.zeros((0, len(LABELS))))
    assert (hyp.text, hyp.confidence, hyp.char_confidences) == ("", 0.0, [])


@pytest.mark.parametrize(
    ("ref", "hyp", "char_errors", "cer", "word_errors", "wer"),
    [
        ("abc", "", 3, 1.0, 1, 1.0),  # an empty hypothesis deletes everything
        ("", "", 0, 0.0, 0, 0.0),
        ("", "ab", 2, 2.0, 1, 1.0),  # an empty reference: the insertions over one character (and one word)
        ("le chat", "le chat", 0, 0.0, 0, 0.0),
        ("le chat", "lechat", 1, 1 / 7, 2, 1.0),  # one deleted space, but both words are wrong
        ("le chat noir", "la chat", 6, 0.5, 2, 2 / 3),  # e->a, then " noir" deleted
    ],
)
def test_error_rates_of_edge_cases(ref: str, hyp: str, char_errors: int, cer: float, word_errors: int, wer: float):
    s = score_line(ref, hyp)
    assert (s.char_errors, s.word_errors) == (char_errors, word_errors)
    assert s.cer == pytest.approx(cer) and s.wer == pytest.approx(wer)


def test_dataset_rates_add_an_empty_reference_to_the_totals() -> None:
    # 3 + 2 character errors over 3 + 0 reference characters: the empty line's insertions count, its length not.
    totals = error_rates(["abc", ""], ["", "ab"])
    assert (totals.char_errors, totals.chars, totals.lines) == (5, 3, 2)
    assert totals.cer == pytest.approx(5 / 3)


def test_greedy_on_one_frame_and_a_last_character_with_id_one() -> None:
    hyp = GreedyDecoder(LABELS).decode(path_log_probs([1]))
    assert (hyp.text, hyp.char_confidences) == ("a", [pytest.approx(0.7)])
    # The line ends on label 1 ("a"): its confidence is still recorded, one value per character.
    hyp = GreedyDecoder(LABELS).decode(path_log_probs([2, 0, 1, 1], p=0.6))
    assert (hyp.text, hyp.char_confidences) == ("ba", [pytest.approx(0.6), pytest.approx(0.6)])


def test_greedy_decode_batch() -> None:
    hyps = GreedyDecoder(LABELS).decode_batch([path_log_probs([1, 0, 2]), np.zeros((0, 4)), path_log_probs([3])])
    assert [h.text for h in hyps] == ["ab", "", " "]
