#!/usr/bin/env python3
"""Interpolate a fine-tuned model's weights with those of the model it started from (WiSE-FT).

    python scripts/interpolate_weights.py BASE.pt FINETUNED.pt --alpha 0.5 --output MIX.pt

Each weight becomes ``alpha * fine-tuned + (1 - alpha) * base`` (batch-norm statistics too). Fine-tuning on new
hands moves a model away from what it read well before; Wortsman et al. (2022, "Robust fine-tuning of zero-shot
models") show that the straight line between the two sets of weights keeps most of both. The fine-tuned model must
come from the base by ``train.init_from`` (same architecture, its charset the base's plus appended characters):
the output rows of characters the base lacks are taken from the fine-tuned model alone. The result has the
fine-tuned model's charset, config and preprocessing, and records the interpolation in its ``state``.
Written here because no library covers htr checkpoints; it is a few lines of tensor arithmetic.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from htr.bundle import ModelBundle
from htr.checkpoint import load_checkpoint, save_checkpoint
from htr.finetune import OUTPUT_LAYER

REPO = Path(__file__).resolve().parents[1]


def interpolate(base: dict, tuned: dict, alpha: float) -> dict:
    """The fine-tuned checkpoint ``tuned`` with its weights moved ``1 - alpha`` of the way back to ``base``."""
    base_chars = ModelBundle.from_checkpoint(base, "the base checkpoint").charset.chars
    tuned_chars = ModelBundle.from_checkpoint(tuned, "the fine-tuned checkpoint").charset.chars
    if tuned_chars[: len(base_chars)] != base_chars:
        raise SystemExit("the fine-tuned model's charset does not start with the base's: not fine-tuned from it")
    mixed = {}
    for name, w in tuned["model"].items():
        b = base["model"].get(name)
        if b is None or not w.is_floating_point():
            mixed[name] = w
            continue
        w, b = w.float(), b.float()
        if name in OUTPUT_LAYER and w.shape[0] != b.shape[0]:  # rows of the appended characters: tuned only
            out = w.clone()
            out[: b.shape[0]] = alpha * w[: b.shape[0]] + (1 - alpha) * b
            mixed[name] = out
        elif w.shape != b.shape:
            raise SystemExit(f"{name}: shapes {tuple(w.shape)} and {tuple(b.shape)} differ: not the same architecture")
        else:
            mixed[name] = alpha * w + (1 - alpha) * b
    return mixed


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", type=Path)
    p.add_argument("finetuned", type=Path)
    p.add_argument("--alpha", type=float, required=True, help="weight of the fine-tuned model, in [0, 1]")
    p.add_argument("--output", type=Path, required=True)
    args = p.parse_args()
    base, tuned = load_checkpoint(args.base), load_checkpoint(args.finetuned)
    out = {"model": interpolate(base, tuned, args.alpha)}
    out.update(ModelBundle.from_checkpoint(tuned, args.finetuned).checkpoint_entries())
    out["state"] = {
        **tuned.get("state", {}),
        "interpolated": {"base": str(args.base), "finetuned": str(args.finetuned), "alpha": args.alpha},
    }
    save_checkpoint(args.output, out)
    print(f"wrote {args.output}: {args.alpha} x {args.finetuned} + {1 - args.alpha:g} x {args.base}")


if __name__ == "__main__":
    main()
