"""Time the CTC decoders: greedy, beam (each backend), beam + LM (each backend), as JSON lines of ms/line.

    python scripts/bench_decode.py --lm lm/brown-char6.arpa [--word-lm lm/brown-word3.arpa] [--lines 20]
    python scripts/bench_decode.py --log-probs out.npy    # (N, T, C) or (T, C) float log-softmax, blank = 0

Without ``--log-probs`` the lines are synthetic CTC outputs (T=200, C=120 by default): "peaky" (a spike of
the right label every few frames, blank elsewhere, Gaussian noise on the logits: like a trained model) or
"uniform" (pure noise: the worst case for beam search). With ``--text`` the spikes spell lines of that text
file (so an LM sees real words); otherwise random letters and spaces.
"""

from __future__ import annotations

import argparse
import json
import string
import time
from pathlib import Path

import numpy as np

from htr.charset import Charset
from htr.decode import DecodeConfig, make_decoder

EXTRA = "àáâäæçèéêëìíîïñòóôöùúûüßœøåÀÉÈÇÑÖÜ"


def make_labels(n_labels: int) -> list[str]:
    """``n_labels`` labels: the blank, the space, letters, digits, punctuation, accented letters."""
    chars = list(" " + string.ascii_lowercase + string.ascii_uppercase + string.digits + string.punctuation)
    chars += EXTRA
    if n_labels - 1 > len(chars):
        raise SystemExit(f"at most {len(chars) + 1} labels")
    return Charset(chars[: n_labels - 1]).labels


def synthetic(labels: list[str], n: int, t: int, kind: str, texts: list[str], seed: int) -> list[np.ndarray]:
    """Log-softmax matrices (T, C) of ``kind`` "peaky" or "uniform"."""
    rng = np.random.default_rng(seed)
    c = len(labels)
    index = {ch: i for i, ch in enumerate(labels)}
    letters = [index[ch] for ch in string.ascii_lowercase + "  " if ch in index]
    out = []
    for j in range(n):
        if kind == "uniform":
            logits = rng.normal(0.0, 1.0, (t, c))
        else:
            logits = rng.normal(0.0, 1.5, (t, c))
            logits[:, 0] += 10.0
            if texts:
                ids = [index[ch] for ch in texts[j % len(texts)] if ch in index]
            else:
                ids = list(rng.choice(letters, size=t // 3))
            step = max(1, t // max(1, len(ids)))
            for k, i in enumerate(ids[: t // step]):
                logits[k * step + step // 2, i] += 12.0
        logits -= logits.max(axis=1, keepdims=True)
        out.append((logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32))
    return out


def bench(name: str, decoder, batch: list[np.ndarray], extra: dict) -> dict:  # noqa: ANN001
    """Decode ``batch`` once to warm up, then time a second pass."""
    decoder.decode(batch[0])
    start = time.perf_counter()
    hyps = decoder.decode_batch(batch)
    ms = (time.perf_counter() - start) * 1000 / len(batch)
    return {
        "decoder": name,
        **extra,
        "ms_per_line": round(ms, 3),
        "lines": len(batch),
        "example": hyps[0].text,
    }


def main() -> None:
    """Run the benchmark and print one JSON object per decoder configuration."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--log-probs", type=Path, help=".npy of (N, T, C) or (T, C) log-probs (blank = label 0)")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--labels", type=int, default=120)
    p.add_argument("--lines", type=int, default=20)
    p.add_argument("--kind", choices=["peaky", "uniform"], default="peaky")
    p.add_argument("--text", type=Path, help="text lines to spell in synthetic peaky output")
    p.add_argument("--lm", help="character LM (ARPA) for the beam_lm rows")
    p.add_argument("--word-lm", help="word LM (ARPA with PATH.lexicon) for extra beam_lm rows")
    p.add_argument("--beam-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    if args.log_probs:
        arr = np.load(args.log_probs)
        batch = [arr] if arr.ndim == 2 else list(arr)
        labels = make_labels(batch[0].shape[1])
    else:
        labels = make_labels(args.labels)
        texts = args.text.read_text(encoding="utf-8").splitlines() if args.text else []
        batch = synthetic(labels, args.lines, args.frames, args.kind, texts, args.seed)
    shape = {"T": int(batch[0].shape[0]), "C": int(batch[0].shape[1])}

    runs: list[tuple[str, str | None, str | None]] = [("greedy", None, None)]
    runs += [("beam", b, None) for b in ("flashlight", "pyctcdecode")]
    for lm in (args.lm, args.word_lm):
        if lm:
            runs += [("beam_lm", b, lm) for b in ("flashlight", "pyctcdecode")]
    for name, backend, lm in runs:
        cfg = DecodeConfig(name=name, backend=backend or "flashlight", beam_size=args.beam_size, lm_path=lm)
        start = time.perf_counter()
        decoder = make_decoder(cfg, labels)
        load_s = time.perf_counter() - start
        extra = {"backend": backend, "lm": lm, "beam_size": args.beam_size if backend else None, **shape}
        extra["load_s"] = round(load_s, 2)
        print(json.dumps(bench(name, decoder, batch, extra)), flush=True)


if __name__ == "__main__":
    main()
