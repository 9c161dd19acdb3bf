"""The handwriting fonts of synthetic lines: the installed ``fontpkg-*`` families, their metrics and glyphs.

Each font file is one "writer". Fonts are laid out with Pillow's BASIC engine (see ``_LAYOUT``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

from PIL import ImageFont

from htr.errors import HTRError

#: fontpkg family slug -> the pip package that installs it. All are SIL OFL 1.1 handwriting families.
FONT_PACKAGES: dict[str, str] = {
    "caveat": "fontpkg-caveat",
    "dancing-script": "fontpkg-dancing-script",
    "indie-flower": "fontpkg-indie-flower",
    "kalam": "fontpkg-kalam",
    "shadows-into-light": "fontpkg-shadows-into-light",
    "zeyada": "fontpkg-zeyada",
}

# Layout engine: BASIC does not depend on libraqm being present, so output is the same on every machine
# with the same Pillow/FreeType.
_LAYOUT = ImageFont.Layout.BASIC


def available_fonts() -> list[Path]:
    """Font files of the installed handwriting fontpkg families (sorted by file name).

    Raises:
        HTRError: when none of the packages in :data:`FONT_PACKAGES` is installed.
    """
    return list(_available_fonts())


@functools.cache
def _available_fonts() -> tuple[Path, ...]:
    paths: list[Path] = []
    try:
        import fontpkg
    except ImportError:
        fontpkg = None
    if fontpkg is not None:
        for slug in FONT_PACKAGES:
            try:
                family = fontpkg.family(slug)
            except fontpkg.FamilyNotInstalled:
                continue
            paths.extend(Path(f.path) for f in family.files if f.style == "normal")
    paths = sorted({p for p in paths if p.is_file()}, key=lambda p: p.name)
    if not paths:
        raise HTRError(
            "no handwriting font installed for synthetic lines; install one, e.g. "
            f"`pip install {' '.join(FONT_PACKAGES.values())}`"
        )
    return tuple(paths)


def font_name(path: Path) -> str:
    """Writer name of a font file: its stem without variable-axis brackets (``Caveat``, ``Kalam-Bold``)."""
    return re.sub(r"\[[^\]]*\]", "", path.stem) or path.stem


@functools.lru_cache(maxsize=512)
def _font(path: Path, size: int, weight: int | None) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(str(path), size, layout_engine=_LAYOUT)
    if weight is not None:
        font.set_variation_by_axes([weight])
    return font


@functools.cache
def _weight_range(path: Path) -> tuple[int, int] | None:
    """The ``wght`` axis range of a variable font, or None for a static one."""
    font = ImageFont.truetype(str(path), 20, layout_engine=_LAYOUT)
    try:
        axes = font.get_variation_axes()
    except OSError:
        return None
    for axis in axes:
        if axis.get("name") in (b"Weight", "Weight"):
            return int(axis["minimum"]), int(axis["maximum"])
    return None


@functools.cache
def _metrics(path: Path) -> tuple[float, float, float]:
    """Per font at size 100: height of ``H`` above the baseline, depth of ``g`` below it, Hg body height."""
    font = _font(path, 100, None)
    ascent = -font.getbbox("H", anchor="ls")[1]
    descent = font.getbbox("g", anchor="ls")[3]
    return float(ascent), float(descent), float(ascent + descent)


@functools.lru_cache(maxsize=4096)
def _has_glyph(path: Path, char: str) -> bool:
    """Whether the font draws ``char`` (rather than its .notdef box)."""
    if char.isspace():
        return True
    font = _font(path, 40, None)
    notdef = (font.getbbox("\U0010fffd"), bytes(font.getmask("\U0010fffd")))
    return (font.getbbox(char), bytes(font.getmask(char))) != notdef


def _fonts_covering(text: str, fonts: Sequence[Path]) -> list[Path]:
    chars = set(text)
    return [f for f in fonts if all(_has_glyph(f, c) for c in chars)]
