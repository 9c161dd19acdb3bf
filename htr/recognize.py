"""``python -m htr.recognize IMAGE [IMAGE ...] [--checkpoint CKPT] [--json]``: read text lines.

Prints one recognized text per image, in order. Arguments may be files, folders (their images, sorted) or
glob patterns. An image that cannot be read gets one sentence on stderr naming it; the others are still
recognized, and the exit status is 1.

``--backend onnxruntime`` (the default for a ``.onnx`` checkpoint) runs the model with onnxruntime on the CPU.
The checkpoint is then a ``.onnx`` file from ``python -m htr.export`` (all it needs: the charset and
preprocessing settings are in its metadata), or a ``.pt`` checkpoint, exported on first use and cached next to
it as ``CKPT.onnx`` (``best.pt`` -> ``best.pt.onnx``, exported again when the checkpoint changes; kept in memory
only when that folder is not writable).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import numpy as np

from htr.cli import add_backend_arg, add_decoder_args, decode_config, run
from htr.data.lines import preprocess_file
from htr.errors import HTRError, ImageError
from htr.inference import load_model, recognize_lines

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".pgm", ".ppm"}


def expand_inputs(args: list[str]) -> list[Path]:
    """Files as given; folders to their image files (sorted); glob patterns to their matches (sorted)."""
    out: list[Path] = []
    for a in args:
        p = Path(a)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not found:
                raise ImageError("the folder holds no images", p)
            out.extend(found)
        elif not p.exists() and any(ch in a for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(a, recursive=True))
            if not matches:
                raise ImageError("no file matches this pattern", a)
            out.extend(matches)
        else:
            out.append(p)
    return out


def main() -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m htr.recognize", description=__doc__.split("\n\n")[0])
    p.add_argument("images", nargs="+", help="line images, folders or glob patterns")
    p.add_argument(
        "--checkpoint", default="default", help="a checkpoint, .pt or .onnx (default: the model shipped with htr)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per image: image, text, confidence")
    p.add_argument("--chars", action="store_true", help="with --json: per-character confidences")
    add_decoder_args(p)
    add_backend_arg(p)
    args = p.parse_args()
    paths = expand_inputs(args.images)
    loaded = load_model(args.checkpoint, args.device, args.backend)
    arrays: list[np.ndarray] = []
    good: list[Path] = []
    failed = 0
    for path in paths:
        try:
            arrays.append(preprocess_file(path, loaded.preprocess))
            good.append(path)
        except HTRError as e:
            print(f"htr: {e}", file=sys.stderr)
            failed += 1
    hyps = recognize_lines(loaded, arrays, decode_config(args), args.batch_size)
    for path, h in zip(good, hyps, strict=True):
        if args.json:
            obj = {"image": str(path), "text": h.text, "confidence": round(h.confidence, 4)}
            if args.chars:
                obj["chars"] = [
                    {"char": c, "confidence": round(conf, 4)}
                    for c, conf in zip(h.text, h.char_confidences, strict=False)
                ]
            print(json.dumps(obj, ensure_ascii=False))
        else:
            print(h.text)
    return 1 if failed else 0


if __name__ == "__main__":
    run(main)
