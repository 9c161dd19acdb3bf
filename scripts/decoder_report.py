#!/usr/bin/env python3
"""CER/WER and decoding speed of one model on one split, for each decoder: greedy, beam, beam + each LM.

    python scripts/decoder_report.py runs/x/best.pt ../shared/data/copiste/lines.tsv --split test \
        --lm char=lm/chars.arpa --lm word=lm/words.arpa

The optical model runs once (its time is reported as `model_lines_per_s`, preprocessing excluded); each decoder
then decodes the same log-probabilities, so `decode_lines_per_s` is the decoder's own speed. LM settings come
from each LM's `.json` (see `python -m htr.lm tune`). Prints one JSON object per decoder and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from htr.data.formats import read_dataset
from htr.data.lines import LineStore
from htr.decode import DecodeConfig, make_decoder
from htr.inference import line_log_probs, load_model
from htr.metrics import ErrorRates

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("data")
    p.add_argument("--split", default="test")
    p.add_argument("--beam-size", type=int, default=16)
    p.add_argument("--lm", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--backend", default="flashlight", help="beam-search backend (flashlight or pyctcdecode)")
    args = p.parse_args()
    loaded = load_model(args.checkpoint)
    samples = read_dataset(args.data, split=args.split)
    store = LineStore.build(samples, loaded.preprocess)
    usable = [i for i in range(len(samples)) if i not in store.errors]
    arrays = [store[i] for i in usable]
    refs = [samples[i].text for i in usable]
    t0 = time.perf_counter()
    log_probs = line_log_probs(loaded, arrays, batch_size=16)
    model_s = time.perf_counter() - t0
    configs = [("greedy", DecodeConfig(name="greedy")),
               ("beam", DecodeConfig(name="beam", beam_size=args.beam_size, backend=args.backend))]  # fmt: skip
    for spec in args.lm:
        name, path = spec.split("=", 1)
        configs.append((f"beam+{name}", DecodeConfig(name="beam_lm", lm_path=path, beam_size=args.beam_size,
                                                     backend=args.backend)))  # fmt: skip
    rows = []
    for name, cfg in configs:
        dec = make_decoder(cfg, loaded.charset.labels)
        rates = ErrorRates()
        t0 = time.perf_counter()
        hyps = [dec.decode(lp).text for lp in log_probs]
        dt = time.perf_counter() - t0
        for r, h in zip(refs, hyps, strict=True):
            rates.add(r, h)
        row = {"decoder": name, "split": args.split, "lines": rates.lines, "cer": round(rates.cer, 4),
               "wer": round(rates.wer, 4), "decode_lines_per_s": round(len(refs) / dt, 1),
               "model_lines_per_s": round(len(refs) / model_s, 1)}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| decoder | CER | WER | decoding lines/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['decoder']} | {100 * r['cer']:.2f}% | {100 * r['wer']:.2f}% | {r['decode_lines_per_s']} |")


if __name__ == "__main__":
    main()
