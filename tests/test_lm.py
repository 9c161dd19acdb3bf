"""n-gram LM building: hand-computed modified Kneser-Ney values, ARPA validity in KenLM, inputs and CLI."""

from __future__ import annotations

import itertools
import json
import math
import zipfile
from pathlib import Path

import kenlm
import numpy as np
import pytest
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from htr.errors import DataError
from htr.lm.__main__ import main as lm_main
from htr.lm.corpus import brown_sentences, detokenize, read_manifest, read_texts
from htr.lm.files import lexicon_path, meta_path, read_lexicon
from htr.lm.ngram import adjusted_counts, build_lm, compute_discounts, count_ngrams, encode, kneser_ney
from htr.tokens import BOS, EOS, UNK, char_tokens, word_tokens

BROWN = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "brown.zip"

# The hand-made corpus: 6 sentences over the words a, b, c.
TINY = ["b", "c", "a b a a", "c a", "c a", "c"]


def _tiny(order: int):  # noqa: ANN202
    vocab, ids, _ = encode(s.split() for s in TINY)
    return vocab, count_ngrams(vocab, ids, order)


def _ngram_table(vocab: list[str], counts, values: list[np.ndarray]) -> list[dict[tuple[str, ...], float]]:  # noqa: ANN001
    """{n-gram words: value} per order, for reading results by name."""
    out, words = [], [(w,) for w in vocab]
    for k, o in enumerate(counts.orders):
        if k > 0:
            words = [words[p] + (vocab[w],) for p, w in zip(o.prefix, o.word, strict=True)]
        out.append(dict(zip(words, values[k].tolist(), strict=True)))
    return out


def test_counts_adjusted_counts_and_discounts_by_hand() -> None:
    vocab, counts = _tiny(2)
    raw = _ngram_table(vocab, counts, [o.count for o in counts.orders])[1]
    # Bigrams of "<s> b </s>", "<s> c </s>", "<s> a b a a </s>", 2 x "<s> c a </s>", "<s> c </s>":
    assert raw == {
        (BOS, "a"): 1, (BOS, "b"): 1, (BOS, "c"): 4, ("a", EOS): 3, ("a", "a"): 1,
        ("a", "b"): 1, ("b", EOS): 1, ("b", "a"): 1, ("c", EOS): 2, ("c", "a"): 2,
    }  # fmt: skip
    adj = _ngram_table(vocab, counts, adjusted_counts(counts))
    # Unigram adjusted counts = number of distinct left neighbours: </s> {a,b,c} = 3, a {<s>,a,b,c} = 4,
    # b {<s>,a} = 2, c {<s>} = 1; <s> and <unk> 0. The top order keeps raw counts.
    assert adj[0] == {(UNK,): 0, (BOS,): 0, (EOS,): 3, ("a",): 4, ("b",): 2, ("c",): 1}
    assert adj[1] == raw
    model = kneser_ney(counts)
    # Unigrams: t1..t4 = 1, 1, 1, 1 (c, b, </s>, a). Y = 1 / (1 + 2*1) = 1/3;
    # D1 = 1 - 2*Y*t2/t1 = 1/3, D2 = 2 - 3*Y*t3/t2 = 1, D3+ = 3 - 4*Y*t4/t3 = 5/3.
    assert model.count_of_counts[0] == (1, 1, 1, 1)
    assert model.discounts[0] == pytest.approx((1 / 3, 1.0, 5 / 3))
    # Bigrams: count 1: <s> a, <s> b, a a, a b, b </s>, b a -> t1 = 6; count 2: c </s>, c a -> t2 = 2;
    # t3 = 1 (a </s>), t4 = 1 (<s> c). Y = 6 / (6 + 2*2) = 0.6;
    # D1 = 1 - 2*0.6*2/6 = 0.6, D2 = 2 - 3*0.6*1/2 = 1.1, D3+ = 3 - 4*0.6*1/1 = 0.6.
    assert model.count_of_counts[1] == (6, 2, 1, 1)
    assert model.discounts[1] == pytest.approx((0.6, 1.1, 0.6))
    assert model.fallback == [False, False]


def test_middle_order_uses_continuation_counts_except_after_bos() -> None:
    vocab, counts = _tiny(3)
    adj = _ngram_table(vocab, counts, adjusted_counts(counts))[1]
    # "a </s>" follows a (in "a b a a") and c (in "c a", twice): 2 distinct left neighbours, raw count 3.
    assert adj[("a", EOS)] == 2
    # "a a" is preceded only by b: 1. "<s> c" cannot be extended to the left: its raw count 4.
    assert adj[("a", "a")] == 1
    assert adj[(BOS, "c")] == 4


# Interpolated MKN by hand with the discounts above. Unigrams: sum of adjusted counts = 3+4+2+1 = 10,
# discount mass = 5/3 (</s>) + 5/3 (a) + 1 (b) + 1/3 (c) = 14/3, gamma() = (14/3)/10 = 7/15, uniform over
# {<unk>, </s>, a, b, c} -> 7/15 * 1/5 = 7/75:
#   p(</s>) = (3 - 5/3)/10 + 7/75 = 17/75    p(a) = (4 - 5/3)/10 + 7/75 = 49/150
#   p(b) = (2 - 1)/10 + 7/75 = 29/150        p(c) = (1 - 1/3)/10 + 7/75 = 12/75     p(<unk>) = 7/75
P1 = {EOS: 17 / 75, "a": 49 / 150, "b": 29 / 150, "c": 12 / 75, UNK: 7 / 75}
# Context a: a </s> 3, a a 1, a b 1 (sum 5); discounts 0.6 (D3+), 0.6, 0.6 -> gamma(a) = 1.8/5 = 0.36.
#   p(</s>|a) = (3 - 0.6)/5 + 0.36 * 17/75 = 0.48 + 0.0816 = 0.5616
#   p(a|a) = (1 - 0.6)/5 + 0.36 * 49/150 = 0.08 + 0.1176 = 0.1976
#   p(b|a) = 0.08 + 0.36 * 29/150 = 0.08 + 0.0696 = 0.1496
#   p(c|a) = 0.36 * 12/75 = 0.0576 (unseen)     p(<unk>|a) = 0.36 * 7/75 = 0.0336
# Context <s>: <s> a 1, <s> b 1, <s> c 4 (sum 6); discounts 0.6 + 0.6 + 0.6 -> gamma(<s>) = 1.8/6 = 0.3.
#   p(c|<s>) = (4 - 0.6)/6 + 0.3 * 12/75 = 0.566667 + 0.048 = 0.614667
#   p(</s>|<s>) = 0.3 * 17/75 = 0.068 (unseen: the empty sentence)
# Context c: c </s> 2, c a 2 (sum 4); discounts 1.1 + 1.1 -> gamma(c) = 2.2/4 = 0.55.
#   p(a|c) = (2 - 1.1)/4 + 0.55 * 49/150 = 0.225 + 0.179667 = 0.404667    p(b|c) = 0.55 * 29/150 = 0.106333
P2 = {
    ("a", EOS): 0.5616, ("a", "a"): 0.1976, ("a", "b"): 0.1496, ("a", "c"): 0.0576, ("a", UNK): 0.0336,
    (BOS, "c"): 3.4 / 6 + 0.048, (BOS, EOS): 0.068,
    ("c", "a"): 0.225 + 0.55 * 49 / 150, ("c", "b"): 0.55 * 29 / 150,
}  # fmt: skip
GAMMA = {"a": 0.36, BOS: 0.3, "c": 0.55}


def test_bigram_probabilities_by_hand(tmp_path: Path) -> None:
    vocab, counts = _tiny(2)
    model = kneser_ney(counts)
    p1 = _ngram_table(vocab, counts, [10**lp for lp in model.log10_prob])[0]
    for w, p in P1.items():
        assert p1[(w,)] == pytest.approx(p, rel=1e-9)
    bo = _ngram_table(vocab, counts, [10**b for b in model.log10_backoff])[0]
    for w, g in GAMMA.items():
        assert bo[(w,)] == pytest.approx(g, rel=1e-9)
    # The same numbers through the ARPA file and KenLM (6 decimals of log10 in the file).
    arpa = tmp_path / "tiny.arpa"
    build_lm([*TINY], arpa, unit="word", order=2)
    lm = kenlm.Model(str(arpa))
    for (h, w), p in P2.items():
        state, out = kenlm.State(), kenlm.State()
        if h == BOS:
            lm.BeginSentenceWrite(state)
        else:
            lm.NullContextWrite(state)
            lm.BaseScore(state, h, out)
            state = out
        assert 10 ** lm.BaseScore(state, w, kenlm.State()) == pytest.approx(p, rel=1e-5), (h, w)


def _arpa_vocab(path: Path) -> list[str]:
    words, section = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("\\"):
                section = line
            elif section == "\\1-grams:" and line:
                words.append(line.split("\t")[1])
    return words


def _next_token_mass(lm: kenlm.Model, vocab: list[str], context: list[str]) -> float:
    state = kenlm.State()
    lm.BeginSentenceWrite(state)
    for w in context:
        out = kenlm.State()
        lm.BaseScore(state, w, out)
        state = out
    return sum(10 ** lm.BaseScore(state, w, kenlm.State()) for w in vocab if w != BOS)


@pytest.fixture(scope="module")
def brown_slice() -> list[str]:
    if not BROWN.is_file():
        pytest.skip(f"{BROWN} not available")
    return list(itertools.islice(read_texts([BROWN]), 2500))


@pytest.mark.parametrize(("unit", "order"), [("char", 6), ("word", 3)])
def test_arpa_loads_in_kenlm_and_flashlight_and_sums_to_one(
    tmp_path: Path, brown_slice: list[str], unit: str, order: int
) -> None:
    arpa = tmp_path / f"brown-{unit}.arpa"
    meta = build_lm(brown_slice, arpa, unit=unit, order=order)
    # (few characters have only 1-3 distinct left neighbours: char unigrams may need the fallback discounts)
    assert meta["discount_fallback"][1:] == [False] * (order - 1)
    lm = kenlm.Model(str(arpa))
    assert lm.order == order
    vocab = _arpa_vocab(arpa)
    tokenize = char_tokens if unit == "char" else word_tokens
    line = tokenize(brown_slice[7])
    contexts = [
        [],
        line[:1],
        line[:3],
        line[: order + 2],
        ["q", "q", "q"] if unit == "char" else ["zzz", "of"],
    ]
    for ctx in contexts:
        assert _next_token_mass(lm, vocab, ctx) == pytest.approx(1.0, abs=1e-4), ctx
    # flashlight-text's KenLM reads it too and gives the same scores.
    fl_lm = KenLM(str(arpa), Dictionary(line[:4]))
    state = fl_lm.start(False)
    ken, out = kenlm.State(), kenlm.State()
    lm.BeginSentenceWrite(ken)
    for i, tok in enumerate(line[:4]):
        state, score = fl_lm.score(state, i)
        assert score == pytest.approx(lm.BaseScore(ken, tok, out), abs=1e-5)
        ken, out = out, ken


def test_word_lm_writes_lexicon_and_meta(tmp_path: Path) -> None:
    arpa = tmp_path / "w.arpa"
    build_lm(["the cat sat.", "the |pipe| cat"], arpa, unit="word", order=2)
    lex = dict((w, " ".join(s)) for w, s in read_lexicon(lexicon_path(arpa)))
    assert lex["sat."] == "s a t . |"
    assert lex["|pipe|"] == "<U+007C> p i p e <U+007C> |"
    meta = json.loads(meta_path(arpa).read_text())
    assert (meta["unit"], meta["order"], meta["lexicon"]) == ("word", 2, "w.arpa.lexicon")
    assert meta["discount_fallback"] == [True, True]  # far too little text for real discounts


def test_discount_fallback_on_degenerate_counts() -> None:
    d, t, fallback = compute_discounts(np.array([1, 1, 1, 5]))
    assert fallback and d == (0.5, 1.0, 1.5) and t == (3, 0, 0, 0)


def test_brown_detokenization() -> None:
    line = "``/`` Only/rb a/at handful/nn ,/, ''/'' he/pps said/vbd (/( Mr./np Smith/np )/) ./."
    assert list(brown_sentences(line)) == ['"Only a handful," he said (Mr. Smith).']
    assert detokenize(["$", "5", "--", "`", "yes", "'"]) == "$5 -- 'yes'"
    data = "\n\n\tThe/at jury/nn said/vbd ./.\n\n\n\tIt/pps was/bedz Jr./np ./.\n"
    assert list(brown_sentences(data)) == ["The jury said.", "It was Jr."]


def test_inputs_manifest_split_plain_and_zip(tmp_path: Path) -> None:
    tsv = tmp_path / "lines.tsv"
    tsv.write_text('id\timage\ttext\tsplit\na\ta.png\tHello  "world"\ttrain\nb\tb.png\tsecret\ttest\n')
    assert list(read_manifest(tsv, "train")) == ['Hello "world"']
    assert list(read_manifest(tsv)) == ['Hello "world"', "secret"]
    with pytest.raises(DataError):
        list(read_manifest(tsv, "valid"))
    txt = tmp_path / "plain.txt"
    txt.write_text("one line\n\n  two   lines \n", encoding="utf-8")
    z = tmp_path / "brown.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("brown/ca01", "\n\tA/at dog/nn ./.\n")
        f.writestr("brown/README", "not a corpus file")
    assert list(read_texts([txt, z])) == ["one line", "two lines", "A dog."]


def test_cli_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tsv = tmp_path / "lines.tsv"
    rows = [f"l{i}\tx.png\t{t}\t{'train' if i % 4 else 'test'}" for i, t in enumerate(TINY * 4)]
    tsv.write_text("id\timage\ttext\tsplit\n" + "\n".join(rows) + "\n")
    out = tmp_path / "lm" / "c.arpa"
    assert lm_main(["build", str(tsv), "--output", str(out), "--unit", "char", "--order", "3", "--split", "train"]) == 0
    assert "char 3-gram model of 18 lines" in capsys.readouterr().out
    assert kenlm.Model(str(out)).order == 3
    assert not lexicon_path(out).exists()
    assert math.isclose(_next_token_mass(kenlm.Model(str(out)), _arpa_vocab(out), ["c", "|"]), 1.0, abs_tol=1e-4)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--weights", "0.5,a", "expected comma-separated numbers, got '0.5,a'"),
        ("--weights", "0.5,-1", "must be a finite number >= 0, got -1"),
        ("--beam-thresholds", ",", "expected at least one number"),
        ("--beam-thresholds", "20,inf", "must be a finite number >= 0, got inf"),
        ("--penalties", "0,nan", "must be a finite number, got nan"),
    ],
)
def test_cli_tune_bad_number_lists_are_one_usage_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        lm_main(["tune", str(tmp_path / "best.pt"), str(tmp_path / "lines.tsv"), "--lm", "x.arpa", f"{option}={value}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {option}: {message}" in err and "Traceback" not in err


def test_cli_tune_takes_negative_penalties() -> None:
    from htr.lm.__main__ import _parser

    args = _parser().parse_args(["tune", "m.pt", "d.tsv", "--lm", "x.arpa", "--penalties=-1,0,1.5"])
    assert args.penalties == (-1.0, 0.0, 1.5) and args.beam_thresholds == (20.0, 12.0, 8.0, 5.0)
