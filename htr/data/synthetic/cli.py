"""Synthetic handwritten text lines rendered with handwriting fonts, for pre-training and tests.

Fonts come from the ``fontpkg-*`` packages on PyPI (SIL Open Font License 1.1, Google Fonts' handwriting
families); each font file is one "writer". A line is rendered word by word with a wobbling baseline and
jittered spacing, slanted, slightly rotated, then put on textured paper with noise and blur, and cropped to
its ink with a margin that never clips a stroke.

Command line::

    python -m htr.data.synthetic OUT_DIR --train 2000 --val 200 --test 200 --seed 0

writes ``OUT_DIR/lines/*.png`` and ``OUT_DIR/lines.tsv`` (columns ``id image text writer split``).
"""

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
