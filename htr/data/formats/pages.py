"""Page-level ground truth: PAGE XML (2013, 2019 and kin) and ALTO (v2 to v4), cut into text-line images.

Each ``TextLine`` of a page becomes one sample: its polygon (PAGE ``Coords/@points``, ALTO
``Shape/Polygon/@POINTS``; the ALTO ``HPOS/VPOS/WIDTH/HEIGHT`` box when there is no polygon) is cut from the
page image, the pixels outside the polygon painted with the paper's gray (:func:`crop_line`), and the crop is
written as a PNG so the training pipeline can read it like any other line image (:func:`read_pages`).

The XML itself is parsed by :mod:`htr.data.formats.pagexml`.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from htr.atomic import write_whole
from htr.charset import normalize_text
from htr.data.formats.pagexml import PageDoc, PageLine, Point, parse_page_file, xml_format
from htr.data.samples import Sample, check_unique
from htr.errors import DataError, HTRError
from htr.imageio import load_image

__all__ = [
    "PageDoc",
    "PageLine",
    "crop_line",
    "iter_pages",
    "line_box",
    "page_xml_files",
    "parse_page_file",
    "read_page_dataset",
    "read_pages",
    "safe_name",
    "xml_format",
]

#: Name of the folder, next to the XML files, that holds the line crops unless another one is given.
CACHE_FOLDER = ".htr-lines"
#: Percentile of the gray levels inside a line's polygon taken as its paper (the background painted outside).
BACKGROUND_PERCENTILE = 75
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


# ------------------------------------------------------------------------------------------ cropping


def line_box(polygon: Sequence[Point], size: tuple[int, int], pad: int = 0) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the pixels the polygon touches, grown by ``pad``, clipped to ``size``.

    The box is inclusive of the extreme points: a polygon from x=10 to x=20 covers 11 columns.
    """
    xs = [x for x, _ in polygon]
    ys = [y for _, y in polygon]
    left = max(0, math.floor(min(xs)) - pad)
    top = max(0, math.floor(min(ys)) - pad)
    right = min(size[0], math.floor(max(xs)) + 1 + pad)
    bottom = min(size[1], math.floor(max(ys)) + 1 + pad)
    return left, top, right, bottom


def crop_line(page: Image.Image, polygon: Sequence[Point], pad: int = 0, background: int | None = None) -> Image.Image:
    """Cut ``polygon``'s bounding box (:func:`line_box`) from an 'L' page, painting pixels outside it.

    Args:
        page: the page image, 8-bit grayscale.
        polygon: the line's outline in page pixels (fewer than 3 points: their bounding box is kept whole).
        pad: margin in pixels kept around the polygon: the box is grown and the polygon mask dilated by it.
        background: gray level painted outside the polygon; by default the paper under the line, the
            :data:`BACKGROUND_PERCENTILE` percentile of the gray levels inside the polygon.

    Raises:
        ValueError: the polygon has no points or lies entirely outside the page.
    """
    if not polygon:
        raise ValueError("the polygon has no points")
    left, top, right, bottom = line_box(polygon, page.size, pad)
    if right <= left or bottom <= top:
        raise ValueError(f"the polygon lies outside the {page.size[0]}x{page.size[1]} page")
    crop = np.asarray(page.crop((left, top, right, bottom)).convert("L"))
    mask_img = Image.new("L", (right - left, bottom - top), 0 if len(polygon) >= 3 else 255)
    if len(polygon) >= 3:
        ImageDraw.Draw(mask_img).polygon([(x - left, y - top) for x, y in polygon], fill=255, outline=255)
        if pad > 0:
            mask_img = mask_img.filter(ImageFilter.MaxFilter(2 * pad + 1))
    mask = np.asarray(mask_img) > 0
    if background is None:
        inside = crop[mask] if mask.any() else crop.ravel()
        background = int(round(float(np.percentile(inside, BACKGROUND_PERCENTILE))))
    return Image.fromarray(np.where(mask, crop, np.uint8(background)).astype(np.uint8))


# ------------------------------------------------------------------------------------------- reading


def page_xml_files(folder: str | Path) -> list[Path]:
    """The PAGE and ALTO files directly in ``folder`` (else in its ``page/`` sub-folder), sorted by name.

    Other XML files (METS, Transkribus ``doc.xml``) are not line ground truth and are passed over.
    """
    folder = Path(folder)
    for candidate in (folder, folder / "page"):
        if candidate.is_dir():
            found = [p for p in sorted(candidate.glob("*.xml")) if p.is_file() and xml_format(p)]
            found += [p for p in sorted(candidate.glob("*.XML")) if p.is_file() and xml_format(p)]
            if found:
                return found
    return []


def safe_name(sample_id: str) -> str:
    """A file name for ``sample_id``: itself when made of ``A-Za-z0-9._-``, else with other characters
    replaced by ``_`` and a short hash of the id appended (so distinct ids never share a name)."""
    clean = _SAFE_NAME.sub("_", sample_id)
    if clean == sample_id and not clean.startswith("."):
        return clean
    return f"{clean.lstrip('.') or 'line'}-{hashlib.sha1(sample_id.encode()).hexdigest()[:8]}"


def default_cache_dir(folder: Path) -> Path:
    """``folder/.htr-lines`` when it can be written, else a folder under the user's cache named after it."""
    own = folder / CACHE_FOLDER
    try:
        own.mkdir(exist_ok=True)
        if os.access(own, os.W_OK):
            return own
    except OSError:
        pass
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
    return base / "htr" / "page-lines" / f"{folder.name}-{digest}"


def iter_pages(
    path: str | Path,
    cache_dir: str | Path | None = None,
    pad: int = 0,
    left_out: list[tuple[Path, DataError]] | None = None,
) -> Iterator[tuple[PageDoc, list[Sample]]]:
    """For each PAGE/ALTO file of ``path`` (a folder or one XML file): the parsed page and its samples,
    whose line crops are written (or found up to date) in the cache folder. See :func:`read_pages`.

    With ``left_out`` (a list), a page that cannot be used (unreadable XML, a missing or damaged page image,
    bad coordinates) is appended to it as ``(xml, error)`` and passed over instead of ending the iteration,
    so that a conversion keeps the other pages; an error writing a crop still ends it (it would hit every page).
    """
    path = Path(os.path.abspath(path))
    if not path.exists():
        raise DataError("page folder does not exist", path)
    xmls = [path] if path.is_file() else page_xml_files(path)
    if not xmls:
        raise DataError("folder holds no PAGE or ALTO XML files", path)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(path if path.is_dir() else path.parent)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the line-image folder ({e.strerror})", cache) from None
    for xml in xmls:
        try:
            doc = parse_page_file(xml)
            samples = _page_samples(doc, cache, pad)
        except DataError as e:
            if left_out is None:
                raise
            left_out.append((xml, e))
            continue
        yield doc, samples


def read_pages(path: str | Path, cache_dir: str | Path | None = None, pad: int = 0) -> list[Sample]:
    """Samples of every TextLine in a folder of PAGE/ALTO files (or one such file), in file order.

    Line crops (:func:`crop_line`) are written as ``<cache>/<id>.png``, the cache being ``cache_dir`` or
    ``<folder>/.htr-lines`` (a user cache folder when that cannot be written); a crop newer than both its
    XML and its page image is reused. Ids are ``<xml stem>_<line id>``; texts are normalized; writer and
    split are unset. Raises :class:`DataError` for unreadable XML, a missing page image, bad coordinates or
    duplicate ids.
    """
    samples = [s for _, page_samples in iter_pages(path, cache_dir, pad) for s in page_samples]
    check_unique(samples, Path(path))
    return samples


def _page_samples(doc: PageDoc, cache: Path, pad: int) -> list[Sample]:
    """Write the stale crops of one page and return its samples."""
    newest_input = max(doc.xml.stat().st_mtime_ns, doc.image.stat().st_mtime_ns)
    samples: list[Sample] = []
    page: Image.Image | None = None
    for line in doc.lines:
        sample = Sample(
            id=f"{doc.xml.stem}_{line.id}",
            image=cache / f"{safe_name(f'{doc.xml.stem}_{line.id}')}.png",
            text=normalize_text(line.text),
        )
        samples.append(sample)
        try:
            if sample.image.stat().st_mtime_ns >= newest_input:
                continue
        except OSError:
            pass
        if not line.polygon:
            raise DataError(f"TextLine {line.id!r} has no coordinates", doc.xml)
        if page is None:
            page = _load_page(doc)
        try:
            crop = crop_line(page, line.polygon, pad)
        except ValueError as e:
            raise DataError(f"TextLine {line.id!r}: {e}", doc.xml) from None
        _save_png(crop, sample.image)
    return samples


def _load_page(doc: PageDoc) -> Image.Image:
    """The page image as 'L', its errors reported against the XML that names it."""
    try:
        return load_image(doc.image)
    except HTRError as e:
        raise DataError(f"page image: {e}", doc.xml) from None


def _save_png(image: Image.Image, path: Path) -> None:
    """Write ``image`` as PNG through a temporary file, so an interrupted run leaves no half-written crop."""
    # An HTRError, not a DataError: the output, not the page, is at fault (iter_pages's left_out must not take it).
    write_whole(path, lambda tmp: image.save(tmp, format="PNG"), "the line image")


def read_page_dataset(path: Path, split: str | None = None) -> list[Sample] | None:
    """:func:`read_dataset`'s page branch: the samples of a PAGE/ALTO file or folder (with ``split``, of its
    sub-folder named after the split), or None when ``path`` holds no page XML."""
    if path.is_file():
        if path.suffix.lower() != ".xml":
            return None
        if split is not None:
            raise DataError(f"split {split!r} was asked for but a single page XML has no splits", path)
        return read_pages(path)
    if split is None:
        return read_pages(path) if page_xml_files(path) else None
    if (path / split).is_dir() and page_xml_files(path / split):
        return [Sample(s.id, s.image, s.text, s.writer, split, s.flags) for s in read_pages(path / split)]
    if page_xml_files(path):
        raise DataError(
            f"split {split!r} was asked for but this page folder has no {split!r} sub-folder; make splits "
            "with `python -m htr.data convert SRC OUT_DIR --split-by-writer VAL TEST`",
            path,
        )
    return None
