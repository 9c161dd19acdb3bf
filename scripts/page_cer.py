#!/usr/bin/env python3
"""Page-level CER: recognize whole pages, with our line segmentation and with the XML's own lines.

    python scripts/page_cer.py runs/copiste_cpu/best.pt [../shared/data/copiste-alto] [--draw OUT_DIR]

For each PAGE/ALTO file of PAGE_DIR (default ``../shared/data/copiste-alto``) the page is recognized twice:
(a) ``segmented``: the page image alone, its lines found by :func:`htr.segment.segment_lines`;
(b) ``xml``: the XML's line polygons, as they are.
Each is scored against the page's ground truth, its XML lines' texts (normalized) in file order:
``cer_newline`` joins the lines with newlines (the hypothesis's lines likewise), so a missed, split or merged
line costs its line breaks; ``cer_space`` joins them with spaces, forgiving line breaks only.

Prints one JSON object per page and method, then one summary object per method (totals over all pages:
character errors / reference characters). ``--draw`` writes each page with its segmented lines outlined.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from htr.charset import normalize_text
from htr.cli import add_backend_arg, add_decoder_args, decode_config
from htr.data.formats.pages import page_xml_files, parse_page_file
from htr.decode import make_decoder
from htr.inference import load_model
from htr.metrics import ErrorRates
from htr.page import draw_lines, page_lines, recognize_page

REPO = Path(__file__).resolve().parents[1]

DEFAULT_PAGES = REPO.parent / "shared" / "data" / "copiste-alto"


def main() -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a .pt or .onnx checkpoint")
    p.add_argument("pages", nargs="?", default=str(DEFAULT_PAGES), help="folder of PAGE/ALTO files and page images")
    p.add_argument("--draw", metavar="DIR", help="write each page with its segmented lines outlined (PNG) here")
    add_decoder_args(p)
    add_backend_arg(p)
    args = p.parse_args()
    xmls = page_xml_files(args.pages)
    if not xmls:
        print(f"{args.pages}: no PAGE or ALTO files", file=sys.stderr)
        return 2
    loaded = load_model(args.checkpoint, args.device, args.backend)
    decoder = make_decoder(decode_config(args), loaded.charset.labels)
    totals = {m: {"newline": ErrorRates(), "space": ErrorRates(), "lines": 0, "xml_lines": 0, "seconds": 0.0}
              for m in ("segmented", "xml")}  # fmt: skip
    for xml in xmls:
        doc = parse_page_file(xml)
        reference = [normalize_text(line.text) for line in doc.lines]
        for method, source in (("segmented", doc.image), ("xml", doc)):
            start = time.perf_counter()
            lines = page_lines(source)
            segmented = time.perf_counter()
            result = recognize_page(loaded, lines, batch_size=args.batch_size, decoder=decoder)
            done = time.perf_counter()
            hypothesis = [normalize_text(line.text) for line in result.lines]
            t = totals[method]
            nl = t["newline"].add("\n".join(reference), "\n".join(hypothesis))
            sp = t["space"].add(" ".join(reference), " ".join(hypothesis))
            t["lines"] += len(hypothesis)
            t["xml_lines"] += len(reference)
            t["seconds"] += done - start
            row = {
                "page": xml.stem,
                "method": method,
                "lines": len(hypothesis),
                "xml_lines": len(reference),
                "cer_newline": round(nl.cer, 4),
                "cer_space": round(sp.cer, 4),
                "wer": round(sp.wer, 4),
                "chars": sp.chars,
                "lines_s": round(segmented - start, 3),
                "recognize_s": round(done - segmented, 3),
            }
            print(json.dumps(row, ensure_ascii=False), flush=True)
            if args.draw and method == "segmented":
                Path(args.draw).mkdir(parents=True, exist_ok=True)
                draw_lines(lines.page, lines.polygons).save(Path(args.draw) / f"{xml.stem}.png")
    for method, t in totals.items():
        summary = {
            "summary": method,
            "pages": len(xmls),
            "lines": t["lines"],
            "xml_lines": t["xml_lines"],
            "cer_newline": round(t["newline"].cer, 4),
            "cer_space": round(t["space"].cer, 4),
            "wer": round(t["space"].wer, 4),
            "seconds_per_page": round(t["seconds"] / len(xmls), 3),
        }
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
