"""Write datasets as their preprocessed lines, for training on a machine that lacks the original images.

``python scripts/pack_preprocessed.py OUT MANIFEST... --height 64 --splits train val --quality 75``

Each manifest's lines (the given splits) are preprocessed here exactly as training would (contrast, deskew,
deslant, crop, height), then saved as dark-on-light WebP (lossy: ``--quality``) under ``OUT/NAME/lines/`` with
an ``OUT/NAME/lines.tsv`` (NAME = the manifest's folder name). Such a folder trains with the preprocessing
steps switched off (``data.preprocess.{contrast,deskew,deslant,crop}=false``: the lines are already
normalized and ``height`` high); ``scripts/gpu_train.sh`` does so and sets the checkpoint's preprocessing back
to the full pipeline, which is what its lines went through. Why: a GPU machine reached by a copy of the
working tree gets 64 MiB, and the preprocessed lines compress to about half of the original scans.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from htr.data.formats import read_dataset
from htr.data.lines import LineStore
from htr.preprocess.pipeline import PreprocessConfig


def pack(manifest: Path, out: Path, splits: list[str], height: int, quality: int) -> tuple[int, int]:
    """Pack one manifest's ``splits`` into ``out``; return (lines written, bytes written)."""
    (out / "lines").mkdir(parents=True, exist_ok=True)
    rows, nbytes = [], 0
    for split in splits:
        samples = read_dataset(manifest, split=split)
        store = LineStore.build(samples, PreprocessConfig(height=height), ".cache/htr")
        for i, s in enumerate(samples):
            if i in store.errors:
                print(f"{manifest}: {s.id}: {store.errors[i]} (left out)")
                continue
            path = out / "lines" / f"{s.id}.webp"
            Image.fromarray(255 - store[i]).save(path, "WEBP", quality=quality)
            nbytes += path.stat().st_size
            rows.append([s.id, f"lines/{s.id}.webp", s.text, s.writer or "", split])
    # Written by hand: the manifest reader takes quotes literally (csv.QUOTE_NONE), and texts hold no tabs.
    lines = ["\t".join(r) for r in [["id", "image", "text", "writer", "split"], *rows]]
    (out / "lines.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(rows), nbytes


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("manifests", nargs="+", type=Path)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--splits", nargs="+", default=["train", "val"])
    p.add_argument("--quality", type=int, default=75)
    args = p.parse_args()
    for m in args.manifests:
        n, nbytes = pack(m, args.out / m.parent.name, args.splits, args.height, args.quality)
        print(f"{m}: {n} lines, {nbytes / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
