"""The model's label space: index 0 is the CTC blank, 1..N are characters."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

BLANK = "<blank>"


def normalize_text(text: str) -> str:
    """NFC-normalize a transcription and collapse runs of whitespace to one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class Charset:
    """Maps characters to label ids (blank = 0) and back.

    Characters missing from the charset are counted in ``unknown`` when encoding, never silently lost
    without trace.
    """

    def __init__(self, chars: Sequence[str]) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError("charset has duplicate characters")
        self.chars: list[str] = list(chars)
        self.index: dict[str, int] = {c: i + 1 for i, c in enumerate(self.chars)}
        self.unknown: Counter[str] = Counter()

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Charset:
        """Build a charset from the characters of ``texts`` (sorted, so it is deterministic)."""
        seen: set[str] = set()
        for t in texts:
            seen.update(t)
        return cls(sorted(seen))

    def __len__(self) -> int:
        """Number of labels including the blank."""
        return len(self.chars) + 1

    @property
    def labels(self) -> list[str]:
        """All labels by id: ``labels[0]`` is the blank token, then the characters."""
        return [BLANK, *self.chars]

    def encode(self, text: str) -> list[int]:
        """Label ids of ``text``; characters not in the charset are skipped and counted in ``unknown``."""
        ids = []
        for c in text:
            i = self.index.get(c)
            if i is None:
                self.unknown[c] += 1
            else:
                ids.append(i)
        return ids

    def missing(self, text: str) -> list[str]:
        """Characters of ``text`` that the charset lacks."""
        return [c for c in text if c not in self.index]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of label ids (blanks ignored; no CTC collapsing here)."""
        return "".join(self.chars[i - 1] for i in ids if i > 0)
