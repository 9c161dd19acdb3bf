"""``python -m htr.evaluate CHECKPOINT DATA [--split test] [--json] [--report page.html]``: CER and WER of a model
on a dataset, and optionally an HTML page of its errors."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from htr.cli import add_backend_arg, add_decoder_args, decode_config, run, writable_output
from htr.data.formats import read_dataset
from htr.data.lines import LineStore
from htr.decode import DecodeConfig
from htr.errors import DataError
from htr.inference import LoadedModel, OnnxModel, load_model, recognize_lines
from htr.metrics import ErrorRates
from htr.report import build_report, write_report


def evaluate(
    loaded: LoadedModel | OnnxModel,
    data: str | Path,
    split: str | None = "test",
    decode_cfg: DecodeConfig | None = None,
    batch_size: int = 16,
    cache_dir: str | Path | None = None,
    max_bad_fraction: float = 0.05,
) -> dict[str, Any]:
    """Recognize every line of ``data`` (one split) and score it against its transcription.

    Lines whose image cannot be used are listed under ``skipped`` (and not scored); characters of the
    references that the model's charset lacks are counted under ``unknown_chars`` (the model cannot produce
    them, so they count as errors).
    """
    samples = read_dataset(data, split=split)
    if not samples:
        raise DataError(f"no lines in split {split!r}", data)
    store = LineStore.build(samples, loaded.preprocess, cache_dir)
    usable = [i for i in range(len(samples)) if i not in store.errors]
    if not usable or len(store.errors) > max_bad_fraction * len(samples):
        # A CER over the few lines that could be read would look like a result and not be one.
        first = next(iter(store.errors.values()))
        raise DataError(
            f"{len(store.errors)} of {len(samples)} line images of split {split!r} are unusable (first: {first}), "
            f"more than --max-bad-fraction {max_bad_fraction}; fix the data or raise it",
            data,
        )
    hyps = recognize_lines(loaded, [store[i] for i in usable], decode_cfg, batch_size)
    rates, unknown, per_line = ErrorRates(), Counter(), []
    for i, h in zip(usable, hyps, strict=True):
        s = samples[i]
        unknown.update(loaded.charset.missing(s.text))
        score = rates.add(s.text, h.text)
        row = {"id": s.id, "reference": s.text, "prediction": h.text, "cer": score.cer, "wer": score.wer}
        per_line.append({**row, "image": str(s.image)})
    return {
        "cer": rates.cer,
        "wer": rates.wer,
        "lines": rates.lines,
        "chars": rates.chars,
        "words": rates.words,
        "char_errors": rates.char_errors,
        "word_errors": rates.word_errors,
        "skipped": {samples[i].id: msg for i, msg in store.errors.items()},
        "unknown_chars": dict(unknown.most_common()),
        "per_line": per_line,
    }


def main() -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m htr.evaluate", description=__doc__)
    p.add_argument("checkpoint", help="a checkpoint (best.pt), or 'default' for the model shipped with htr")
    p.add_argument(
        "data", nargs="+",
        help="a lines.tsv, an IAM lines.txt (or its folder), or a folder of image + .gt.txt pairs; several: one "
        "row per dataset and the total over all their lines",
    )  # fmt: skip
    p.add_argument("--split", default="test", help="split to score (default test; 'all' for every line)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--per-line", metavar="TSV", help="write id, reference, prediction, CER of every line")
    p.add_argument(
        "--max-bad-fraction", type=float, default=0.05,
        help="refuse to score a split with more than this fraction of unusable images (default 0.05)",
    )  # fmt: skip
    p.add_argument(
        "--report", metavar="HTML",
        help="write one self-contained HTML page: CER/WER, the most frequent character confusions, the worst lines "
        "with their image and the differences marked",
    )  # fmt: skip
    p.add_argument(
        "--report-lines", type=non_negative_int, default=200, metavar="N",
        help="worst lines shown (with their images) in --report (default 200)",
    )  # fmt: skip
    add_decoder_args(p)
    add_backend_arg(p)
    args = p.parse_args()
    for out in (args.per_line, args.report):
        if out:  # before a long evaluation, not after it
            writable_output(out)
    loaded = load_model(args.checkpoint, args.device, args.backend)
    split = None if args.split == "all" else args.split
    decoder = decode_config(args)
    if decoder.name != "greedy":  # which weights and beam the figures come from (LM.json may set them)
        from htr.decode.beam import describe

        print(f"decoding: {describe(decoder)}", file=sys.stderr)
    if len(args.data) > 1:
        return _evaluate_several(loaded, args, split)
    result = evaluate(loaded, args.data[0], split, decoder, args.batch_size, max_bad_fraction=args.max_bad_fraction)
    _report(args, {source_name(args.data[0]): result}, result)
    if args.per_line:
        with open(args.per_line, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
            w.writerow(["id", "reference", "prediction", "cer"])
            for r in result["per_line"]:
                w.writerow([r["id"], r["reference"], r["prediction"], f"{r['cer']:.4f}"])
    if args.json:
        out = {k: v for k, v in result.items() if k != "per_line"}
        print(json.dumps(out, ensure_ascii=False))
    else:
        cer, wer = 100 * result["cer"], 100 * result["wer"]
        print(f"CER {cer:.2f}%  WER {wer:.2f}%  lines {result['lines']}  chars {result['chars']}")
        if result["skipped"]:
            print(f"skipped {len(result['skipped'])} lines with unusable images:", file=sys.stderr)
            for sid, msg in list(result["skipped"].items())[:10]:
                print(f"  {sid}: {msg}", file=sys.stderr)
        if result["unknown_chars"]:
            chars = " ".join(f"{c!r}x{n}" for c, n in result["unknown_chars"].items())
            print(f"reference characters the model's charset lacks (counted as errors): {chars}", file=sys.stderr)
    return 0


def source_name(data: str | Path) -> str:
    """A dataset's row name: its folder's name for a manifest or ``lines.txt``, else its own name."""
    p = Path(data)
    return p.parent.name if p.suffix in (".tsv", ".txt") else p.name


def combine(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The total over several :func:`evaluate` results: errors and lengths added up (a pooled CER/WER)."""
    keys = ("lines", "chars", "words", "char_errors", "word_errors")
    rates = ErrorRates(**{k: sum(r[k] for r in results.values()) for k in keys})
    return {**{k: getattr(rates, k) for k in keys}, "cer": rates.cer, "wer": rates.wer}


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _report(args: argparse.Namespace, results: dict[str, dict[str, Any]], total: dict[str, Any]) -> None:
    """Write ``--report`` (if asked for) for results by dataset name and their total."""
    if not args.report:
        return
    decoder = decode_config(args)
    meta = {"checkpoint": str(args.checkpoint), "split": args.split, "decoder": decoder.name}
    if decoder.lm_path:
        meta["LM"] = str(decoder.lm_path)
    write_report(args.report, build_report(results, total, meta, args.report_lines))


def _evaluate_several(loaded: LoadedModel | OnnxModel, args: argparse.Namespace, split: str | None) -> int:
    """One row per dataset, then the total; ``--json``: one object with ``sources`` and the totals."""
    names = [source_name(d) for d in args.data]
    if len(set(names)) < len(names):
        names = [str(d) for d in args.data]
    results = {
        n: evaluate(loaded, d, split, decode_config(args), args.batch_size, max_bad_fraction=args.max_bad_fraction)
        for n, d in zip(names, args.data)
    }
    total = combine(results)
    _report(args, results, total)
    if args.per_line:
        with open(args.per_line, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
            w.writerow(["source", "id", "reference", "prediction", "cer"])
            for n, r in results.items():
                for line in r["per_line"]:
                    w.writerow([n, line["id"], line["reference"], line["prediction"], f"{line['cer']:.4f}"])
    if args.json:
        per = {n: {k: v for k, v in r.items() if k != "per_line"} for n, r in results.items()}
        print(json.dumps({"sources": per, **total}, ensure_ascii=False))
        return 0
    width = max(len(n) for n in [*names, "total"])
    print(f"{'data':<{width}}  {'CER':>7}  {'WER':>7}  {'lines':>6}  {'chars':>7}")
    for n, r in [*results.items(), ("total", total)]:
        print(f"{n:<{width}}  {100 * r['cer']:6.2f}%  {100 * r['wer']:6.2f}%  {r['lines']:>6}  {r['chars']:>7}")
    for n, r in results.items():
        if r["skipped"]:
            print(f"{n}: skipped {len(r['skipped'])} lines with unusable images", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
