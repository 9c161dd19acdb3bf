"""Fault injection: a training killed with SIGKILL at random moments, resumed each time, ends bit for bit where
an uninterrupted run ends, and no kill leaves a checkpoint that cannot be loaded.

The kill moments are drawn from a seeded generator: a target step, then a delay of up to a step or so past it,
so kills land in the middle of a step, of a checkpoint write (``train.checkpoint_every_steps=1``: one every
step) or of a validation. ``tests/test_robustness.py`` has the quick variant (one kill) in the normal suite.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from htr.checkpoint import load_checkpoint

from .conftest import REPO, write_tsv_dataset
from .test_robustness import (
    DROPOUT,
    ENV,
    WORDS,
    assert_checkpoints_intact,
    same_tensors,
    tiny_train,
    train_cmd,
    wait_for,
)

STEPS = 60
KILLS = 10
SEED = 20261130


def _step(last: Path) -> int:
    """The step ``last.pt`` records, or 0 while there is none."""
    return load_checkpoint(last)["state"]["step"] if last.is_file() else 0


def _kill_at(cmd: list[str], last: Path, target: int, delay: float) -> None:
    """Start ``cmd``; once ``last`` records step ``target`` or later, wait ``delay`` seconds and SIGKILL it."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _step(last) >= target, proc, f"step {target}")
        time.sleep(delay)
        assert proc.poll() is None, f"the run ended before the kill planned at step {target}"
        proc.kill()
        proc.wait(timeout=300)
    finally:
        proc.kill()


@pytest.mark.slow
def test_ten_random_kill_9s_then_resumes_reach_the_uninterrupted_weights(tmp_path: Path) -> None:
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS * 2, "val": WORDS[:2]})  # 4 steps an epoch
    common = [*DROPOUT, f"train.max_steps={STEPS}", "train.early_stopping_patience=100000"]
    rng = np.random.default_rng(SEED)
    targets = sorted(rng.choice(np.arange(1, STEPS - 4), KILLS, replace=False).tolist())
    killed = tmp_path / "killed"
    last = killed / "last.pt"
    reached = []
    for target in targets:
        resume = [f"train.resume={last}"] if last.is_file() else []
        _kill_at(train_cmd(tsv, killed, [*common, "train.checkpoint_every_steps=1", *resume]), last, target,
                 float(rng.uniform(0, 0.08)))  # fmt: skip
        assert_checkpoints_intact(killed)
        reached.append(_step(last))
    assert reached == sorted(reached) and reached[-1] < STEPS, reached  # each resumed run got further
    resumed = tiny_train(tsv, killed, [*common, "train.checkpoint_every_steps=1", f"train.resume={last}"])
    full = tiny_train(tsv, tmp_path / "full", [*common, "train.checkpoint_every_steps=1"])
    assert resumed["steps"] == full["steps"] == STEPS
    assert not list(killed.glob(".*.tmp*"))  # the last start removed what the kills left
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(killed / name), load_checkpoint(tmp_path / "full" / name)
        assert same_tensors(a["model"], b["model"]), name
        assert same_tensors(a["optimizer"], b["optimizer"]), name
        assert a["state"] == b["state"], name
