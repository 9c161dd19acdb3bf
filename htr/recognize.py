"""``python -m htr.recognize IMAGE [IMAGE ...] [--checkpoint CKPT] [--json]``: read text lines.

Prints one recognized text per image, in order. Arguments may be files, folders (their images, sorted) or
glob patterns. An image that cannot be read, an empty folder or a pattern that matches nothing gets one
sentence on stderr naming it; the others are still recognized, and the exit status is 1.

``--backend onnxruntime`` (the default for a ``.onnx`` checkpoint, and for the default model on the CPU, whose
export ships with it) runs the model with onnxruntime on the CPU; PyTorch is then not even imported.
The checkpoint is then a ``.onnx`` file from ``python -m htr.export`` (all it needs: the charset and
preprocessing settings are in its metadata), or a ``.pt`` checkpoint, exported on first use and cached next to
it as ``CKPT.onnx`` (``best.pt`` -> ``best.pt.onnx``, exported again when the checkpoint changes; kept in memory
only when that folder is not writable).

``--page``: each input is a whole page. A page image has its lines found by :mod:`htr.segment`; a PAGE or ALTO
``.xml`` file (given by name or glob; a folder gives its images only) has its own lines used as they are, cut from
the page image it names. The page's text is printed, one line per text line in reading order (pages one after
another); with ``--json``, one object per page: ``{"image", "lines": [{"text", "confidence", "box",
"polygon"}], "text"}`` (and ``"xml"`` for an XML input), see :meth:`htr.page.PageResult.to_json`.

``--output-format page|alto`` writes one PAGE XML (2019) or ALTO (v4.2) file per input instead (a line image is
a page of one line), ``--output-format txt|json`` with ``--output-dir`` one text or JSON file; see
:mod:`htr.outputs` for where they go and what is refused, and :mod:`htr.xmlout` for what they hold.

A progress bar goes to stderr for more than 8 line images, or for pages (counting their lines), when stderr is
a terminal; ``--quiet`` turns it off.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from htr.cli import add_backend_arg, add_decoder_args, decode_config, run
from htr.data.lines import preprocess_image
from htr.decode import make_decoder
from htr.errors import HTRError, ImageError
from htr.imageio import IMAGE_SUFFIXES, load_image
from htr.inference import LoadedModel, OnnxModel, load_model, physical_cores, recognize_lines
from htr.outputs import FORMATS, Output, line_page
from htr.page import PageResult, is_page_xml, page_lines, recognize_page
from htr.progress import progress


def expand_inputs(args: list[str]) -> list[Path | ImageError]:
    """Files as given; folders to their image files (sorted); glob patterns to their matches (sorted).

    An empty folder or a pattern that matches nothing becomes an :class:`ImageError` in its place, reported in
    order like an unreadable file: one bad argument does not stop the others from being read.
    """
    out: list[Path | ImageError] = []
    for a in args:
        p = Path(a)
        try:
            is_dir, exists = p.is_dir(), p.exists()
        except OSError:  # a name too long for the disk: reading it says so, in its place
            is_dir, exists = False, True
        if is_dir:
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            out.extend(found or [ImageError("the folder holds no images", p)])
        elif not exists and any(ch in a for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(a, recursive=True))
            out.extend(matches or [ImageError("no file matches this pattern", a)])
        else:
            out.append(p)
    return out


#: More line images than this get a progress bar (on a terminal, without --quiet).
PROGRESS_FROM = 8


def progress_bar(total: int | None, unit: str, quiet: bool, show: bool = True) -> Any:
    """A tqdm bar on stderr, shown only on a terminal, and not with ``quiet`` or when ``show`` is false."""
    return progress(total=total, unit=unit, disable=True if quiet or not show else None, file=sys.stderr, leave=False)


def emit(bar: Any, text: str) -> None:
    """Print ``text`` to stdout without mixing it into the progress bar (when both go to a terminal)."""
    bar.clear()
    print(text, flush=True)
    bar.refresh()


#: What the shipped model reads, for ``--help`` (details, how each figure was measured: htr/pretrained/MODEL_CARD.md).
DEFAULT_MODEL_NOTE = """\
The default model reads handwritten French in the Latin script. It was trained on three French collections:
Copiste d'un jour (modern Quebec French, about 200 writers), Peraire (one writer, faint pencil) and Poilus
(First World War wills, 42 writers). Test CER on writers or pages it never saw, greedy decoding (with
--lm default): Copiste 11.4% (9.5%), Peraire 8.1% (6.7%), Poilus 18.2% (16.5%). It has seen no real
English handwriting. For English or any other hand, fine-tune it on lines of that hand:
  python -m htr.train data=copiste data.root=my/lines.tsv train.init_from=default
Model card: htr/pretrained/MODEL_CARD.md."""


def main() -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(
        prog="python -m htr.recognize", description=__doc__.split("\n\n")[0], epilog=DEFAULT_MODEL_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("images", nargs="+", help="line images (page images or PAGE/ALTO .xml with --page), folders, globs")
    p.add_argument(
        "--checkpoint", default="default", help="a checkpoint, .pt or .onnx (default: the model shipped with htr)"
    )
    p.add_argument("--page", action="store_true", help="inputs are pages: segment them into lines (or use the XML's)")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per image (image, text, confidence: the mean of the characters' probabilities, 0 "
        "for an empty reading) or page (image, lines, text)",
    )
    p.add_argument("--chars", action="store_true", help="with --json: per-character confidences")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("output files")
    g.add_argument(
        "--output-format",
        choices=FORMATS,
        default=None,
        help="txt (the default) or json (as --json) print to stdout unless --output-dir is given; page (PAGE XML "
        "2019) and alto (ALTO v4) write one file per input, a line image as a page of one line",
    )
    g.add_argument(
        "--output-dir",
        metavar="DIR",
        type=Path,
        help="write one file per input here, named after it (<stem>.txt, .json or .xml; DIR is created if "
        "missing); default for page and alto: next to each input (an input .xml is never replaced: give DIR)",
    )
    g.add_argument("--overwrite", action="store_true", help="replace output files that exist (never an input)")
    add_decoder_args(p)
    add_backend_arg(p)
    args = p.parse_args()
    if args.json and args.output_format not in (None, "json"):
        p.error(f"--json means --output-format json; it cannot be combined with --output-format {args.output_format}")
    args.out = Output(args.output_format or ("json" if args.json else "txt"), args.output_dir, args.overwrite)
    args.json = args.out.format == "json"
    paths = expand_inputs(args.images)
    args.out.prepare([p for p in paths if isinstance(p, Path)])
    loaded = load_model(args.checkpoint, args.device, args.backend)
    decoder = make_decoder(decode_config(args), loaded.charset.labels)
    failed = (
        recognize_pages(loaded, paths, decoder, args) if args.page else recognize_images(loaded, paths, decoder, args)
    )
    return 1 if failed else 0


def _read_line(path: Path | HTRError, cfg: Any) -> tuple[np.ndarray, tuple[int, int]] | HTRError:
    """One preprocessed line image and its size, or the error that stopped it (returned, so one bad file stops
    nothing)."""
    if isinstance(path, HTRError):  # an argument that named no file
        return path
    try:
        if is_page_xml(path):
            raise HTRError("a PAGE/ALTO file is read with --page", path)
        image = load_image(path)
        return preprocess_image(image, cfg), image.size
    except HTRError as e:
        return e


def _line_json(path: Path, h: Any, chars: bool) -> dict[str, Any]:
    """The ``--json`` object of a line image."""
    obj = {"image": str(path), "text": h.text, "confidence": round(h.confidence, 4)}
    if chars:
        obj["chars"] = [
            {"char": c, "confidence": round(conf, 4)} for c, conf in zip(h.text, h.char_confidences, strict=False)
        ]
    return obj


def deliver(bar: Any, out: Output, path: Path, text: str, page: PageResult) -> None:
    """Print ``text`` (a text or JSON result), or write the output file of ``path``: ``text`` again for the
    text and JSON formats, ``page`` as PAGE or ALTO XML."""
    if out.to_stdout:
        emit(bar, text)
    else:
        out.write(path, out.render_page(page, path, text))


def recognize_images(
    loaded: LoadedModel | OnnxModel, paths: list[Path | ImageError], decoder: Any, args: argparse.Namespace
) -> int:
    """Print each line image's text (or JSON object), in order, a few batches at a time; the number that failed.

    Image decoding and preprocessing run in a thread per physical core, one chunk ahead of the model, so the next
    lines are being prepared while the current ones are recognized: 10% faster than in turn on 2 cores (PIL and
    numpy release the GIL, the Python parts of the deslant/deskew searches do not).
    """
    failed = 0
    chunk = 4 * args.batch_size
    starts = range(0, len(paths), chunk)
    with (
        progress_bar(len(paths), "line", args.quiet, len(paths) > PROGRESS_FROM) as bar,
        ThreadPoolExecutor(max_workers=physical_cores() if len(paths) > 1 else 1) as pool,
    ):

        def submit(start: int) -> list[Future]:
            return [pool.submit(_read_line, p, loaded.preprocess) for p in paths[start : start + chunk]]

        pending = submit(0) if paths else []
        for start in starts:
            results = [f.result() for f in pending]
            pending = submit(start + chunk) if start + chunk < len(paths) else []
            arrays: list[np.ndarray] = []
            for r in results:
                if isinstance(r, HTRError):
                    bar.clear()
                    print(f"htr: {r}", file=sys.stderr)
                    failed += 1
                else:
                    arrays.append(r[0])
            hyps = iter(recognize_lines(loaded, arrays, batch_size=args.batch_size, decoder=decoder))
            for path, r in zip(paths[start : start + chunk], results, strict=True):
                if isinstance(r, HTRError):  # --json keeps one object per input, in order, so scripts can pair them
                    if args.json and args.out.to_stdout:
                        image = r.path if isinstance(path, HTRError) else str(path)
                        emit(bar, json.dumps({"image": image, "error": str(r)}, ensure_ascii=False))
                    continue
                h = next(hyps)
                text = json.dumps(_line_json(path, h, args.chars), ensure_ascii=False) if args.json else h.text
                page = line_page(path, h.text, h.confidence, h.char_confidences, r[1])
                deliver(bar, args.out, path, text, page)
            bar.update(len(results))
    return failed


def recognize_pages(
    loaded: LoadedModel | OnnxModel, paths: list[Path | ImageError], decoder: Any, args: argparse.Namespace
) -> int:
    """Print each page's text (or JSON object), in order; the number of pages that failed."""
    failed = 0
    with progress_bar(0, "line", args.quiet) as bar:
        for n, path in enumerate(paths, 1):
            bar.set_description(f"page {n}/{len(paths)}")
            try:
                if isinstance(path, HTRError):  # an argument that named no file
                    raise path
                lines = page_lines(path)
            except HTRError as e:
                bar.clear()
                print(f"htr: {e}", file=sys.stderr)
                failed += 1
                continue
            bar.total += len(lines.polygons)
            bar.refresh()
            result = recognize_page(loaded, lines, batch_size=args.batch_size, decoder=decoder, progress=bar.update)
            if args.json:
                deliver(bar, args.out, path, json.dumps(result.to_json(chars=args.chars), ensure_ascii=False), result)
            elif result.lines or not args.out.to_stdout:
                deliver(bar, args.out, path, result.text, result)
    return failed


if __name__ == "__main__":
    run(main)
