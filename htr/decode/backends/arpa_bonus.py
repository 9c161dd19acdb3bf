"""Per-token bonuses (``word_insertion_penalty``, ``char_bonus``) baked into a copy of an ARPA file, so that
flashlight's C++ decoder scores them without calling back into Python for every LM query.

Why it is exact: in a back-off n-gram model, ``log P(w | context)`` is always one stored n-gram's probability,
that of the longest stored n-gram ending in ``w``, plus back-off weights of the context, which do not depend on
``w``. Adding ``d`` to the probability of *every* stored n-gram ending in ``w`` (all orders) therefore adds
exactly ``d`` to ``log P(w | context)`` for every context, which is what a bonus per ``w`` does. The model is no
longer normalised; a bonus is not meant to keep it so. Back-off weights and ``</s>`` stay as they are.

KenLM has no call that changes a loaded model's probabilities, and its binary format is not meant to be edited,
so the copy is a plain ARPA file in a temporary folder, loaded and deleted at once (KenLM holds ARPA models in
memory). Three cases are left to the caller's slower way: files that are not plain ARPA text (KenLM binaries,
compressed files); bonuses for words the model does not know (they are scored as ``<unk>``, which other words
share); and a positive bonus that would lift some probability above 1, which KenLM refuses to load (a positive
word insertion penalty on a likely space does: the shipped LM's tuning is such a case).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _sections(path: Path) -> Iterator[tuple[int, str]]:
    """The lines of an ARPA file, each with the order of the n-gram section it is in (0 outside them)."""
    order = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            stripped = line.strip()
            if stripped.startswith("\\") and stripped.endswith("-grams:"):
                order = int(stripped[1 : -len("-grams:")])
            elif stripped in ("\\data\\", "\\end\\"):
                order = 0
            yield order, line


def _is_plain_arpa(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    return line.strip() == "\\data\\"
    except (OSError, UnicodeDecodeError):
        return False
    return False


def _unigrams(path: Path) -> set[str]:
    words = set()
    for order, line in _sections(path):
        if order > 1:
            break
        fields = line.split()
        if order == 1 and len(fields) >= 2:
            words.add(fields[1])
    return words


def _baked_lines(source: Path, bonus: dict[str, float]) -> Iterator[str | None]:
    """The ARPA file's lines with the bonuses added; ``None`` (then stop) at the first probability a bonus would
    push above 1, which KenLM refuses to load."""
    for order, line in _sections(source):
        fields = line.split()
        if order and len(fields) > order and fields[order] in bonus:
            log10_p = float(fields[0]) + bonus[fields[order]]
            if log10_p > 0.0:
                yield None
                return
            line = "\t".join([repr(log10_p), " ".join(fields[1 : order + 1]), *fields[order + 1 :]]) + "\n"
        yield line


@contextlib.contextmanager
def arpa_with_bonuses(path: str, log10_bonus: dict[str, float]) -> Iterator[str | None]:
    """A temporary copy of the ARPA file ``path`` whose n-grams ending in word ``w`` have ``log10_bonus[w]``
    added to their log10 probability; ``None`` when that cannot be done exactly (see the module docstring) or
    would make a probability greater than 1 (a positive bonus on a word that is already likely)."""
    source = Path(path)
    bonus = {w: d for w, d in log10_bonus.items() if d}
    if not _is_plain_arpa(source) or not set(bonus) <= _unigrams(source):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="htr-lm-") as folder:
        baked = Path(folder) / source.name
        complete = True
        with open(baked, "w", encoding="utf-8") as out:
            for line in _baked_lines(source, bonus):
                if line is None:
                    complete = False
                    break
                out.write(line)
        yield str(baked) if complete else None
