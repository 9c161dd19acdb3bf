"""Interpolated modified Kneser-Ney n-gram models, estimated with numpy and written as ARPA files.

The estimate follows Chen & Goodman (1998) as KenLM's ``lmplz`` implements it:

* Adjusted counts ``a``: for the highest order, and for n-grams starting with ``<s>``, the raw count; for
  lower orders the continuation count ``N1+(. w_1..w_k)``, the number of distinct tokens seen before it.
* Per order, from the count-of-counts ``t_j`` (number of n-grams with adjusted count ``j``, j = 1..4):
  ``Y = t_1 / (t_1 + 2 t_2)`` and ``D_j = j - (j + 1) Y t_{j+1} / t_j`` for j = 1, 2, 3 (``D_3`` is used for
  every count >= 3). When some ``t_j`` is 0 or a discount falls outside ``(0, j]`` (tiny corpora), the order
  uses lmplz's fallback discounts 0.5, 1.0, 1.5 and the sidecar JSON records it.
* ``p(w | h) = (a(h w) - D(a(h w))) / sum_v a(h v) + gamma(h) p(w | h')`` with ``h'`` = ``h`` minus its first
  token and ``gamma(h) = sum_v D(a(h v)) / sum_v a(h v)`` (= ``(D_1 N_1(h .) + D_2 N_2(h .) + D_3 N_3+(h .))
  / sum_v a(h v)``). Unigrams interpolate with the uniform distribution over the vocabulary without ``<s>``
  (``<unk>`` included, so it gets ``gamma() / (|V| - 1)``).
* In the ARPA file an n-gram's backoff weight is ``gamma`` of it as a context: for an interpolated model this
  makes the backoff computation reproduce the interpolated probabilities exactly, and each context's
  distribution over the vocabulary plus ``</s>`` sums to 1.

Sentences are padded with one ``<s>`` and one ``</s>``; ``<s>`` gets log-probability -99 like lmplz writes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from htr.errors import DataError, HTRError
from htr.lm.files import lexicon_path, update_meta, write_lexicon
from htr.tokens import BOS, EOS, UNK, WORD_BOUNDARY, char_tokens, spelling, word_tokens

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
# Char 6-grams: 6 is the highest order that KenLM as built by pip (kenlm, flashlight-text) can load.
DEFAULT_ORDER = {"char": 6, "word": 3}
_LOG10_FLOOR = -99.0


@dataclass
class OrderCounts:
    """The distinct n-grams of one order ``k``, sorted by (prefix, word).

    ``prefix``/``suffix`` index the n-grams of order ``k - 1`` holding ``w_1..w_{k-1}`` / ``w_2..w_k``
    (for unigrams both are -1 and n-gram ``i`` is token ``i``).
    """

    prefix: np.ndarray
    word: np.ndarray
    suffix: np.ndarray
    count: np.ndarray
    bos: np.ndarray  # starts with <s>

    def __len__(self) -> int:
        return len(self.count)


@dataclass
class NGramCounts:
    """Token strings by id (0 ``<unk>``, 1 ``<s>``, 2 ``</s>``) and the n-grams of orders 1..N."""

    vocab: list[str]
    orders: list[OrderCounts]
    sentences: int = 0
    tokens: int = 0  # without <s>, with </s>


@dataclass
class KneserNey:
    """Per order: discounts ``(D1, D2, D3+)``, count-of-counts ``t1..t4``, log10 probabilities and backoffs.

    ``log10_backoff[k-1][i]`` is NaN for an n-gram that is never a context (no backoff written).
    """

    discounts: list[tuple[float, float, float]]
    count_of_counts: list[tuple[int, int, int, int]]
    fallback: list[bool]
    log10_prob: list[np.ndarray] = field(default_factory=list)
    log10_backoff: list[np.ndarray] = field(default_factory=list)


def encode(sentences: Iterable[list[str]]) -> tuple[list[str], np.ndarray, int]:
    """Token ids of all sentences, each as ``<s> w_1 .. w_n </s>``; returns (vocab, ids, number of sentences).

    Ids of ordinary tokens follow the sorted order of their strings, after the three specials.
    """
    index: dict[str, int] = {UNK: UNK_ID, BOS: BOS_ID, EOS: EOS_ID}
    flat: list[int] = []
    n = 0
    for toks in sentences:
        flat.append(BOS_ID)
        flat.extend([index.setdefault(t, len(index)) for t in toks])
        flat.append(EOS_ID)
        n += 1
    first_seen = list(index)
    ordinary = sorted(range(3, len(first_seen)), key=first_seen.__getitem__)
    remap = np.arange(len(first_seen), dtype=np.int32)
    remap[ordinary] = np.arange(3, len(first_seen), dtype=np.int32)
    ids = remap[np.asarray(flat, dtype=np.int32)]
    vocab = [UNK, BOS, EOS] + [first_seen[i] for i in ordinary]
    return vocab, ids, n


def count_ngrams(vocab: list[str], ids: np.ndarray, order: int) -> NGramCounts:
    """Count the n-grams of orders 1..``order`` in ``ids`` (sentences delimited by ``<s>`` ... ``</s>``)."""
    if order < 1:
        raise ValueError("order must be >= 1")
    v = len(vocab)
    n = len(ids)
    is_bos = ids == BOS_ID
    starts = np.flatnonzero(is_bos)
    pos = np.arange(n, dtype=np.int64) - starts[np.cumsum(is_bos) - 1]  # offset from the sentence's <s>
    none = np.full(v, -1, dtype=np.int64)
    uni = OrderCounts(none, np.arange(v, dtype=np.int64), none, np.bincount(ids, minlength=v), np.arange(v) == BOS_ID)
    orders = [uni]
    cur = ids.astype(np.int64)  # id of the (k-1)-gram ending at each position (-1: none)
    for k in range(2, order + 1):
        at = np.flatnonzero(pos >= k - 1)
        if len(at) == 0:
            break
        keys = cur[at - 1] * v + ids[at]
        uniq, first, inv, cnt = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        prefix = uniq // v
        orders.append(OrderCounts(prefix, uniq % v, cur[at[first]], cnt, orders[-1].bos[prefix]))
        nxt = np.full(n, -1, dtype=np.int64)
        nxt[at] = inv
        cur = nxt
    return NGramCounts(vocab, orders, sentences=int(len(starts)), tokens=int(n - len(starts)))


def adjusted_counts(counts: NGramCounts) -> list[np.ndarray]:
    """Kneser-Ney adjusted counts per order (raw counts for the top order and n-grams starting with <s>)."""
    out = []
    top = len(counts.orders)
    for k, o in enumerate(counts.orders, start=1):
        if k == top:
            a = o.count.astype(np.int64)
        else:
            cont = np.bincount(counts.orders[k].suffix, minlength=len(o)).astype(np.int64)
            a = np.where(o.bos, o.count, cont)
        if k == 1:
            a = a.copy()
            a[BOS_ID] = 0  # never predicted
        out.append(a)
    return out


def compute_discounts(
    adjusted: np.ndarray,
) -> tuple[tuple[float, float, float], tuple[int, int, int, int], bool]:
    """Modified Kneser-Ney discounts ``(D1, D2, D3+)`` of one order from its adjusted counts.

    Returns the discounts, the count-of-counts ``(t1, t2, t3, t4)`` and whether the fallback was used.
    """
    t = tuple(int(np.count_nonzero(adjusted == j)) for j in (1, 2, 3, 4))
    if min(t[:3]) > 0:
        y = t[0] / (t[0] + 2.0 * t[1])
        d = tuple(j - (j + 1) * y * t[j] / t[j - 1] for j in (1, 2, 3))
        if all(0.0 < d[j - 1] <= j for j in (1, 2, 3)):
            return (float(d[0]), float(d[1]), float(d[2])), t, False  # type: ignore[return-value]
    return FALLBACK_DISCOUNTS, t, True  # type: ignore[return-value]


def _discount_of(a: np.ndarray, d: tuple[float, float, float]) -> np.ndarray:
    """``D(a)``: 0 for a = 0, D1, D2, then D3 for every a >= 3."""
    table = np.array([0.0, d[0], d[1], d[2]])
    return table[np.minimum(a, 3)]


def kneser_ney(counts: NGramCounts) -> KneserNey:
    """Estimate the interpolated modified Kneser-Ney model of ``counts``."""
    adjusted = adjusted_counts(counts)
    stats = [compute_discounts(a) for a in adjusted]
    model = KneserNey([s[0] for s in stats], [s[1] for s in stats], [s[2] for s in stats])
    probs: list[np.ndarray] = []
    for k, (o, a) in enumerate(zip(counts.orders, adjusted, strict=True), start=1):
        disc = _discount_of(a, model.discounts[k - 1])
        kept = a - disc
        if k == 1:
            total = float(a.sum())
            gamma0 = float(disc.sum()) / total
            p = kept / total + gamma0 / (len(a) - 1)
            p[BOS_ID] = 0.0
        else:
            n_ctx = len(counts.orders[k - 2])
            denom = np.bincount(o.prefix, weights=a, minlength=n_ctx)
            mass = np.bincount(o.prefix, weights=disc, minlength=n_ctx)
            with np.errstate(divide="ignore", invalid="ignore"):
                gamma = mass / denom  # NaN where h is never a context
            p = kept / denom[o.prefix] + gamma[o.prefix] * probs[-1][o.suffix]
            model.log10_backoff.append(_log10(gamma))
        probs.append(p)
        model.log10_prob.append(_log10(p))
    model.log10_backoff.append(np.full(len(counts.orders[-1]), np.nan))
    model.log10_prob[0][BOS_ID] = _LOG10_FLOOR
    return model


def _log10(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(x)
    return np.where(np.isneginf(out), _LOG10_FLOOR, out)


def write_arpa(path: str | Path, counts: NGramCounts, model: KneserNey) -> None:
    """Write the model as an ARPA file (atomically: a temporary file is renamed into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("\\data\\\n")
        for k, o in enumerate(counts.orders, start=1):
            f.write(f"ngram {k}={len(o)}\n")
        names = counts.vocab
        prev: list[str] = names
        for k, o in enumerate(counts.orders, start=1):
            f.write(f"\n\\{k}-grams:\n")
            if k == 1:
                texts = names
            else:
                texts = [prev[p] + " " + names[w] for p, w in zip(o.prefix.tolist(), o.word.tolist(), strict=True)]
            _write_order(f, texts, model.log10_prob[k - 1], model.log10_backoff[k - 1])
            prev = texts
        f.write("\n\\end\\\n")
    os.replace(tmp, path)


def _write_order(f, texts: list[str], logp: np.ndarray, logbo: np.ndarray, chunk: int = 1 << 18) -> None:  # noqa: ANN001
    for s in range(0, len(texts), chunk):
        lp = logp[s : s + chunk].tolist()
        bo = logbo[s : s + chunk].tolist()
        lines = [
            f"{p:.6f}\t{t}\n" if math.isnan(b) else f"{p:.6f}\t{t}\t{b:.6f}\n"
            for p, t, b in zip(lp, texts[s : s + chunk], bo, strict=True)
        ]
        f.write("".join(lines))


def build_lm(texts: Iterable[str], output: str | Path, unit: str = "char", order: int | None = None) -> dict:
    """Estimate an n-gram model of ``texts`` (normalized text lines) and write ``output`` (ARPA) and sidecars.

    ``unit="char"``: tokens are characters, the space is ``|`` (default order 6). ``unit="word"``: tokens are
    space-separated words (default order 3), and ``output.lexicon`` spells each word for the decoder.
    ``output.json`` records the unit, order and statistics (any tuned values in it are dropped: they belong to
    the previous model). Returns that dict.
    """
    if unit not in DEFAULT_ORDER:
        raise HTRError(f"unknown LM unit {unit!r}; expected 'char' or 'word'")
    order = order or DEFAULT_ORDER[unit]
    if order < 1:
        raise HTRError(f"the n-gram order must be at least 1, not {order}")
    tokenize = char_tokens if unit == "char" else word_tokens
    vocab, ids, n_sent = encode(tokenize(t) for t in texts)
    if n_sent == 0:
        raise DataError("no text lines in the input")
    counts = count_ngrams(vocab, ids, order)
    if len(counts.orders) < order:
        raise DataError(f"the text has no sentence long enough for {order}-grams; use a smaller --order")
    model = kneser_ney(counts)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_arpa(output, counts, model)
    lexicon = None
    if unit == "word":
        write_lexicon(lexicon_path(output), [(w, spelling(w)) for w in vocab[3:]])
        lexicon = lexicon_path(output).name
    meta = {
        "unit": unit,
        "order": order,
        "lexicon": lexicon,
        "word_boundary": WORD_BOUNDARY,
        "sentences": counts.sentences,
        "tokens": counts.tokens,
        "vocab_size": len(vocab),
        "ngrams": [len(o) for o in counts.orders],
        "discounts": [[round(d, 6) for d in ds] for ds in model.discounts],
        "count_of_counts": [list(t) for t in model.count_of_counts],
        "discount_fallback": model.fallback,
        "smoothing": "interpolated modified Kneser-Ney (htr.lm.ngram)",
    }
    update_meta(output, meta, replace=True)
    return meta
