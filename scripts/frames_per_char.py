#!/usr/bin/env python3
"""CER by output frames per character: is a hand too dense for a model's frame rate?

    python scripts/frames_per_char.py CHECKPOINT DATA [DATA ...] [--split val] [--backend torch]

CTC emits at most one character per output frame and needs a blank frame between two equal characters, so a
line with fewer frames than about 1.5 per character is hard to read whatever the weights. For each line of each
dataset's split this preprocesses the image as the model does, counts its output frames (its width over the
model's input columns per frame) against its reference's characters, recognizes it (greedy) and prints, per
dataset, the lines and the CER in each band of frames per character, as one JSON object per band.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from htr.cli import add_backend_arg, run
from htr.data.formats import read_dataset
from htr.data.lines import preprocess_file
from htr.inference import load_model, recognize_lines
from htr.metrics import ErrorRates
from htr.model import width_stride

#: Upper edges of the bands of frames per character (the last band is open).
BANDS = (1.2, 1.5, 2.0, 3.0)


def band(frames_per_char: float) -> str:
    """The band's label: ``"<1.2"``, ..., ``">=3.0"``."""
    for edge in BANDS:
        if frames_per_char < edge:
            return f"<{edge}"
    return f">={BANDS[-1]}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("data", nargs="+", type=Path)
    p.add_argument("--split", default="val")
    add_backend_arg(p)
    args = p.parse_args(argv)
    loaded = load_model(args.checkpoint, backend=args.backend)
    stride = width_stride(loaded.bundle.model)
    for data in args.data:
        samples = read_dataset(data, split=args.split)
        arrays = [preprocess_file(s.image, loaded.preprocess) for s in samples]
        hyps = recognize_lines(loaded, arrays)
        bands: dict[str, ErrorRates] = {}
        for s, a, h in zip(samples, arrays, hyps, strict=True):
            frames = a.shape[1] // stride  # the model's own count (CRNN: T = W // width_stride)
            bands.setdefault(band(frames / max(len(s.text), 1)), ErrorRates()).add(s.text, h.text)
        for label in [f"<{e}" for e in BANDS] + [f">={BANDS[-1]}"]:
            if label in bands:
                r = bands[label]
                print(json.dumps({"data": str(data), "split": args.split, "stride": stride,
                                  "frames_per_char": label, "lines": r.lines, "cer": round(r.cer, 4)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    run(main)
