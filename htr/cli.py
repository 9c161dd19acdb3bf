"""Shared pieces of the command-line entry points: decoder options and one-sentence errors."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from htr.atomic import trial_write
from htr.decode import DecodeConfig
from htr.errors import HTRError

#: The character LM shipped with the default model (``--lm default``).
DEFAULT_LM = Path(__file__).parent / "pretrained" / "default_chars.arpa"


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse turns the ValueError into one usage line, exit 2)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def finite_float(text: str) -> float:
    """An argparse type: a finite number >= 0 (no nan, no inf, no negative weight)."""
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def finite_floats(text: str) -> tuple[float, ...]:
    """An argparse type: comma-separated :func:`finite_float` values (>= 0), at least one."""
    return _number_list(text, finite_float)


def signed_float(text: str) -> float:
    """An argparse type: a finite number of either sign."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def signed_floats(text: str) -> tuple[float, ...]:
    """An argparse type: comma-separated :func:`signed_float` values, at least one."""
    return _number_list(text, signed_float)


def _number_list(text: str, number: Callable[[str], float]) -> tuple[float, ...]:
    try:
        values = tuple(number(x) for x in text.split(",") if x.strip())
    except ValueError:  # float() of a non-number; ArgumentTypeError (out of range) passes through
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def writable_output(path: str | Path) -> Path:
    """``path``, once it is known that a file can be written there: called before the work, so an output that
    cannot be written (a read-only or full disk, a parent that is a file) costs one sentence, not the results.

    Missing parent folders are created, as the checkpoint, ONNX and LM writers do; a trial file is created and
    removed in the folder (:func:`htr.atomic.trial_write`).
    """
    path = Path(path)
    if path.is_dir():
        raise HTRError("is a folder; give the name of the file to write", path)
    if path.exists() and not os.access(path, os.W_OK):
        raise HTRError("the file exists and is read-only; nothing was done", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        trial_write(path.parent)
    except OSError as e:
        raise HTRError(f"cannot write this file ({e.strerror or e}); nothing was done", path) from None
    return path


def add_decoder_args(parser: argparse.ArgumentParser) -> None:
    """``--decoder``, ``--lm``, ``--beam-size``, ``--lm-weight``, ``--beam-threshold``, ``--batch-size``,
    ``--device``."""
    g = parser.add_argument_group("decoding")
    g.add_argument("--decoder", choices=["greedy", "beam"], default=None, help="default: greedy, or beam with --lm")
    g.add_argument(
        "--lm",
        metavar="PATH",
        help="ARPA LM from `python -m htr.lm build`, or default (shipped with htr): beam search with it",
    )
    g.add_argument("--beam-size", type=positive_int, default=None)
    g.add_argument("--lm-weight", type=finite_float, default=None,
                   help="weight of the LM against the model (default: the value `python -m htr.lm tune` saved with "
                        "the LM, else 0.5)")  # fmt: skip
    g.add_argument("--beam-threshold", type=finite_float, default=None,
                   help="prune hypotheses and labels scoring more than this below a frame's best (default: the "
                        "value `python -m htr.lm tune` saved with the LM, else 20)")  # fmt: skip
    g.add_argument("--backend-decoder", choices=["flashlight", "pyctcdecode"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=positive_int, default=16, help="lines per forward pass (default 16)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")


def add_backend_arg(parser: argparse.ArgumentParser) -> None:
    """``--backend torch|onnxruntime`` (default: onnxruntime for a ``.onnx`` checkpoint and the default model on
    the CPU, else torch)."""
    parser.add_argument(
        "--backend",
        choices=["torch", "onnxruntime"],
        default=None,
        help="run the model with PyTorch or onnxruntime (CPU); onnxruntime takes a .onnx file from "
        "`python -m htr.export`, or exports a .pt checkpoint once to CKPT.onnx next to it "
        "(default: onnxruntime for .onnx and for the default model on the CPU, else torch)",
    )


def decode_config(args: argparse.Namespace) -> DecodeConfig:
    """The decoder the command-line options ask for."""
    cfg = DecodeConfig()
    if args.lm:
        cfg.name, cfg.lm_path = "beam_lm", str(DEFAULT_LM) if args.lm == "default" else args.lm
        if args.lm == "default" and not DEFAULT_LM.is_file():
            raise HTRError(
                "no default language model is installed with this copy of htr; build one with `python -m htr.lm build`"
            )
    elif args.decoder == "beam":
        cfg.name = "beam"
    if args.decoder == "greedy" and args.lm:
        raise HTRError("--decoder greedy cannot use --lm; drop one of them")
    if args.beam_size is not None:
        cfg.beam_size = args.beam_size
    if args.lm_weight is not None:
        cfg.lm_weight = args.lm_weight
    if args.beam_threshold is not None:
        cfg.beam_threshold = args.beam_threshold
    if args.backend_decoder:
        cfg.backend = args.backend_decoder
    return cfg


def run(main: Callable[[], int]) -> None:
    """Run a CLI main; an :class:`HTRError` becomes ``htr: <sentence>`` on stderr and exit status 2."""
    try:
        code = main()
    except HTRError as e:
        print(f"htr: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("htr: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code)
