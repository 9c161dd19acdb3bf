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

import sys
from pathlib import Path

from htr.bundle import ModelBundle
from htr.checkpoint import load_checkpoint, save_checkpoint
from htr.export import cache_path, onnx_for_checkpoint

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Command-line entry point."""
    src = Path(sys.argv[1])
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "htr" / "pretrained" / "default.pt"
    ckpt = load_checkpoint(src)
    ckpt["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    # The weights, the model's description and the counters; the optimizer and RNG states are left out.
    keep = {"model": ckpt["model"], **ModelBundle.from_checkpoint(ckpt, src).checkpoint_entries()}
    save_checkpoint(dst, {**keep, **({"state": ckpt["state"]} if "state" in ckpt else {})})
    print(f"wrote {dst} ({dst.stat().st_size / 1e6:.1f} MB) from {src}")
    cache_path(dst).unlink(missing_ok=True)
    onnx = onnx_for_checkpoint(dst)
    print(f"wrote {onnx} ({Path(onnx).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
