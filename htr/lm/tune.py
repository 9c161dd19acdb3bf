"""Pick the LM weight, the insertion penalty and the beam threshold on a validation split; store them by the LM.

The optical model runs once; each candidate setting only re-decodes the stored log-probabilities. The best
weight and penalty (lowest CER, then WER) are chosen at the widest beam threshold. Then, at those, narrower
thresholds are tried in turn while the CER does not rise, and the narrowest is kept, since a narrower beam prunes
more hypotheses and labels per frame and decodes faster. How far the beam can be narrowed depends on the model
(how peaked its frames are) and on the LM weight, hence a tuned value rather than one default. The choice is
written to ``LM.json`` so ``recognize --lm LM`` and ``evaluate --lm LM`` use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from htr.data.formats import read_dataset
from htr.data.lines import LineStore
from htr.decode import DecodeConfig
from htr.decode.beam import make_beam_decoder
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
    beam_thresholds: tuple[float, ...] = (20.0, 12.0, 8.0, 5.0),
    max_lines: int | None = None,
    say: Any = print,
) -> dict[str, Any]:
    """Grid-search ``lm_weight`` x ``word_insertion_penalty``, then narrow the beam; write the best to ``LM.json``.

    ``data`` may list several datasets: their lines (``max_lines`` of each) are pooled, so the values chosen
    minimize the CER over all of them. The grid runs at the widest of ``beam_thresholds``; narrower ones are
    then tried at the best weight and penalty (:func:`narrow`), judged on CER alone (the WER may differ).
    Values stored by an earlier tune are not used while tuning. Returns the best setting, the grid, the
    thresholds tried (with decoding ms per line) and the number of lines."""
    if not beam_thresholds:
        raise ValueError("beam_thresholds: give at least one")
    loaded = load_model(checkpoint)
    datasets = data if isinstance(data, list) else [data]
    samples = [s for d in datasets for s in read_dataset(d, split=split)[:max_lines]]
    if not samples:
        raise DataError(f"no lines in split {split!r} to tune on", data)
    store = LineStore.build(samples, loaded.preprocess)
    usable = [i for i in range(len(samples)) if i not in store.errors]
    if not usable:
        raise DataError(f"none of the {len(samples)} lines in split {split!r} could be read to tune on", data)
    log_probs = line_log_probs(loaded, [store[i] for i in usable])
    refs = [samples[i].text for i in usable]
    widest, *narrower = sorted(set(beam_thresholds), reverse=True)

    def score(w: float, pen: float, threshold: float) -> dict[str, Any]:
        cfg = DecodeConfig(name="beam_lm", lm_path=str(lm_path), lm_weight=w, word_insertion_penalty=pen,
                           beam_size=beam_size, beam_threshold=threshold)  # fmt: skip
        dec = make_beam_decoder(cfg, loaded.charset.labels, apply_tuned=False)  # values stored by a last tune: not here
        rates, start = ErrorRates(), time.perf_counter()
        for ref, lp in zip(refs, log_probs, strict=True):
            rates.add(ref, dec.decode(lp).text)
        ms = 1000 * (time.perf_counter() - start) / len(refs)
        r = {"lm_weight": w, "word_insertion_penalty": pen, "beam_threshold": threshold, "cer": rates.cer,
             "wer": rates.wer, "ms_per_line": ms}  # fmt: skip
        say(f"lm_weight {w:.2f} penalty {pen:.1f} beam_threshold {threshold:g}: CER {100 * rates.cer:.2f}% "
            f"WER {100 * rates.wer:.2f}% ({ms:.1f} ms/line)")  # fmt: skip
        return r

    grid = [score(w, pen, widest) for w in weights for pen in (penalties if w > 0 else (0.0,))]
    best_wide = min(grid, key=lambda r: (r["cer"], r["wer"]))
    w, pen = best_wide["lm_weight"], best_wide["word_insertion_penalty"]
    best, narrowed = narrow(best_wide, narrower, lambda t: score(w, pen, t))
    update_meta(lm_path, {
        "lm_weight": best["lm_weight"], "word_insertion_penalty": best["word_insertion_penalty"],
        "beam_threshold": best["beam_threshold"], "char_bonus": 0.0, "backend": "flashlight",
        "tuned_on": f"{', '.join(map(str, datasets))} split {split} ({len(refs)} lines)",
        "tuned_cer": best["cer"], "tuned_wer": best["wer"],
    })  # fmt: skip
    return {"best": best, "grid": grid, "thresholds": narrowed, "lines": len(refs)}


def narrow(
    wide: dict[str, Any], narrower: list[float], score: Callable[[float], dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The narrowest setting kept, and all tried: ``wide``, then ``score`` of each of ``narrower`` (widest first)
    up to the first whose CER is higher than ``wide``'s.

    Narrowing stops there rather than trying on: a narrower beam that ties again after one that lost is more
    likely luck on these lines than a safe setting."""
    kept, tried = wide, [wide]
    for threshold in narrower:
        tried.append(score(threshold))
        if tried[-1]["cer"] > wide["cer"]:
            break
        kept = tried[-1]
    return kept, tried
