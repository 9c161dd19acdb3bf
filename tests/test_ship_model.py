"""scripts/ship_model.py: the shipped copy keeps the model (as float16) and drops the training state; errors are
one sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from htr.checkpoint import load_checkpoint, save_checkpoint

from .conftest import REPO, save_untrained_checkpoint

SCRIPT = REPO / "scripts" / "ship_model.py"


def test_the_shipped_copy_is_float16_without_the_training_state(tmp_path: Path) -> None:
    src = save_untrained_checkpoint(tmp_path / "run" / "best.pt")
    ckpt = load_checkpoint(src)
    save_checkpoint(src, {**ckpt, "optimizer": {"lr": 1.0}, "state": {"step": 7}})
    dst = tmp_path / "out" / "model.pt"
    done = subprocess.run([sys.executable, str(SCRIPT), str(src), str(dst)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shipped = load_checkpoint(dst)
    assert "optimizer" not in shipped and shipped["state"]["step"] == 7
    assert shipped["charset"] == ckpt["charset"] and shipped["config"]["model"] == ckpt["config"]["model"]
    for name, weight in ckpt["model"].items():
        if weight.is_floating_point():
            assert shipped["model"][name].dtype == torch.float16
            assert torch.equal(shipped["model"][name], weight.half()), name
    assert Path(f"{dst}.onnx").is_file()


def test_a_missing_checkpoint_is_one_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    done = subprocess.run([sys.executable, str(SCRIPT), str(missing), str(tmp_path / "x.pt")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == f"htr: {missing}: checkpoint file not found"
    assert not (tmp_path / "x.pt").exists()
