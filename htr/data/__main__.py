"""``python -m htr.data convert SRC OUT_DIR`` and ``python -m htr.data check DATA``.

``convert`` writes any dataset htr reads (a folder of page images with PAGE/ALTO XML, an IAM ``lines.txt``
or folder, a manifest, pairs) as ``OUT_DIR/lines/<id>.png`` + ``OUT_DIR/lines.tsv``, keeping the source's
splits or making writer-aware ones with ``--split-by-writer VAL TEST``. Pages and lines that cannot be converted
(a missing page image, say) are left out and listed in ``OUT_DIR/left_out.tsv``; the exit status is then 1 (2
when nothing could be converted).

``check`` decodes every image and reports unreadable images, empty texts, duplicate ids, characters outside a
charset, lines too narrow for their text at the model's downsampling and extreme sizes. Exit status: 0 when
the data is usable, 1 when something blocks training (see :mod:`htr.data.check`), 2 when the dataset cannot
be read at all.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from htr.cli import run


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m htr.data", description="Convert and check line datasets.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write a dataset as lines/*.png + lines.tsv (the Copiste layout)")
    c.add_argument("src", metavar="SRC", help="page folder (images + PAGE/ALTO XML), IAM lines.txt, or any dataset")
    c.add_argument("out_dir", metavar="OUT_DIR", help="folder to create")
    c.add_argument(
        "--split-by-writer",
        nargs=2,
        type=float,
        metavar=("VAL_FRACTION", "TEST_FRACTION"),
        help="assign whole writers (whole pages or IAM forms when writers are unknown) to train/val/test with "
        "about these fractions of lines (default: keep the source's splits)",
    )
    c.add_argument("--seed", type=int, default=0, help="seed of --split-by-writer (default 0)")
    c.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists and is not empty")
    k = sub.add_parser("check", help="find what would break or hurt training in a dataset")
    k.add_argument("data", metavar="DATA", help="lines.tsv, IAM, a folder of pairs, or a page folder")
    k.add_argument("--split", default=None, help="check only this split")
    k.add_argument("--checkpoint", metavar="CKPT", help="take charset, height and stride from a checkpoint")
    k.add_argument(
        "--charset-from",
        metavar="CKPT_OR_DATA",
        help="checkpoint, or dataset whose train split (else all lines) gives the charset",
    )
    k.add_argument("--height", type=int, default=None, help="line height the model sees (default 64)")
    k.add_argument("--stride", type=int, default=None, help="input columns per CTC frame (default 4)")
    k.add_argument(
        "--max-narrow", type=float, default=0.05, help="fraction of too-narrow lines that blocks (default 0.05)"
    )
    k.add_argument("--jobs", type=int, default=None, help="threads decoding images (default: up to 4)")
    return p


def _convert(args: argparse.Namespace) -> int:
    from htr.data.convert import convert

    start = time.perf_counter()
    fractions = tuple(args.split_by_writer) if args.split_by_writer else None
    result = convert(args.src, args.out_dir, fractions, seed=args.seed, overwrite=args.overwrite)
    print(result.summary())
    print(f"took {time.perf_counter() - start:.1f} s")
    for row in result.left_out_summary() if result.left_out else []:
        print(f"htr: {row}", file=sys.stderr)
    return 1 if result.left_out else 0  # 1: not all done (README "Exit codes")


def _check(args: argparse.Namespace) -> int:
    from htr.data.check import check_samples, checkpoint_settings, load_charset, read_for_check

    charset, height, stride, charset_from, preprocess = None, 64, 4, None, None
    if args.checkpoint:
        charset, height, stride, preprocess = checkpoint_settings(args.checkpoint)
        charset_from = f"checkpoint {args.checkpoint}"
    if args.charset_from:
        charset, charset_from = load_charset(args.charset_from)
    height = args.height or height
    stride = args.stride or stride
    if height < 1 or stride < 1:
        raise SystemExit("htr: --height and --stride must be positive")
    samples = read_for_check(args.data, args.split)
    if preprocess is not None and args.height and args.height != preprocess.height:
        preprocess = dataclasses.replace(preprocess, height=args.height)
    report = check_samples(samples, charset, height, stride, args.max_narrow, args.jobs, preprocess)
    split = f" (split {args.split})" if args.split else ""
    chars = f"{len(charset.chars)} characters from {charset_from}" if charset else "none given"
    print(f"checked {report.total} lines of {args.data}{split}; height {height}, stride {stride}, charset: {chars}")
    print(report.table())
    reasons = report.blocking()
    if reasons:
        print(f"BLOCKED: {'; '.join(reasons)}")
        return 1
    print("OK: nothing blocks training")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m htr.data``."""
    args = _parser().parse_args(argv)
    return _convert(args) if args.command == "convert" else _check(args)


if __name__ == "__main__":
    run(main)
