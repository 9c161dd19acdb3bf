"""The files of an htr language model: ``PATH`` (ARPA), ``PATH.json`` (settings) and ``PATH.lexicon``.

``PATH.json`` is written by ``python -m htr.lm build`` with what the decoder must know (``unit``, ``order``,
``lexicon``) and statistics of the estimate. Tuned decoding parameters are stored in the same file, next to
those, as ``lm_weight``, ``word_insertion_penalty``, ``char_bonus``, ``beam_threshold`` and ``backend`` (the
backend they were tuned with); :func:`htr.decode.make_decoder` applies them (see :mod:`htr.decode.beam`).

``PATH.lexicon`` (word LMs only) has one word per line: the word's LM token, a tab, then its spelling as
space-separated character tokens ending with the word boundary ``|`` (see :mod:`htr.tokens`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from htr.errors import HTRError

TUNED_KEYS = ("lm_weight", "word_insertion_penalty", "char_bonus", "beam_threshold", "backend")


def meta_path(lm_path: str | Path) -> Path:
    """``PATH.json`` of the LM at ``PATH``."""
    return Path(str(lm_path) + ".json")


def lexicon_path(lm_path: str | Path) -> Path:
    """``PATH.lexicon`` of the LM at ``PATH``."""
    return Path(str(lm_path) + ".lexicon")


def read_meta(lm_path: str | Path) -> dict[str, Any]:
    """The LM's ``PATH.json`` as a dict (empty when there is none)."""
    p = meta_path(lm_path)
    if not p.is_file():
        return {}
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HTRError(f"cannot be read as JSON ({e})", p) from e
    if not isinstance(meta, dict):
        raise HTRError("is not a JSON object", p)
    return meta


def update_meta(lm_path: str | Path, values: dict[str, Any], replace: bool = False) -> Path:
    """Merge ``values`` into ``PATH.json`` (or replace its content) atomically; returns its path."""
    p = meta_path(lm_path)
    meta = {} if replace else read_meta(lm_path)
    meta.update(values)
    _atomic_write(p, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return p


def write_lexicon(path: str | Path, entries: Iterable[tuple[str, list[str]]]) -> None:
    """Write ``word<TAB>t o k e n s |`` lines."""
    _atomic_write(Path(path), "".join(f"{w}\t{' '.join(s)}\n" for w, s in entries))


def read_lexicon(path: str | Path) -> list[tuple[str, list[str]]]:
    """Entries of a lexicon file: ``(word, spelling tokens)``."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise HTRError(f"lexicon cannot be read ({e.strerror})", p) from e
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        word, sep, spelled = line.partition("\t")
        if not sep:
            word, _, spelled = line.partition(" ")
        if not word or not spelled.split():
            raise HTRError(f"line {n}: expected 'word<TAB>spelling'", p)
        out.append((word, spelled.split()))
    return out


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
