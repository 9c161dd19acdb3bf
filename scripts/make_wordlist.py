"""Build ``htr/data/synthetic/words.txt``: the most frequent words of the Brown corpus, one per line.

Usage::

    python scripts/make_wordlist.py [--brown ../shared/data/text/brown.zip] [--size 4000] \
        [--out htr/data/synthetic/words.txt]

The corpus (NLTK's tagged distribution: files ``brown/c??`` of ``word/tag`` tokens, one sentence per line)
is read straight from the zip. A word qualifies when it is made of ASCII letters, optionally with one inner
apostrophe (``don't``, ``man's``). Words are ranked by case-insensitive frequency; each is written in the
spelling it mostly has away from sentence starts and headlines, so ``the`` stays lower case while ``I``,
``Mr`` or ``American`` keep their capital. The output is deterministic (ties broken alphabetically).
"""

from __future__ import annotations

import argparse
import re
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BROWN = ROOT.parent / "shared" / "data" / "text" / "brown.zip"
DEFAULT_OUT = ROOT / "htr" / "data" / "synthetic" / "words.txt"

WORD_RE = re.compile(r"^[A-Za-z]+(?:'[A-Za-z]+)?$")
# Frequent tokens that are not words: units of the corpus's technical texts ("Af", "Aj").
NOT_WORDS = frozenset({"af", "aj"})


def count_words(brown_zip: Path) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Count qualifying words of the corpus.

    Returns the case-insensitive frequency of each word, and for each lower-cased word the counts of the
    surface spellings seen in running text (not first in a sentence, not in a title or headline).
    """
    freq: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    with zipfile.ZipFile(brown_zip) as z:
        names = sorted(n for n in z.namelist() if re.fullmatch(r"brown/c[a-r]\d\d", n))
        if not names:
            raise SystemExit(f"{brown_zip}: no Brown corpus files (brown/c??) inside")
        for name in names:
            for line in z.read(name).decode("latin-1").splitlines():
                for pos, token in enumerate(line.split()):
                    word, _, tag = token.rpartition("/")
                    key = word.lower()
                    if not WORD_RE.match(word) or key in NOT_WORDS:
                        continue
                    # Single letters are mostly initials and list labels; keep only "a" and "I".
                    if len(word) == 1 and key not in ("a", "i"):
                        continue
                    freq[key] += 1
                    if pos > 0 and "-tl" not in tag and "-hl" not in tag:
                        forms[key][word] += 1
    return freq, forms


def choose_spelling(key: str, forms: Counter[str]) -> str:
    """The spelling of ``key`` used in running text: capitalized only when that is clearly the norm."""
    if not forms:
        return key
    best, n = max(forms.items(), key=lambda kv: (kv[1], kv[0] == key))
    if best != key and n < 0.75 * sum(forms.values()):
        return key
    # All-caps spellings (acronyms, shouting) are kept only for short words such as "I" or "TV".
    if best.isupper() and len(best) > 3:
        return key
    return best


def make_wordlist(brown_zip: Path, size: int) -> list[str]:
    """The ``size`` most frequent qualifying words, most frequent first, without duplicates."""
    freq, forms = count_words(brown_zip)
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
    out: list[str] = []
    seen: set[str] = set()
    for key, _ in ranked:
        word = choose_spelling(key, forms.get(key, Counter()))
        if word in seen:
            continue
        seen.add(word)
        out.append(word)
        if len(out) == size:
            break
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brown", type=Path, default=DEFAULT_BROWN, help="path to brown.zip")
    ap.add_argument("--size", type=int, default=4000, help="number of words to keep")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output word list")
    args = ap.parse_args(argv)
    words = make_wordlist(args.brown, args.size)
    args.out.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    caps = sum(w[0].isupper() for w in words)
    print(f"wrote {len(words)} words ({caps} capitalized) to {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
