"""``python -m htr.lm build INPUT [INPUT ...] --output PATH [--unit char|word] [--order N] [--split S]``.

INPUT is a plain text file (one text line per line), a ``*.tsv`` manifest (its ``text`` column; with
``--split``, only rows of that split) or NLTK's Brown corpus zip (``*.zip``). Writes the ARPA model to PATH,
``PATH.json`` (unit, order, statistics) and, for ``--unit word``, ``PATH.lexicon``.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from htr.cli import finite_floats, positive_int, run, signed_floats, writable_output
from htr.lm.corpus import read_texts
from htr.lm.files import meta_path
from htr.lm.ngram import DEFAULT_ORDER, build_lm

KENLM_MAX_ORDER = 6


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m htr.lm", description="Build n-gram language models for decoding.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="estimate a modified Kneser-Ney n-gram model and write it as ARPA")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="text file, lines.tsv manifest, or Brown corpus zip")
    b.add_argument("--output", "-o", required=True, metavar="PATH", help="ARPA file to write")
    b.add_argument("--unit", choices=sorted(DEFAULT_ORDER), default="char", help="tokens: characters or words")
    b.add_argument("--order", type=positive_int, default=None, help="n-gram order (default: 6 for char, 3 for word)")
    b.add_argument("--split", default=None, help="use only manifest rows of this split (e.g. train)")
    t = sub.add_parser("tune", help="pick lm_weight, the insertion penalty and the beam threshold on validation lines")
    t.add_argument("checkpoint", help="the model (best.pt)")
    t.add_argument("data", nargs="+", help="dataset(s) with the validation lines (lines.tsv, IAM, folder of pairs)")
    t.add_argument("--lm", required=True, metavar="PATH", help="the ARPA model; the result goes to PATH.json")
    t.add_argument("--split", default="val")
    t.add_argument("--weights", type=finite_floats, default="0,0.2,0.4,0.6,0.8,1.0,1.3",
                   help="comma-separated lm_weight values")  # fmt: skip
    t.add_argument("--penalties", type=signed_floats, default="0,1,2",
                   help="comma-separated word insertion penalties (negative ones: --penalties=-1,0)")  # fmt: skip
    t.add_argument("--beam-size", type=positive_int, default=16)
    t.add_argument("--beam-thresholds", type=finite_floats, default="20,12,8,5",
                   help="comma-separated beam thresholds: the grid runs at the widest, then the narrowest that "
                        "keeps the CER is saved (a narrower beam decodes faster)")  # fmt: skip
    t.add_argument("--max-lines", type=positive_int, default=None)
    return p


def _tune(args: argparse.Namespace) -> int:
    from htr.lm.tune import tune

    r = tune(args.checkpoint, args.data, args.lm, args.split, args.weights, args.penalties, args.beam_size,
             args.beam_thresholds, args.max_lines)  # fmt: skip
    b = r["best"]
    print(f"best on {r['lines']} lines: lm_weight {b['lm_weight']} word_insertion_penalty "
          f"{b['word_insertion_penalty']} beam_threshold {b['beam_threshold']:g} (CER {100 * b['cer']:.2f}%, "
          f"{b['ms_per_line']:.1f} ms/line); saved to {args.lm}.json")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m htr.lm``."""
    args = _parser().parse_args(argv)
    if args.command == "tune":
        if Path(args.lm).is_file():  # the result goes next to it: checked before the work, not after it
            writable_output(meta_path(args.lm))
        return _tune(args)
    writable_output(args.output)
    start = time.perf_counter()
    meta = build_lm(read_texts(args.inputs, args.split), args.output, unit=args.unit, order=args.order)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ngrams = ", ".join(f"{k}-grams {n}" for k, n in enumerate(meta["ngrams"], start=1))
    print(
        f"wrote {args.output}: {meta['unit']} {meta['order']}-gram model of {meta['sentences']} lines, "
        f"{meta['tokens']} tokens, vocabulary {meta['vocab_size']}; {ngrams}"
    )
    if any(meta["discount_fallback"]):
        orders = [k for k, f in enumerate(meta["discount_fallback"], start=1) if f]
        print(f"note: too little text for Kneser-Ney discounts of order(s) {orders}; used 0.5, 1.0, 1.5")
    if meta["order"] > KENLM_MAX_ORDER:
        print(
            f"note: KenLM as pip builds it (kenlm, flashlight-text) loads models up to order "
            f"{KENLM_MAX_ORDER}; decoding with this {meta['order']}-gram model needs KenLM compiled with "
            f"KENLM_MAX_ORDER >= {meta['order']} (kenlm: MAX_ORDER={meta['order']} pip install --no-binary "
            f"kenlm --no-cache-dir --force-reinstall kenlm; flashlight-text: a source build)"
        )
    print(f"took {seconds:.1f} s, peak memory {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    run(main)
