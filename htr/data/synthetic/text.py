"""The texts of synthetic lines: random lines drawn from the shipped word list, or lines of a text file cut to fit."""

from __future__ import annotations

import random
from pathlib import Path

from htr.charset import normalize_text
from htr.errors import DataError

WORDS_FILE = Path(__file__).with_name("words.txt")
PUNCTUATION_END = ".,;:?!"
MAX_CHARS = 48


def load_words(path: Path = WORDS_FILE) -> list[str]:
    """The shipped word list (or another one, one word per line)."""
    try:
        words = [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()]
    except OSError as e:
        raise DataError(f"cannot read word list ({e.strerror})", path) from e
    if not words:
        raise DataError("word list is empty", path)
    return words


def _number(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return str(rng.randint(0, 99))
    if kind < 0.65:
        return str(rng.randint(1800, 2030))
    if kind < 0.85:
        return str(rng.randint(100, 99999))
    return f"{rng.randint(0, 99)}.{rng.randint(0, 99):02d}"


def random_text(rng: random.Random, words: list[str], max_chars: int = MAX_CHARS) -> str:
    """A random line of 1-7 tokens, at most ``max_chars`` characters, single-spaced, never padded.

    Tokens are drawn from ``words`` (frequent words are not favoured: the list is sampled uniformly), are
    sometimes capitalized (sentence start, title case, rarely all caps), sometimes a number, sometimes
    carry punctuation from ``. , ; : ? ! ' -`` (end marks, quotes, hyphenated pairs, a lone dash).
    """
    if not words:
        raise ValueError("random_text needs a non-empty word list")
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    n_tokens = rng.randint(1, 7)
    sentence_case = rng.random() < 0.45
    tokens: list[str] = []
    length = 0
    for i in range(n_tokens):
        r = rng.random()
        if r < 0.07:
            token = _number(rng)
        elif r < 0.10 and i > 0:
            token = "-"
        else:
            token = rng.choice(words)
            c = rng.random()
            if (i == 0 and sentence_case) or c < 0.06:
                token = token[:1].upper() + token[1:]
            elif c < 0.075:
                token = token.upper()
            if rng.random() < 0.04:
                token = f"{token}-{rng.choice(words)}"
            elif rng.random() < 0.03:
                token = f"'{token}'"
        if token != "-" and rng.random() < 0.16:
            token += rng.choice(PUNCTUATION_END)
        extra = len(token) + (1 if tokens else 0)
        if tokens and length + extra > max_chars:
            break
        tokens.append(token)
        length += extra
    text = " ".join(tokens)
    if len(text) > max_chars:  # a single over-long token
        text = text[:max_chars]
    text = text.strip(" ")
    if text in ("", "-"):
        text = words[0][:max_chars]
    return text


def fit_line(text: str, max_chars: int = MAX_CHARS) -> str:
    """``text`` normalized and, when longer than ``max_chars``, cut at the last word boundary that fits."""
    text = normalize_text(text)
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars + 1)
    return text[:cut] if cut > 0 else text[:max_chars]
