#!/usr/bin/env python3
"""Time character-LM decoding with a word insertion penalty baked into the ARPA file and through the Python
wrapper, on real lines, and check that both read the same (docs/results.md, "The LM's bonuses in C++").

    python scripts/bench_lm_bonus.py [--lines 150] [--model default] [--data ../shared/data/copiste/lines.tsv]

Prints one line per setting: penalty 0 (KenLM as is), -1 baked, -1 through the wrapper, and the shipped +1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's htr, not an installed copy

import htr.decode.backends.flashlight as flashlight_backend  # noqa: E402
from htr.data.formats import read_dataset  # noqa: E402
from htr.data.lines import preprocess_file  # noqa: E402
from htr.decode.beam import BeamDecoder, LMSpec  # noqa: E402
from htr.inference import line_log_probs, load_model  # noqa: E402


def timed(labels: list[str], lps: list[np.ndarray], lm: LMSpec, penalty: float) -> tuple[list[str], str, float, float]:
    start = time.perf_counter()
    dec = BeamDecoder(labels, backend="flashlight", lm=lm, lm_weight=0.5, beam_threshold=8.0,
                      word_insertion_penalty=penalty)  # fmt: skip
    built = time.perf_counter()
    texts = [dec.decode(lp).text for lp in lps]
    return texts, type(dec.backend._lm).__name__, built - start, (time.perf_counter() - built) / len(lps)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="default")
    p.add_argument("--lm", default=str(REPO / "htr" / "pretrained" / "default_chars.arpa"))
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "copiste" / "lines.tsv"))
    p.add_argument("--split", default="val")
    p.add_argument("--lines", type=int, default=150)
    args = p.parse_args()
    model = load_model(args.model)
    samples = read_dataset(args.data, args.split)[: args.lines]
    lps = line_log_probs(model, [preprocess_file(s.image, model.preprocess) for s in samples])
    lm = LMSpec(args.lm, "char")
    runs = {}
    for label, penalty, bake in (("penalty 0", 0.0, True), ("penalty -1", -1.0, True), ("penalty -1", -1.0, False),
                                 ("penalty +1", 1.0, True)):  # fmt: skip
        flashlight_backend.BAKE_BONUSES = bake
        try:
            texts, kind, load_s, per_line = timed(model.charset.labels, lps, lm, penalty)
        finally:
            flashlight_backend.BAKE_BONUSES = True
        runs[(penalty, bake)] = texts
        print(f"{label}: LM {kind}, loaded in {load_s:.2f} s, {1000 * per_line:.1f} ms/line", flush=True)
    same = sum(a == b for a, b in zip(runs[(-1.0, True)], runs[(-1.0, False)], strict=True))
    print(f"penalty -1, baked and wrapped: {same} of {len(lps)} lines read the same")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
