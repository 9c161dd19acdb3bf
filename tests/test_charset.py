"""The label space: blank = 0, characters 1..N, unknown characters counted, text normalization."""

from __future__ import annotations

import pytest

from htr.charset import BLANK, Charset, normalize_text


def test_normalize_text_composes_and_collapses_whitespace():
    # "e" + combining acute (2 code points) -> precomposed U+00E9; tabs, newlines and runs of spaces -> one space.
    assert normalize_text("  cafe\u0301 \t au\n\n lait  ") == "caf\u00e9 au lait"
    assert normalize_text("") == ""
    assert normalize_text("a") == "a"


def test_ids_start_at_one_and_round_trip():
    cs = Charset(["a", "b", "c"])
    assert len(cs) == 4  # three characters + the blank
    assert cs.labels == [BLANK, "a", "b", "c"]
    assert BLANK == "<blank>"
    assert cs.index == {"a": 1, "b": 2, "c": 3}
    assert cs.encode("cab") == [3, 1, 2]
    assert cs.decode([3, 1, 2]) == "cab"
    # Blanks are dropped, repeats kept (no CTC collapsing at this level).
    assert cs.decode([0, 1, 0, 1, 1, 0]) == "aaa"
    assert cs.decode([]) == ""


def test_unknown_characters_are_skipped_and_counted():
    cs = Charset(["a", "b"])
    assert cs.unknown == {}
    assert cs.encode("axbyx") == [1, 2]
    assert cs.unknown == {"x": 2, "y": 1}
    assert cs.missing("abzz") == ["z", "z"]
    assert cs.missing("ab") == []


def test_from_texts_is_sorted_and_deduplicated():
    cs = Charset.from_texts(["ba", "cab", ""])
    assert cs.chars == ["a", "b", "c"]
    assert Charset.from_texts([]).chars == []
    assert len(Charset.from_texts([])) == 1


def test_duplicate_characters_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        Charset(["a", "b", "a"])
