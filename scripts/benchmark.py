#!/usr/bin/env python3
"""Speed and memory of htr on this machine, as JSON lines on stdout.

    python scripts/benchmark.py --quick                 # under 5 minutes on 2 cores
    python scripts/benchmark.py --models small cpu puigcerver --train-steps 30
    python scripts/benchmark.py --data /tmp/peer/data --train-only --models small small,lstm_layers=1
    python scripts/benchmark.py --models cpu --skip-train    # preprocessing and model ms/line, decoders
    python scripts/benchmark.py --models cpu --train-only --threads 1 2 --busy 0 1 --omp-wait default passive

Measures, per model config, on real lines (../shared/data/copiste, else generated synthetic lines):
- training throughput (lines/s) and the padded-pixel fraction over a fixed number of steps after warm-up;
- recognition throughput (lines/s and ms/line) at batch 1 and 16, with and without preprocessing (torch backend);
  without it, the figure is the model's alone (forward pass and greedy decoding);
- preprocessing ms/line on its own (contrast, deskew, deslant, crop, resize), without and with image loading;
- greedy / beam / beam+LM decoding time per line (when the decoders are installed);
- parameter count, threads, and the peak RSS of each measurement (each runs in its own process);
- with --threads/--busy/--omp-wait, training throughput per thread count, with and without competing busy processes
  (each spins one core in pure Python, like any other CPU-bound job) and per OpenMP wait policy, so the
  ``train.threads`` default can be chosen from how training holds up on a shared machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import platform
import queue
import re
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPISTE = REPO.parent / "shared" / "data" / "copiste" / "lines.tsv"
DATA = os.environ.get("HTR_BENCH_DATA")  # --data, passed to the isolated child processes


def _top_level_split(text: str) -> list[str]:
    """``text`` split at the commas that start the next ``key=`` (those inside a list value never do)."""
    return re.split(r",(?=\w+=)", text)


def _model_cfg(name: str):  # noqa: ANN202
    """``small`` or ``small,lstm_layers=1,height=40``: a model group with overrides (commas inside brackets,
    as in ``cpu,conv_pools=[[2,2],[2,2],[2,1],[1,1]]``, belong to their value)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    import htr.config  # noqa: F401
    from htr.config import ModelConfig

    with initialize_config_module("htr.conf", version_base="1.3"):
        group, *changes = _top_level_split(name)
        overrides = [f"model={group}", *(f"model.{c}" for c in changes), "train.out_dir=/tmp/x"]
        cfg = compose("config", overrides=overrides)
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), cfg.model))


def _samples(n: int, split: str):  # noqa: ANN202
    from htr.data.formats import read_dataset

    if DATA:
        return read_dataset(DATA, split=split)[:n], DATA
    if COPISTE.is_file():
        return read_dataset(COPISTE, split=split)[:n], "copiste"
    from htr.data.synthetic import generate_dataset

    tsv = generate_dataset(REPO / "data" / "synthetic", 2000, 200, 200, seed=0)
    return read_dataset(tsv, split=split)[:n], "synthetic"


def _store(samples, height: int):  # noqa: ANN001, ANN202
    from htr.data.lines import LineStore
    from htr.preprocess.pipeline import PreprocessConfig

    return LineStore.build(samples, PreprocessConfig(height=height), REPO / ".cache" / "htr")


def bench_train(model: str, steps: int, warmup: int, batch_size: int, threads: int = 0) -> dict:
    """Training lines/s and padding fraction with the bucketing sampler."""
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(threads)

    from htr.charset import Charset
    from htr.data.dataset import BucketBatchSampler, build_dataset, collate, padding_fraction
    from htr.model import CRNN, count_parameters

    mcfg = _model_cfg(model)
    samples, source = _samples((steps + warmup) * batch_size * 4, "train")
    store = _store(samples, mcfg.height)
    charset = Charset.from_texts(s.text for s in samples)
    net = CRNN(mcfg, len(charset))
    ds, _ = build_dataset(samples, store, charset, lambda w, ids: w // net.width_stride >= max(len(ids), 1))
    sampler = BucketBatchSampler(ds.widths, batch_size, seed=0)
    batches = sampler.batches()[: steps + warmup]
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    net.train()
    lines, t0 = 0, None
    for k, idx in enumerate(batches):
        if k == warmup:
            t0, lines = time.perf_counter(), 0
        b = collate([ds[i] for i in idx])
        lp, lengths = net(b["images"], b["widths"])
        loss = F.ctc_loss(lp, b["targets"], lengths, b["target_lengths"], zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        lines += len(idx)
    dt = time.perf_counter() - t0
    return {
        "what": "train",
        "model": model,
        "data": source,
        "batch_size": batch_size,
        "steps": len(batches) - warmup,
        "lines_per_s": round(lines / dt, 2),
        "padding_fraction": round(padding_fraction(ds.widths, batches[warmup:]), 4),
        "params": count_parameters(net),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        **({"gomp_spincount": os.environ["GOMP_SPINCOUNT"]} if "GOMP_SPINCOUNT" in os.environ else {}),
    }


def bench_recognize(model: str, n_lines: int, batch_size: int, include_preprocess: bool) -> dict:
    """Recognition lines/s (greedy), optionally counting image loading and preprocessing."""
    import torch

    from htr.bundle import ModelBundle
    from htr.charset import Charset
    from htr.data.lines import preprocess_file
    from htr.decode import DecodeConfig
    from htr.inference import LoadedModel, recognize_lines
    from htr.model import CRNN
    from htr.preprocess.pipeline import PreprocessConfig

    mcfg = _model_cfg(model)
    samples, source = _samples(n_lines, "test")
    charset = Charset.from_texts(s.text for s in samples)
    pre = PreprocessConfig(height=mcfg.height)
    loaded = LoadedModel(CRNN(mcfg, len(charset)).eval(), ModelBundle(charset, mcfg, pre), Path("random"))
    arrays = None if include_preprocess else [_store(samples, mcfg.height)[i] for i in range(len(samples))]
    recognize_lines(loaded, [preprocess_file(samples[0].image, pre)], DecodeConfig(), 1)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    if include_preprocess:
        arrays = [preprocess_file(s.image, pre) for s in samples]
    recognize_lines(loaded, arrays, DecodeConfig(), batch_size)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "what": "recognize",
        "model": model,
        "data": source,
        "backend": "torch",
        "batch_size": batch_size,
        "preprocessing": include_preprocess,
        "lines": len(samples),
        "lines_per_s": round(len(samples) / dt, 2),
        "ms_per_line": round(1000 * dt / len(samples), 3),
        # CPU time of all the process's threads: what a line costs, less sensitive to other processes than wall time.
        "cpu_ms_per_line": round(1000 * cpu / len(samples), 3),
        "threads": torch.get_num_threads(),
    }


def bench_preprocess(n_lines: int, height: int, repeats: int = 3) -> dict:
    """Preprocessing ms/line on one core: the pipeline alone (images already decoded), and with decoding.

    Each line's time is the fastest of ``repeats`` passes (process time), which keeps other processes on a busy
    machine out of the figure as far as possible.
    """
    import numpy as np

    from htr.data.lines import preprocess_file
    from htr.imageio import load_image
    from htr.preprocess.pipeline import PreprocessConfig, preprocess_line

    samples, source = _samples(n_lines, "test")
    cfg = PreprocessConfig(height=height)
    images = [load_image(s.image) for s in samples]
    alone, loading = np.full(len(samples), np.inf), np.full(len(samples), np.inf)
    for _ in range(repeats):
        for i, (s, img) in enumerate(zip(samples, images)):
            t0 = time.process_time()
            preprocess_line(img, cfg)
            t1 = time.process_time()
            preprocess_file(s.image, cfg)
            t2 = time.process_time()
            alone[i], loading[i] = min(alone[i], t1 - t0), min(loading[i], t2 - t1)
    return {
        "what": "preprocess",
        "data": source,
        "height": height,
        "lines": len(samples),
        "ms_per_line": round(1000 * float(alone.mean()), 3),
        "ms_per_line_with_loading": round(1000 * float(loading.mean()), 3),
    }


def bench_decode(n_lines: int) -> list[dict]:
    """ms/line of each decoder on the log-probs of a random-weight `small` model (shape-realistic)."""
    import numpy as np

    from htr.decode import DecodeConfig, make_decoder

    rng = np.random.default_rng(0)
    labels = ["<blank>", " ", *"abcdefghijklmnopqrstuvwxyzéèàç.,'"]
    out = []
    mats = []
    for _ in range(n_lines):
        logits = rng.normal(size=(250, len(labels))) * 3
        logits[:, 0] += 2.0
        mats.append((logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32))
    for cfg in (DecodeConfig(name="greedy"), DecodeConfig(name="beam", beam_size=16)):
        try:
            dec = make_decoder(cfg, labels)
        except Exception as e:  # noqa: BLE001 - report which decoder is unavailable, keep measuring the others
            out.append({"what": "decode", "decoder": cfg.name, "error": str(e)})
            continue
        t0 = time.perf_counter()
        for m in mats:
            dec.decode(m)
        ms = 1000 * (time.perf_counter() - t0) / n_lines
        out.append({"what": "decode", "decoder": cfg.name, "ms_per_line": round(ms, 3)})
    return out


def _child(fn_name: str, kwargs: dict, q: mp.Queue) -> None:
    result = globals()[fn_name](**kwargs)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for r in result if isinstance(result, list) else [result]:
        r["peak_rss_mb"] = round(rss, 1)
        q.put(r)
    q.put(None)


def _spin() -> None:
    """Keep one core busy until terminated: the competing process of --busy."""
    while True:
        pass


def run_isolated(fn_name: str, busy: int = 0, omp_wait: str = "default", **kwargs) -> list[dict]:
    """Run one measurement in a fresh process, so its peak RSS is its own.

    ``busy`` processes spin beside it for its whole duration; ``omp_wait`` sets OMP_WAIT_POLICY for the child
    (OpenMP reads it once, when torch loads, so it cannot be set from inside an already running process).
    """
    ctx = mp.get_context("spawn")
    spinners = [ctx.Process(target=_spin, daemon=True) for _ in range(busy)]
    for s in spinners:
        s.start()
    saved = os.environ.pop("OMP_WAIT_POLICY", None)
    if omp_wait != "default":
        os.environ["OMP_WAIT_POLICY"] = omp_wait.upper()
    try:
        results = _run_child(ctx, fn_name, kwargs)
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)
        if saved is not None:
            os.environ["OMP_WAIT_POLICY"] = saved
        for s in spinners:
            s.terminate()
            s.join()
    for r in results:
        r["busy_processes"] = busy
    return results


def _run_child(ctx, fn_name: str, kwargs: dict) -> list[dict]:  # noqa: ANN001
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn_name, kwargs, q))
    p.start()
    results = []
    while True:
        try:
            r = q.get(timeout=1.0)
        except queue.Empty:
            if p.is_alive():
                continue
            # A child that died (an import error, killed for memory) never sends the end marker: say so, not hang.
            sys.exit(f"benchmark: the {fn_name} measurement stopped with exit status {p.exitcode} (its error is above)")
        if r is None:
            break
        results.append(r)
    p.join()
    return results


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer steps and lines (under 5 minutes on 2 cores)")
    p.add_argument("--models", nargs="+", default=["small", "puigcerver"])
    p.add_argument("--train-steps", type=int, default=None)
    p.add_argument("--lines", type=int, default=None, help="lines for the recognition figures")
    p.add_argument("--data", help="a dataset to measure on (any layout htr reads; default: Copiste, else generated)")
    p.add_argument("--train-only", action="store_true", help="training throughput only")
    p.add_argument("--preprocess-only", action="store_true", help="preprocessing ms/line only")
    p.add_argument("--skip-train", action="store_true", help="no training throughput")
    p.add_argument("--threads", type=int, nargs="+", default=[0], help="training threads to try (0: default)")
    p.add_argument("--busy", type=int, nargs="+", default=[0], help="competing busy processes during training")
    p.add_argument("--omp-wait", nargs="+", default=["default"], choices=["default", "passive", "active"],
                   help="OMP_WAIT_POLICY of the training process")  # fmt: skip
    args = p.parse_args()
    if args.data:
        global DATA
        DATA = os.environ["HTR_BENCH_DATA"] = str(Path(args.data).resolve())
    steps = args.train_steps or (8 if args.quick else 40)
    n_lines = args.lines or (48 if args.quick else 200)
    import torch

    print(json.dumps({"what": "machine", "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)  # fmt: skip
    if not args.train_only:
        for r in run_isolated("bench_preprocess", n_lines=n_lines, height=_model_cfg(args.models[0]).height):
            print(json.dumps(r), flush=True)
    if args.preprocess_only:
        return
    for model in args.models:
        small_run = model == "puigcerver" and args.quick
        train_steps = steps // 2 if small_run else steps
        for threads, busy, wait in [] if args.skip_train else itertools.product(args.threads, args.busy, args.omp_wait):
            for r in run_isolated("bench_train", busy=busy, omp_wait=wait, model=model, steps=train_steps, warmup=2,
                                  batch_size=16, threads=threads):  # fmt: skip
                print(json.dumps(r), flush=True)
        for bs in () if args.train_only else (1, 16):
            for pre in (False, True):
                for r in run_isolated("bench_recognize", model=model, n_lines=n_lines // 2 if small_run else n_lines,
                                      batch_size=bs, include_preprocess=pre):  # fmt: skip
                    print(json.dumps(r), flush=True)
    for r in [] if args.train_only else run_isolated("bench_decode", n_lines=20 if args.quick else 100):
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
