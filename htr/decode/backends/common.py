"""What both beam-search engines share: the LM to decode with, KenLM loading, candidate lists."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from htr.errors import HTRError

LN10 = math.log(10.0)


@dataclass(frozen=True)
class LMSpec:
    """An n-gram LM to decode with: ARPA ``path``, ``unit`` ("char" or "word") and, for words, ``lexicon``."""

    path: str
    unit: str = "char"
    lexicon: str | None = None


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence KenLM's loading chatter (it writes progress bars straight to file descriptor 2)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_lm(path: str, loader, *args):  # noqa: ANN001, ANN202
    """``loader(path, *args)`` without KenLM's chatter; a file KenLM cannot load is an :class:`HTRError`."""
    try:
        with _quiet_stderr():
            return loader(path, *args)
    except (RuntimeError, OSError, ValueError) as e:
        m = re.search(r"model has order (\d+) but KenLM was compiled to support up to (\d+)", str(e))
        if m:
            raise HTRError(
                f"this is a {m[1]}-gram model but this KenLM build loads at most {m[2]}-grams; rebuild it "
                f"with `python -m htr.lm build ... --order {m[2]}`",
                path,
            ) from e
        raise HTRError(f"KenLM cannot load this language model ({str(e).splitlines()[0]})", path) from e


def collapse(path: np.ndarray, blank: int) -> list[int]:
    """The label ids a CTC frame path spells (repeats merged, blanks dropped)."""
    keep = np.ones(len(path), dtype=bool)
    keep[1:] = path[1:] != path[:-1]
    return [int(k) for k in path[keep] if k != blank]


def dedupe(cands: list[tuple[list[int], np.ndarray | None]]) -> list[tuple[list[int], np.ndarray | None]]:
    """The first candidate of each labeling, in order (an engine may return one labeling by several alignments)."""
    seen: set[tuple[int, ...]] = set()
    out = []
    for ids, path in cands:
        if tuple(ids) not in seen:
            seen.add(tuple(ids))
            out.append((ids, path))
    return out
