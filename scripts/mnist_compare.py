"""Flat vs convolutional encoder on MNIST digit lines, at two training-set sizes (see docs/mnist.md).

    OMP_NUM_THREADS=1 python scripts/mnist_compare.py [--runs flat:1000,conv:1000,flat:all,conv:all]
        [--max-time-s 210] [--threads 1] [--out runs/mnist] [--eval-only]

Each run trains ``experiment=mnist_<encoder>`` (``data.mnist.train_digits=N``, its own ``data.root``) within
the time budget, then scores ``best.pt`` on the ``test`` split (lines of 1-10 digits: CER and exact-line rate, as
``python -m htr.evaluate CKPT DATA --split test --json`` does) and on the ``digits`` split (each test digit
alone: single-digit accuracy = exact-match rate). Prints one JSON object per run as it finishes, then a
markdown table (the training log goes to stderr). ``--eval-only`` scores the checkpoints an earlier call left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_module

import htr.config  # noqa: F401 - registers the schema
from htr.data.mnist import DIGITS_SPLIT
from htr.data.sources import dataset_path
from htr.evaluate import evaluate
from htr.inference import load_model
from htr.model import count_parameters
from htr.train import train

REPO = Path(__file__).resolve().parents[1]


def run_overrides(encoder: str, digits: int | None, out: Path, threads: int, max_time_s: float | None) -> list[str]:
    """Hydra overrides of one run: experiment, training digits (own data folder), output folder, budget."""
    tag = "all" if digits is None else str(digits)
    root = "data/mnist_lines" if digits is None else f"data/mnist_lines_{digits}"
    overrides = [
        f"experiment=mnist_{encoder}",
        f"data.mnist.train_digits={'null' if digits is None else digits}",
        f"data.root={root}",
        f"train.out_dir={out / f'{encoder}_{tag}'}",
        f"train.threads={threads}",
        "train.progress=false",
    ]
    if max_time_s is not None:
        overrides.append(f"train.max_time_s={max_time_s}")
    return overrides


def score(ckpt: Path, tsv: Path) -> dict[str, Any]:
    """Test-line CER and exact-line rate, single-digit accuracy of ``ckpt`` on the MNIST lines in ``tsv``."""
    loaded = load_model(ckpt)
    lines = evaluate(loaded, tsv, "test")
    digits = evaluate(loaded, tsv, DIGITS_SPLIT)
    exact = [r["prediction"] == r["reference"] for r in lines["per_line"]]
    correct = [r["prediction"] == r["reference"] for r in digits["per_line"]]
    return {
        "params": count_parameters(loaded.model),
        "test_lines": lines["lines"],
        "line_cer": lines["cer"],
        "line_exact": sum(exact) / max(len(exact), 1),
        "single_digits": len(correct),
        "digit_accuracy": sum(correct) / max(len(correct), 1),
    }


def one_run(encoder: str, digits: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """Train (unless ``--eval-only``) and score one configuration; the result as a flat dict."""
    overrides = run_overrides(encoder, digits, args.out, args.threads, args.max_time_s)
    with initialize_config_module("htr.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    tsv = dataset_path(cfg.data)  # generates the lines on first use
    out_dir = Path(cfg.train.out_dir)
    result: dict[str, Any] = {"encoder": encoder, "train_digits": digits or 8000, "overrides": overrides}
    if not args.eval_only:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the training log; stdout keeps the results only
            trained = train(cfg)
        result |= {
            "train_s": round(time.perf_counter() - t0, 1),
            "steps": trained["steps"],
            "epochs": trained["epochs"],
            "best_val_cer": trained["best_cer"],
            "stop_reason": trained["stop_reason"],
        }
        (out_dir / "compare_train.json").write_text(json.dumps(result) + "\n", encoding="utf-8")
    elif (out_dir / "compare_train.json").is_file():
        result |= json.loads((out_dir / "compare_train.json").read_text(encoding="utf-8"))
    torch.set_num_threads(args.threads)
    return result | score(out_dir / "best.pt", tsv)


def table(results: list[dict[str, Any]]) -> str:
    """The results as a markdown table."""
    rows = [
        "| encoder | training digits | params | training time | steps (epochs) | test line CER | exact lines "
        "| single-digit accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        t = f"{r['train_s']:.0f} s" if "train_s" in r else "?"
        steps = f"{r['steps']} ({r['epochs']})" if "steps" in r else "?"
        rows.append(
            f"| {r['encoder']} | {r['train_digits']:,} | {r['params']:,} | {t} | {steps} | {100 * r['line_cer']:.2f}% "
            f"| {100 * r['line_exact']:.1f}% | {100 * r['digit_accuracy']:.1f}% |"
        )
    return "\n".join(rows)


def parse_runs(spec: str) -> list[tuple[str, int | None]]:
    """``flat:1000,conv:all`` -> ``[("flat", 1000), ("conv", None)]``."""
    runs = []
    for item in spec.split(","):
        encoder, _, n = item.strip().partition(":")
        if encoder not in ("flat", "conv") or not (n == "all" or n.isdigit()):
            raise SystemExit(f"bad run {item!r}: expected ENCODER:N or ENCODER:all, ENCODER flat or conv")
        runs.append((encoder, None if n == "all" else int(n)))
    return runs


def main() -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="flat:1000,conv:1000,flat:all,conv:all", help="ENCODER:DIGITS list")
    ap.add_argument("--max-time-s", type=float, default=None, help="training budget per run (default: the config's)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training and scoring (default 1)")
    ap.add_argument("--out", type=Path, default=Path("runs/mnist"), help="parent of the run folders")
    ap.add_argument("--eval-only", action="store_true", help="score the checkpoints of an earlier call")
    args = ap.parse_args()
    os.chdir(REPO)  # the configs' relative paths (data/, ../shared/data/mnist) are relative to the repository
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} thread(s)", file=sys.stderr)  # fmt: skip
    results = []
    for encoder, digits in parse_runs(args.runs):
        results.append(one_run(encoder, digits, args))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "overrides"}), flush=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
