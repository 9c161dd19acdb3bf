import pytest

from htr.metrics import error_rates, score_line


def test_line_scores_hand_computed():
    # "kitten" -> "sitting": k->s, e->i, +g = 3 edits over 6 reference characters.
    s = score_line("kitten", "sitting")
    assert (s.char_errors, s.chars) == (3, 6)
    assert s.cer == pytest.approx(0.5)
    # words: "the cat sat" vs "the bat sat down": 1 substitution + 1 insertion over 3 words.
    s = score_line("the cat sat", "the bat sat down")
    assert (s.word_errors, s.words) == (2, 3)
    assert s.char_errors == 1 + len(" down")


def test_dataset_rates_are_totals_not_means():
    # Line 1: 1 error / 2 chars; line 2: 0 / 8. Total 1/10 = 0.1 (mean of line CERs would be 0.25).
    r = error_rates(["ab", "abcdefgh"], ["a", "abcdefgh"])
    assert r.cer == pytest.approx(0.1)
    assert (r.lines, r.chars, r.char_errors) == (2, 10, 1)
    assert r.wer == pytest.approx(0.5)


def test_perfect_and_empty():
    assert error_rates(["a b"], ["a b"]).cer == 0.0
    r = error_rates(["abc"], [""])
    assert r.cer == 1.0 and r.wer == 1.0
    with pytest.raises(ValueError, match="1 references but 0 hypotheses"):
        error_rates(["a"], [])
