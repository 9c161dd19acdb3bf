"""The reader of a folder of image / ``.gt.txt`` pairs.

Texts are passed through :func:`htr.charset.normalize_text`. Images without a transcription, or
transcriptions without an image, are a :class:`DataError` listing them; nothing is dropped silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from htr.charset import normalize_text
from htr.data.formats.textfile import _read_text
from htr.data.samples import Sample
from htr.errors import DataError
from htr.imageio import IMAGE_SUFFIXES

GT_SUFFIX = ".gt.txt"
_MAX_LISTED = 5


def _listing(names: Iterable[str]) -> str:
    """The first few of ``names``, comma-separated, with '...' when there are more."""
    names = list(names)
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (", ..." if len(names) > _MAX_LISTED else "")


def read_folder(path: str | Path) -> list[Sample]:
    """Read a folder (recursively) of ``NAME.<image>`` + ``NAME.gt.txt`` pairs, sorted by id.

    The id is the image's path relative to ``path`` without its extension, with ``/`` separators. Hidden
    files and folders are ignored. Images without a transcription, or transcriptions without an image, are
    an error listing them.
    """
    path = Path(os.path.abspath(path))
    if not path.is_dir():
        raise DataError("dataset folder does not exist" if not path.exists() else "is not a folder", path)
    images, gts = _scan_pairs(path)
    _check_pairs(images, gts, path)
    if not images:
        raise DataError(f"folder holds no image + {GT_SUFFIX} pairs", path)
    return [
        Sample(id=key, image=images[key], text=normalize_text(_read_text(gts[key], "transcription")))
        for key in sorted(images)
    ]


def _scan_pairs(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Map id -> image file and id -> ``.gt.txt`` file for every non-hidden file under ``root``."""
    images: dict[str, Path] = {}
    gts: dict[str, Path] = {}
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not file.is_file():
            continue
        name = rel.as_posix()
        if name.lower().endswith(GT_SUFFIX):
            gts[name[: -len(GT_SUFFIX)]] = file
        elif file.suffix.lower() in IMAGE_SUFFIXES:
            key = name[: -len(file.suffix)]
            if key in images:
                raise DataError(f"two images for id {key!r}: {images[key].name} and {file.name}", root)
            images[key] = file
    return images, gts


def _check_pairs(images: dict[str, Path], gts: dict[str, Path], root: Path) -> None:
    """Refuse images without a transcription and transcriptions without an image."""
    lonely_images = sorted(images[k].relative_to(root).as_posix() for k in images.keys() - gts.keys())
    if lonely_images:
        raise DataError(
            f"{len(lonely_images)} image(s) have no {GT_SUFFIX} transcription: {_listing(lonely_images)}",
            root,
        )
    lonely_gts = sorted(gts[k].relative_to(root).as_posix() for k in gts.keys() - images.keys())
    if lonely_gts:
        raise DataError(
            f"{len(lonely_gts)} {GT_SUFFIX} file(s) have no image ({'/'.join(IMAGE_SUFFIXES)}): {_listing(lonely_gts)}",
            root,
        )
