#!/usr/bin/env python3
"""Copy a trained checkpoint into the package as the default model, without its training state.

    python scripts/ship_model.py runs/copiste_cpu/best.pt [htr/pretrained/default.pt]

Keeps the weights (stored as float16: half the size; they load back as float32), charset, resolved config,
preprocessing settings, version and the epoch/step/CER it reached; drops the optimizer, scheduler, scaler and RNG
states (they only matter for resuming). The result still loads with ``torch.load(weights_only=True)`` and
``htr.inference.load_model``. Also writes its ONNX export next to it (``default.pt.onnx``, the file
``recognize`` runs by default: onnxruntime starts without importing PyTorch).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's htr, not an installed copy

from htr.bundle import ModelBundle  # noqa: E402
from htr.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from htr.cli import run, writable_output  # noqa: E402
from htr.export import cache_path, onnx_for_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", type=Path, help="the trained checkpoint (a run's best.pt)")
    p.add_argument("output", type=Path, nargs="?", default=REPO / "htr" / "pretrained" / "default.pt",
                   help="where the shipped copy goes, its ONNX export beside it (default: %(default)s)")  # fmt: skip
    args = p.parse_args(argv)
    src, dst = args.checkpoint, writable_output(args.output)
    ckpt = load_checkpoint(src)
    ckpt["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    # The weights, the model's description and the counters; the optimizer and RNG states are left out.
    keep = {"model": ckpt["model"], **ModelBundle.from_checkpoint(ckpt, src).checkpoint_entries()}
    save_checkpoint(dst, {**keep, **({"state": ckpt["state"]} if "state" in ckpt else {})})
    print(f"wrote {dst} ({dst.stat().st_size / 1e6:.1f} MB) from {src}")
    cache_path(dst).unlink(missing_ok=True)
    onnx = onnx_for_checkpoint(dst)
    print(f"wrote {onnx} ({Path(onnx).stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    run(main)
