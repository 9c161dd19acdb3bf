#!/usr/bin/env python3
"""The checks behind scripts/gpu_check.sh, one per call; each prints one JSON line on stdout.

    python scripts/gpu_check.py env|pytest|train|recognize

Without CUDA a GPU check prints ``{"check": ..., "skipped": "no CUDA"}``, unless DRY_RUN=1, which runs it on the
CPU with tiny budgets (to test this script where there is no GPU). Settings (environment): DATA (a lines.tsv;
default ../shared/data/copiste/lines.tsv, else the packed gpu_data/copiste/lines.tsv), PACKED=1 (DATA holds
lines packed by scripts/pack_preprocessed.py: preprocessing off), TRAIN_S (training budget, default 180 s),
OUT (a folder for the run; default /tmp/htr-gpu-check).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]  # gpu_check.sh puts it on PYTHONPATH (no install needed there)
DRY = os.environ.get("DRY_RUN") == "1"
OUT = Path(os.environ.get("OUT") or "/tmp/htr-gpu-check")
PACKED_OFF = ["data.preprocess.contrast=false", "data.preprocess.deskew=false", "data.preprocess.deslant=false",
              "data.preprocess.crop=false"]  # fmt: skip


def emit(check: str, **fields: Any) -> None:
    print(json.dumps({"check": check, **fields}), flush=True)


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def skipped(check: str) -> bool:
    """Print the skip line and return True when there is no CUDA and this is not a dry run."""
    if has_cuda() or DRY:
        return False
    emit(check, skipped="no CUDA")
    return True


def check_env() -> None:
    import torch
    import torch.distributed as dist

    cuda = has_cuda()
    emit(
        "env", torch=torch.__version__, cuda=cuda, cuda_version=torch.version.cuda,
        gpu=torch.cuda.get_device_name(0) if cuda else None,
        gpu_memory_gb=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
        bf16=torch.cuda.is_bf16_supported() if cuda else None,
        cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        nccl=dist.is_available() and dist.is_nccl_available(), cpus=os.cpu_count(), dry_run=DRY,
    )  # fmt: skip


def check_pytest() -> None:
    if skipped("pytest_cuda"):
        return
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py", "-p", "no:cacheprovider",
               f"--junitxml={xml}"]  # fmt: skip
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        cases = ET.parse(xml).getroot().iter("testcase") if xml.is_file() else []
        outcome = {}
        for case in cases:
            kinds = {child.tag for child in case}
            name = case.get("name")
            outcome[name] = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
    row: dict[str, Any] = {"rc": proc.returncode, "tests": len(outcome)}
    for kind in ("passed", "failed", "skipped"):
        row[kind] = sorted(n for n, o in outcome.items() if o == kind)
    if proc.returncode not in (0, 5) or not outcome:  # 5: nothing collected
        row["tail"] = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
    if not has_cuda():
        row["skipped_reason"] = "no CUDA (dry run: the tests must skip)"
    emit("pytest_cuda", **row)


def data_overrides() -> list[str] | None:
    """``data.root=...`` (and the preprocessing switched off for packed lines), or None without data."""
    data, packed = os.environ.get("DATA"), os.environ.get("PACKED") == "1"
    if not data:
        shared, gpu_data = REPO.parent / "shared/data/copiste/lines.tsv", REPO / "gpu_data/copiste/lines.tsv"
        if shared.is_file():
            data = str(shared)
        elif gpu_data.is_file():
            data, packed = str(gpu_data), True
        else:
            return None
    return [f"data.root={data}", *(PACKED_OFF if packed else [])]


def compose(overrides: list[str]) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    import htr.config  # noqa: F401 - registers the schema

    with initialize_config_module("htr.conf", version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


class StepClock:
    """Times the training steps by wrapping TrainLogger.train_step (called once per step, after the loss is read
    back, so the GPU has finished it)."""

    def __init__(self) -> None:
        from htr.train_log import TrainLogger

        self.times: list[float] = []
        self.lines: list[int] = []
        original = TrainLogger.train_step

        def train_step(logger: Any, step: int, loss: float, lr: float, lines: int, *rest: Any) -> None:
            self.times.append(time.perf_counter())
            self.lines.append(lines)
            original(logger, step, loss, lr, lines, *rest)

        TrainLogger.train_step = train_step

    def lines_per_s(self, warmup: int = 20) -> float | None:
        """Lines per second of training steps after ``warmup`` steps, leaving out the pauses between them
        (validation, a new epoch's loader) as intervals over 5 times the median."""
        import numpy as np

        dt = np.diff(self.times)[warmup:]
        lines = np.asarray(self.lines[1:], dtype=float)[warmup:]
        if dt.size < 3:
            return None
        keep = dt < 5 * np.median(dt)
        return round(float(lines[keep].sum() / dt[keep].sum()), 1)


def check_train() -> None:
    if skipped("train"):
        return
    data = data_overrides()
    if data is None:
        emit("train", error="no Copiste lines: set DATA (a lines.tsv), or pack them into gpu_data/ first")
        return
    import torch

    from htr.train import train

    cuda = has_cuda()
    budget = float(os.environ.get("TRAIN_S") or (180 if cuda else 15))
    workers = min(6, (os.cpu_count() or 2) - 2) if cuda else 0
    overrides = [
        "data=copiste", "model=puigcerver", *data, f"train.max_time_s={budget}", "train.amp=true",
        f"train.out_dir={OUT / 'train'}", "train.overwrite=true", "train.progress=false", "train.max_epochs=1000",
        f"train.device={'cuda' if cuda else 'cpu'}", f"data.num_workers={workers}",
    ]  # fmt: skip
    if not cuda:  # the dry run: a few steps on a few lines
        overrides += ["data.max_train_lines=32", "data.max_val_lines=8", "train.threads=1", "train.log_every_steps=1"]
    clock = StepClock()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the training log: stdout carries the JSON lines only
        result = train(compose(overrides))
    row: dict[str, Any] = {
        "model": "puigcerver", "budget_s": budget, "wall_s": round(time.perf_counter() - t0, 1),
        "steps": result["steps"], "epochs": result["epochs"],
        "lines_per_s": clock.lines_per_s(warmup=20 if cuda else 0),
        "val_cer": round(result["best_cer"], 4), "stop_reason": result["stop_reason"], "failed": result["failed"],
        "nonfinite_steps": result["nonfinite_steps"],
    }  # fmt: skip
    if cuda:
        row["amp_dtype"] = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        row["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
        row["peak_gpu_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20)
    emit("train", **row)


def check_recognize() -> None:
    if skipped("recognize"):
        return
    data = data_overrides()
    if data is None:
        emit("recognize", error="no Copiste lines: set DATA (a lines.tsv), or pack them into gpu_data/ first")
        return
    import torch

    from htr.data.formats import read_dataset
    from htr.data.lines import LineStore
    from htr.decode import DecodeConfig
    from htr.errors import DataError
    from htr.inference import load_model, recognize_lines
    from htr.metrics import ErrorRates

    cuda = has_cuda()
    device = "cuda" if cuda else "cpu"
    manifest = data[0].split("=", 1)[1]
    # Packed lines travel without their test split when the 64 MiB copy is tight: then the val split.
    try:
        split, samples = "test", read_dataset(manifest, split="test")
    except DataError as e:
        if "no rows with split 'test'" not in str(e):
            raise
        split, samples = "val", read_dataset(manifest, split="val")
    samples = samples[: None if cuda else 8]
    models = {"default": "default"}
    if (OUT / "train" / "best.pt").is_file():
        models["puigcerver_trained"] = str(OUT / "train" / "best.pt")
    for name, path in models.items():
        loaded = load_model(path, device=device, backend="torch")
        with contextlib.redirect_stdout(sys.stderr):
            store = LineStore.build(samples, loaded.preprocess, REPO / ".cache" / "htr")
        arrays = [store[i] for i in range(len(samples)) if i not in store.errors]
        recognize_lines(loaded, arrays[:64], DecodeConfig(), 64)  # warm-up (cuDNN set-up, allocator)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        hyps = recognize_lines(loaded, arrays, DecodeConfig(), 64)
        dt = time.perf_counter() - t0
        rates = ErrorRates()
        for i, h in zip([i for i in range(len(samples)) if i not in store.errors], hyps, strict=True):
            rates.add(samples[i].text, h.text)
        emit("recognize", model=name, device=device, batch_size=64, lines=len(arrays),
             lines_per_s=round(len(arrays) / dt, 1), split=split, cer=round(rates.cer, 4))  # fmt: skip


CHECKS = {"env": check_env, "pytest": check_pytest, "train": check_train, "recognize": check_recognize}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        sys.exit(f"usage: python scripts/gpu_check.py {{{','.join(CHECKS)}}}")
    try:
        CHECKS[sys.argv[1]]()
    except Exception as e:  # noqa: BLE001 - one JSON line saying what failed, then a non-zero exit
        emit(sys.argv[1], error=f"{type(e).__name__}: {e}")
        sys.exit(1)
