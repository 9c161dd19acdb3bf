#!/usr/bin/env python3
"""Side-by-side table of htr and its peers from one run's results.jsonl (run_peers.sh + scripts/peers_htr.sh).

    python scripts/peers_report.py /tmp/peer/results/<run>/results.jsonl [--json]

Per system: parameters, training lines/s, test CER/WER after the training budget, recognition lines/s
(start-up and model loading excluded: 199 / (wall of 200 lines - wall of 1 line)) at batch 1 and 16, the wall
time of recognizing one line from a cold process, and htr's ratios against each peer.

Training lines/s is bench.py's ``train_lines_per_s_overall`` (lines trained / time from the first step to the end,
validation and checkpoints included) where the progress bar gives it, else the tool's own per-epoch training-loop
rate (PyLaia). bench.py's "steady" rate re-reads the end of its output buffer after each read and can credit the
previous epoch's progress to the new one: for htr it gave 275 lines/s where 35 epochs of 2,000 lines in 555 s
are 126; it is printed as well, not used for the ratios.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: (system, label, recognition bench name prefix, CER row name) per recognizer configuration
RECOGNIZERS = [
    ("kraken", "kraken ketos test", "kraken_ketostest_b{b}", "kraken_cer_ocr"),
    ("kraken", "kraken ocr", "kraken_ocr_b{b}", "kraken_cer_ocr"),
    ("pylaia", "PyLaia", "pylaia_decode_b{b}", "pylaia_cer_b16"),
    ("calamari", "Calamari", "calamari_predict_b{b}", "calamari_cer_b16"),
    ("htr", "htr (PyTorch)", "htr_recognize_torch_b{b}", "htr_cer_torch_b16"),
    ("htr", "htr (onnxruntime)", "htr_recognize_onnxruntime_b{b}", "htr_cer_onnxruntime_b16"),
]


def load(path: Path) -> dict[str, dict]:
    """Rows of a results.jsonl by name (the last one of a name wins)."""
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("{"):
            row = json.loads(line)
            if "name" in row:
                rows[row["name"]] = row
    return rows


def recognition_rate(rows: dict[str, dict], prefix: str) -> tuple[float | None, float | None, float | None]:
    """(lines/s without start-up, lines/s end to end, wall s of one line) for a recognizer bench prefix."""
    many = next((r for n, r in rows.items() if n.startswith(prefix + "_n") and not n.endswith("_n1")), None)
    one = rows.get(prefix + "_n1")
    if not many or not one or many.get("rc") or one.get("rc"):
        return None, None, None
    n = int(many["name"].rsplit("_n", 1)[1])
    d = many["wall_s"] - one["wall_s"]
    return (round((n - 1) / d, 1) if d > 0 else None), round(n / many["wall_s"], 1), one["wall_s"]


def summarize(rows: dict[str, dict]) -> dict[str, dict]:
    """One dict of figures per recognizer configuration."""
    out = {}
    for system, label, prefix, cer_name in RECOGNIZERS:
        if not any(n.startswith(prefix.format(b="")) for n in rows):
            continue
        bench = rows.get(f"{system}_train") or {}
        own = rows.get(f"{system}_train_epochs") or {}
        cer = rows.get(cer_name) or {}
        fig = {
            "system": system,
            "params": (rows.get(f"{system}_params") or {}).get("n_params"),
            "train_lines_per_s": bench.get("train_lines_per_s_overall") or own.get("train_lines_per_s_steady"),
            "train_lines_per_s_bench_steady": bench.get("train_lines_per_s_steady"),
            "train_other_cores": (rows.get(f"{system}_train") or {}).get("other_cores"),
            "cer": cer.get("cer"),
            "wer": cer.get("wer"),
        }
        for b in (1, 8, 16):
            rate, e2e, cold = recognition_rate(rows, prefix.format(b=b))
            if rate is not None:
                fig[f"b{b}_lines_per_s"] = rate
                fig[f"b{b}_lines_per_s_e2e"] = e2e
                fig.setdefault("one_line_cold_s", cold)
        out[label] = fig
    if "htr_cold_recognize_default" in rows:
        out.setdefault("htr (PyTorch)", {})["default_model_cold_s"] = rows["htr_cold_recognize_default"]["wall_s"]
    return out


def fmt(v: object, pct: bool = False) -> str:
    """A table cell."""
    if v is None:
        return "-"
    if pct:
        return f"{100 * float(v):.1f}%"
    return f"{v:,}" if isinstance(v, int) else str(v)


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as ``2.1x``, or ``-``."""
    return f"{a / b:.2f}x" if a and b else "-"


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path)
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = p.parse_args()
    rows = load(args.results)
    figs = summarize(rows)
    if args.json:
        print(json.dumps(figs, indent=1))
        return
    env = rows.get("env", {})
    cpu, cpus, budget = env.get("cpu", "?"), env.get("host_cpus", "?"), env.get("train_budget_s")
    print(f"machine: {cpu}, {cpus} CPUs; training budget {budget} s")
    print()
    print(
        "| system | params | train lines/s | test CER | test WER | recog. lines/s b1 | b16 (b8 PyLaia) | 1 line cold |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, f in figs.items():
        b16 = f.get("b16_lines_per_s") or f.get("b8_lines_per_s")
        print(
            f"| {label} | {fmt(f.get('params'))} | {fmt(f.get('train_lines_per_s'))} | {fmt(f.get('cer'), True)} | "
            f"{fmt(f.get('wer'), True)} | {fmt(f.get('b1_lines_per_s'))} | {fmt(b16)} | "
            f"{fmt(f.get('one_line_cold_s'))} s |"
        )
    ours = figs.get("htr (onnxruntime)") or figs.get("htr (PyTorch)")
    mine = figs.get("htr (PyTorch)", {})
    if not ours:
        return
    print()
    print("| htr vs | training lines/s | CER (peer / htr) | recognition lines/s, htr b16 vs the peer's best batch "
          "(onnxruntime; PyTorch) | 200 lines end to end |")  # fmt: skip
    print("|---|---|---|---|---|")
    for label, f in figs.items():
        if f.get("system") == "htr":
            continue
        best = max((f.get(f"b{b}_lines_per_s") or 0, b) for b in (1, 8, 16))
        best_e2e = max(f.get(f"b{b}_lines_per_s_e2e") or 0 for b in (1, 8, 16))
        print(
            f"| {label} | {ratio(mine.get('train_lines_per_s'), f.get('train_lines_per_s'))} | "
            f"{ratio(f.get('cer'), mine.get('cer'))} | {ratio(ours.get('b16_lines_per_s'), best[0])}; "
            f"{ratio(mine.get('b16_lines_per_s'), best[0])} (peer batch {best[1]}) | "
            f"{ratio(ours.get('b16_lines_per_s_e2e'), best_e2e)} |"
        )


if __name__ == "__main__":
    main()
