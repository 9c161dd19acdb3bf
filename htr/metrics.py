"""Character and word error rates (edit distance over total reference length), per line and per dataset."""

from __future__ import annotations

from dataclasses import dataclass

import editdistance


@dataclass
class LineScore:
    """Edit distances of one line against its reference."""

    char_errors: int
    chars: int
    word_errors: int
    words: int

    @property
    def cer(self) -> float:
        """This line's character error rate (errors / reference characters)."""
        return self.char_errors / max(self.chars, 1)

    @property
    def wer(self) -> float:
        """This line's word error rate (errors / reference words)."""
        return self.word_errors / max(self.words, 1)


def score_line(reference: str, hypothesis: str) -> LineScore:
    """Character and word edit distances; words are whitespace-separated tokens."""
    ref_words, hyp_words = reference.split(), hypothesis.split()
    return LineScore(
        char_errors=editdistance.eval(reference, hypothesis),
        chars=len(reference),
        word_errors=editdistance.eval(ref_words, hyp_words),
        words=len(ref_words),
    )


@dataclass
class ErrorRates:
    """Dataset totals: CER = total character edits / total reference characters (likewise WER)."""

    char_errors: int = 0
    chars: int = 0
    word_errors: int = 0
    words: int = 0
    lines: int = 0

    def add(self, reference: str, hypothesis: str) -> LineScore:
        """Score one line and add it to the totals."""
        s = score_line(reference, hypothesis)
        self.char_errors += s.char_errors
        self.chars += s.chars
        self.word_errors += s.word_errors
        self.words += s.words
        self.lines += 1
        return s

    @property
    def cer(self) -> float:
        """Character error rate over all lines added."""
        return self.char_errors / max(self.chars, 1)

    @property
    def wer(self) -> float:
        """Word error rate over all lines added."""
        return self.word_errors / max(self.words, 1)


def error_rates(references: list[str], hypotheses: list[str]) -> ErrorRates:
    """Dataset CER/WER of paired lists."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    totals = ErrorRates()
    for r, h in zip(references, hypotheses, strict=True):
        totals.add(r, h)
    return totals
