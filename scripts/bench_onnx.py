#!/usr/bin/env python3
"""Recognition throughput of the torch and onnxruntime backends (model forward only), as JSON lines of lines/s.

    python scripts/bench_onnx.py                       # model=cpu, 64 lines of height 48, widths 600-1100
    python scripts/bench_onnx.py --threads 1 --batch-sizes 1 16 --min-seconds 3

Random weights and random line images (speed does not depend on either). Lines are sorted by width and cut
into batches, as ``htr.inference.recognize_lines`` does; both backends get the same padded batches (the
ONNX graph takes per-line lengths, so lines of different widths may share a batch). Each measurement runs the
64 lines once to warm up, then repeats them until ``--min-seconds`` have passed.
"""

from __future__ import annotations

import argparse
import json
import string
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from omegaconf import OmegaConf

from htr.bundle import ModelBundle
from htr.charset import Charset
from htr.config import (
    ModelConfig,
    structured,
)
from htr.export import to_onnx
from htr.inference import LoadedModel, OnnxModel, lines_to_batch, physical_cores
from htr.model import CRNN, count_parameters
from htr.preprocess.pipeline import PreprocessConfig

CONF = Path(__file__).resolve().parents[1] / "htr" / "conf" / "model"


def random_lines(n: int, height: int, widths: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """``n`` uint8 line images (height, W) with W uniform in ``widths`` (inclusive)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, int(w)), dtype=np.uint8) for w in rng.integers(*widths, n, endpoint=True)]


def batches(arrays: list[np.ndarray], batch_size: int) -> list[dict]:
    """Width-sorted padded batches, as ``recognize_lines`` builds them."""
    order = sorted(range(len(arrays)), key=lambda i: arrays[i].shape[1])
    return [lines_to_batch([arrays[i] for i in order[s : s + batch_size]]) for s in range(0, len(order), batch_size)]


def lines_per_second(forward: Callable, batched: list[dict], min_seconds: float) -> tuple[float, int]:
    """Lines per second of ``forward(images, widths)`` over ``batched`` (one warm-up pass), and passes timed."""
    n_lines = sum(len(b["widths"]) for b in batched)
    for b in batched:
        forward(b["images"], b["widths"])
    passes, start = 0, time.perf_counter()
    while passes == 0 or time.perf_counter() - start < min_seconds:
        for b in batched:
            forward(b["images"], b["widths"])
        passes += 1
    return passes * n_lines / (time.perf_counter() - start), passes


def bench(
    model: str = "cpu",
    lines: int = 64,
    widths: tuple[int, int] = (600, 1100),
    batch_sizes: tuple[int, ...] = (1, 16),
    threads: int | None = None,
    min_seconds: float = 2.0,
    seed: int = 0,
) -> list[dict]:
    """Measure both backends at each batch size; print and return one JSON-able row per measurement."""
    threads = threads or physical_cores()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    cfg = structured(ModelConfig, OmegaConf.load(CONF / f"{model}.yaml"))
    charset = Charset(list(string.printable[:94] + " "))
    bundle = ModelBundle(charset, cfg, PreprocessConfig(height=cfg.height))
    loaded = LoadedModel(CRNN(cfg, len(charset)).eval(), bundle, Path(model))
    backends = {"torch": loaded, "onnxruntime": OnnxModel(to_onnx(loaded).SerializeToString(), threads=threads)}
    arrays = random_lines(lines, cfg.height, widths, seed)
    rows = []
    for batch_size in batch_sizes:
        batched = batches(arrays, batch_size)
        pad = 1 - sum(a.size for a in arrays) / sum(b["images"][:, 0].size for b in batched)
        for name, m in backends.items():
            rate, passes = lines_per_second(m.log_probs, batched, min_seconds)
            row = {
                "backend": name, "model": model, "params": count_parameters(loaded.model), "batch_size": batch_size,
                "lines": lines, "height": cfg.height, "widths": list(widths), "padding": round(pad, 4),
                "threads": threads, "passes": passes, "lines_per_s": round(rate, 2),
                "ms_per_line": round(1e3 / rate, 2),
                "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cpu", help="a config in htr/conf/model (default cpu)")
    p.add_argument("--lines", type=int, default=64)
    p.add_argument("--widths", type=int, nargs=2, default=[600, 1100], metavar=("MIN", "MAX"))
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    p.add_argument("--threads", type=int, default=None, help="intra-op threads of both backends (default: cores)")
    p.add_argument("--min-seconds", type=float, default=2.0, help="time each measurement at least this long")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    bench(a.model, a.lines, tuple(a.widths), tuple(a.batch_sizes), a.threads, a.min_seconds, a.seed)


if __name__ == "__main__":
    main()
