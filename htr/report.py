"""``evaluate --report``: one self-contained HTML page for error analysis.

The page (no script, no network: images are ``data:`` URIs, the CSS is inline) shows the CER/WER per dataset,
the most frequent character confusions over all scored lines, and the worst lines with their image and the
reference and prediction, differences marked. The alignment is a minimal Levenshtein alignment (rapidfuzz),
so the marked edits of a line add up to exactly the character errors its CER counts.
"""

from __future__ import annotations

import base64
import html
import io
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from htr.atomic import write_whole
from htr.errors import ImageError
from htr.imageio import load_image

#: Line images are shown (and embedded) at most this many pixels high: legible handwriting, a page of a few MB.
IMAGE_HEIGHT = 64
#: Longest side of an embedded line image (a very long line is scaled down further).
IMAGE_MAX_WIDTH = 1600
#: Rows of each confusion table (substitutions, deletions, insertions).
TOP_CONFUSIONS = 20


def align(reference: str, hypothesis: str) -> list[tuple[str, str, str]]:
    """A minimal edit alignment as ``(op, reference part, hypothesis part)`` segments that cover both strings
    in order; ``op`` is ``equal``, ``replace`` (parts of equal length), ``delete`` or ``insert``."""
    return [
        (op.tag, reference[op.src_start : op.src_end], hypothesis[op.dest_start : op.dest_end])
        for op in Levenshtein.opcodes(reference, hypothesis)
    ]


def confusions(pairs: Iterable[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """Character edits over ``(reference, hypothesis)`` pairs: ``(a, b)`` counts a read as b, ``(a, "")`` a
    deleted, ``("", b)`` b inserted. The counts add up to the summed edit distance (the CER's numerator)."""
    counts: Counter[tuple[str, str]] = Counter()
    for ref, hyp in pairs:
        for op in Levenshtein.editops(ref, hyp):
            a = ref[op.src_pos] if op.tag != "insert" else ""
            b = hyp[op.dest_pos] if op.tag != "delete" else ""
            counts[(a, b)] += 1
    return counts


def _visible(text: str) -> str:
    """Escaped text with spaces shown as ␣ (a deleted or inserted space is otherwise invisible)."""
    return html.escape(text).replace(" ", "␣")


def diff_html(reference: str, hypothesis: str) -> tuple[str, str]:
    """The reference and the hypothesis as escaped HTML: in the reference, characters the model missed in
    ``<del>`` and misread ones in ``<mark>``; in the hypothesis, extra characters in ``<ins>`` and the misreadings
    in ``<mark>``."""
    ref, hyp = [], []
    for op, a, b in align(reference, hypothesis):
        if op == "equal":
            ref.append(html.escape(a))
            hyp.append(html.escape(b))
        elif op == "replace":
            ref.append(f"<mark>{_visible(a)}</mark>")
            hyp.append(f"<mark>{_visible(b)}</mark>")
        elif op == "delete":
            ref.append(f"<del>{_visible(a)}</del>")
        else:
            hyp.append(f"<ins>{_visible(b)}</ins>")
    return "".join(ref), "".join(hyp)


def char_label(c: str) -> str:
    """One character for the confusion table, escaped, with its code point in small print (’ and ' look
    alike); a space as ␣, a combining mark on a dotted circle, other invisible characters by code point alone;
    the Unicode name shows on hover."""
    if not c:
        return '<span class="none">∅</span>'
    kind = unicodedata.category(c)[0]
    shown = "␣" if c == " " else "◌" + c if kind == "M" else "" if kind in "CZ" else c
    name = html.escape(unicodedata.name(c, ""), quote=True)
    glyph = f'<span class="ch">{html.escape(shown)}</span>' if shown else ""
    return f'<span title="{name}">{glyph}<small>U+{ord(c):04X}</small></span>'


def image_data_uri(path: str | Path) -> tuple[str, int, int] | None:
    """The line image scaled to :data:`IMAGE_HEIGHT` as a JPEG ``data:`` URI with its width and height; None
    when it cannot be read (the page then says so instead of failing)."""
    try:
        im = load_image(path)
    except ImageError:
        return None
    scale = min(1.0, IMAGE_HEIGHT / im.height, IMAGE_MAX_WIDTH / im.width)
    if scale < 1.0:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), resample=3)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), im.width, im.height


def worst_lines(results: dict[str, dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The ``limit`` lines with the highest CER (then most errors) over all sources, lines without error
    left out; each row gets its ``source`` and ``errors``."""
    rows = []
    for source, result in results.items():
        for line in result["per_line"]:
            errors = Levenshtein.distance(line["reference"], line["prediction"])
            if errors:
                rows.append({**line, "source": source, "errors": errors})
    rows.sort(key=lambda r: (-r["cer"], -r["errors"], r["source"], r["id"]))
    return rows[:limit]


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _summary_table(results: dict[str, dict[str, Any]], total: dict[str, Any]) -> str:
    head = "<tr><th>data</th><th>CER</th><th>WER</th><th>lines</th><th>characters</th><th>skipped</th></tr>"
    rows = [(name, r, len(r.get("skipped", {}))) for name, r in results.items()]
    if len(results) > 1:
        rows.append(("total", total, sum(len(r.get("skipped", {})) for r in results.values())))
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_pct(r['cer'])}</td><td>{_pct(r['wer'])}</td>"
        f"<td>{r['lines']}</td><td>{r['chars']}</td><td>{skipped}</td></tr>"
        for name, r, skipped in rows
    )
    return f'<table class="summary">{head}{body}</table>'


def _confusion_table(counts: Counter[tuple[str, str]]) -> str:
    """Three tables side by side: characters misread (a → b), missed (deleted) and extra (inserted)."""
    if not counts:
        return "<p>No character errors.</p>"
    total = sum(counts.values())
    groups = {
        "misread (reference → prediction)": Counter({k: n for k, n in counts.items() if k[0] and k[1]}),
        "missed (deleted)": Counter({k: n for k, n in counts.items() if not k[1]}),
        "extra (inserted)": Counter({k: n for k, n in counts.items() if not k[0]}),
    }
    tables = []
    for title, group in groups.items():
        rows = "".join(
            f"<tr><td>{' → '.join(char_label(c) for c in (a, b) if c)}</td><td class=num>{n}</td>"
            f"<td class=num>{100 * n / total:.1f}%</td></tr>"
            for (a, b), n in group.most_common(TOP_CONFUSIONS)
        )
        head = f"<tr><th>{title}: {sum(group.values())}</th><th>count</th><th>of errors</th></tr>"
        tables.append(f'<table class="confusions">{head}{rows}</table>')
    return f"<p>{total} character errors, the most frequent of each kind:</p><div class=row>{''.join(tables)}</div>"


def _line_rows(lines: list[dict[str, Any]], several: bool) -> str:
    out = []
    for rank, line in enumerate(lines, 1):
        ref, hyp = diff_html(line["reference"], line["prediction"])
        image = image_data_uri(line["image"]) if line.get("image") else None
        img = (
            f'<img src="{image[0]}" width="{image[1]}" height="{image[2]}" alt="line {html.escape(line["id"])}">'
            if image
            else '<p class="none">(image unreadable)</p>'
        )
        where = f"{html.escape(line['source'])} · " if several else ""
        out.append(
            f'<tr><td class="num">{rank}</td><td class="num">{_pct(line["cer"])}<br><small>{line["errors"]} '
            f'errors</small></td><td><div class="id">{where}{html.escape(line["id"])}</div>{img}'
            f'<div class="text"><span class="lab">ref</span>{ref or "<span class=none>∅</span>"}</div>'
            f'<div class="text"><span class="lab">hyp</span>{hyp or "<span class=none>∅</span>"}</div></td></tr>'
        )
    return "".join(out)


CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1700px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px solid #e4e4e4;vertical-align:top}
th{text-align:left;background:#f3f3f3}table.summary td:not(:first-child){text-align:right}
.meta{color:#555}.num{text-align:right;white-space:nowrap}.id{color:#555;font-size:.85em}
img{display:block;max-width:100%;height:auto;margin:.2em 0;border:1px solid #ddd}
.text{font-family:Georgia,serif;font-size:1.15em;white-space:pre-wrap}
.lab{display:inline-block;width:2.6em;color:#888;font:.75em system-ui,sans-serif}
del{background:#ffd0d0;color:#900;text-decoration:line-through}
ins{background:#c8f0c8;color:#060;text-decoration:none}mark{background:#ffe08a;color:#000}
.ch{font-family:Georgia,serif;font-size:1.2em;padding:0 .3em;background:#f3f3f3}
small{color:#888;margin-left:.4em}.row{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}.none{color:#aaa}
"""


def build_report(
    results: dict[str, dict[str, Any]], total: dict[str, Any], meta: dict[str, str], max_lines: int = 200
) -> str:
    """The page for :func:`htr.evaluate.evaluate` results by dataset name, their ``total`` (the result itself
    when there is one dataset) and ``meta`` (checkpoint, split, decoder: shown under the title)."""
    pairs = ((line["reference"], line["prediction"]) for r in results.values() for line in r["per_line"])
    lines = worst_lines(results, max_lines)
    n_wrong = sum(1 for r in results.values() for line in r["per_line"] if line["reference"] != line["prediction"])
    missing = Counter()
    for r in results.values():
        missing.update(r.get("unknown_chars", {}))
    meta_html = " · ".join(f"{html.escape(k)} <b>{html.escape(v)}</b>" for k, v in meta.items())
    parts = [
        f"<h1>htr error analysis</h1><p class=meta>{meta_html}</p>",
        _summary_table(results, total),
    ]
    if missing:
        chars = ", ".join(f"{char_label(c)} ×{n}" for c, n in missing.most_common())
        parts.append(f"<p>Reference characters the model's charset lacks (always errors): {chars}</p>")
    parts += ["<h2>Character confusions</h2>", _confusion_table(confusions(pairs))]
    parts += ["<h2>Worst lines</h2>", f"<p>The {len(lines)} lines with the highest CER, of the {n_wrong} with errors."]
    if lines:
        head = "<tr><th>#</th><th>CER</th><th>line</th></tr>"
        parts.append(f'<table class="lines">{head}{_line_rows(lines, len(results) > 1)}</table>')
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>htr error analysis</title>'
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_report(path: str | Path, page: str) -> None:
    """Write ``page`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    write_whole(Path(path), lambda tmp: tmp.write_text(page, encoding="utf-8"), "the report")
