"""Pick the LM weight and the insertion penalty on a validation split, and store them next to the LM.

The optical model runs once; each candidate setting only re-decodes the stored log-probabilities. The best
setting (lowest CER, then WER) is written to ``LM.json`` so ``recognize --lm LM`` and ``evaluate --lm LM`` use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from htr.data.formats import read_dataset
from htr.data.lines import LineStore
from htr.decode import DecodeConfig, make_decoder
from htr.errors import DataError
from htr.inference import line_log_probs, load_model
from htr.lm.files import update_meta
from htr.metrics import ErrorRates


def tune(
    checkpoint: str | Path,
    data: str | Path | list[str | Path],
    lm_path: str | Path,
    split: str | None = "val",
    weights: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.3),
    penalties: tuple[float, ...] = (0.0, 1.0, 2.0),
    beam_size: int = 16,
    max_lines: int | None = None,
    say: Any = print,
) -> dict[str, Any]:
    """Grid-search ``lm_weight`` x ``word_insertion_penalty``; write the best to ``LM.json`` and return it.

    ``data`` may list several datasets: their lines (``max_lines`` of each) are pooled, so the values chosen
    minimize the CER over all of them."""
    loaded = load_model(checkpoint)
    datasets = data if isinstance(data, list) else [data]
    samples = [s for d in datasets for s in read_dataset(d, split=split)[:max_lines]]
    if not samples:
        raise DataError(f"no lines in split {split!r} to tune on", data)
    store = LineStore.build(samples, loaded.preprocess)
    usable = [i for i in range(len(samples)) if i not in store.errors]
    log_probs = line_log_probs(loaded, [store[i] for i in usable])
    refs = [samples[i].text for i in usable]
    results = []
    for w in weights:
        for pen in penalties if w > 0 else (0.0,):
            cfg = DecodeConfig(name="beam_lm", lm_path=str(lm_path), lm_weight=w, word_insertion_penalty=pen,
                               beam_size=beam_size)  # fmt: skip
            dec = make_decoder(cfg, loaded.charset.labels)
            rates = ErrorRates()
            for ref, lp in zip(refs, log_probs, strict=True):
                rates.add(ref, dec.decode(lp).text)
            results.append({"lm_weight": w, "word_insertion_penalty": pen, "cer": rates.cer, "wer": rates.wer})
            say(f"lm_weight {w:.2f} penalty {pen:.1f}: CER {100 * rates.cer:.2f}% WER {100 * rates.wer:.2f}%")
    best = min(results, key=lambda r: (r["cer"], r["wer"]))
    update_meta(lm_path, {
        "lm_weight": best["lm_weight"], "word_insertion_penalty": best["word_insertion_penalty"],
        "backend": "flashlight", "tuned_on": f"{', '.join(map(str, datasets))} split {split} ({len(refs)} lines)",
        "tuned_cer": best["cer"], "tuned_wer": best["wer"],
    })  # fmt: skip
    return {"best": best, "grid": results, "lines": len(refs)}
