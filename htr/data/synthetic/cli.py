"""``python -m htr.data.synthetic OUT_DIR --train N --val N --test N --seed S``: generate a synthetic line dataset
(what it renders: the package docstring)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from htr.data.synthetic.generate import generate_dataset
from htr.data.synthetic.text import load_words
from htr.errors import HTRError


def main(argv: list[str] | None = None) -> int:
    """``python -m htr.data.synthetic OUT_DIR --train N --val N --test N --seed S``."""
    ap = argparse.ArgumentParser(prog="python -m htr.data.synthetic", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, help="output directory (created; reused if already generated)")
    ap.add_argument("--train", type=int, default=2000, help="number of training lines (default 2000)")
    ap.add_argument("--val", type=int, default=200, help="number of validation lines (default 200)")
    ap.add_argument("--test", type=int, default=200, help="number of test lines (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--words", type=Path, default=None, help="word list, one per line (default: shipped)")
    ap.add_argument("--text-file", type=Path, default=None, help="use these lines of text instead of words")
    args = ap.parse_args(argv)
    try:
        words = load_words(args.words) if args.words is not None else None
        start = time.perf_counter()
        tsv = generate_dataset(
            args.out_dir, args.train, args.val, args.test, args.seed, words=words, text_file=args.text_file
        )
    except HTRError as e:
        print(f"htr: {e}", file=sys.stderr)
        return 2
    n = args.train + args.val + args.test
    print(f"{tsv} ({n} lines, {time.perf_counter() - start:.1f} s)")
    return 0
