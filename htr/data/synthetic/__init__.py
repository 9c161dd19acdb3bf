"""Synthetic handwritten text lines rendered with handwriting fonts, for pre-training and tests.

Fonts come from the ``fontpkg-*`` packages on PyPI (SIL Open Font License 1.1, Google Fonts' handwriting
families); each font file is one "writer". A line is rendered word by word with a wobbling baseline and
jittered spacing, slanted, slightly rotated, then put on textured paper with noise and blur, and cropped to
its ink with a margin that never clips a stroke.

Command line::

    python -m htr.data.synthetic OUT_DIR --train 2000 --val 200 --test 200 --seed 0

writes ``OUT_DIR/lines/*.png`` and ``OUT_DIR/lines.tsv`` (columns ``id image text writer split``).
"""

from __future__ import annotations

from pathlib import Path

from htr.data.synthetic.cli import main
from htr.data.synthetic.fonts import FONT_PACKAGES, available_fonts, font_name
from htr.data.synthetic.generate import GENERATOR_VERSION, TSV_HEADER, generate_dataset, read_tsv
from htr.data.synthetic.render import render_line
from htr.data.synthetic.text import MAX_CHARS, PUNCTUATION_END, WORDS_FILE, fit_line, load_words, random_text

__all__ = [
    "FONT_PACKAGES",
    "GENERATOR_VERSION",
    "MAX_CHARS",
    "PUNCTUATION_END",
    "TSV_HEADER",
    "WORDS_FILE",
    "available_fonts",
    "fit_line",
    "font_name",
    "generate_dataset",
    "load_words",
    "main",
    "random_text",
    "read_tsv",
    "render_line",
]


def __getattr__(name: str) -> list[Path]:
    """``FONTS``: the same list as :func:`available_fonts`, resolved on first access."""
    if name == "FONTS":
        return available_fonts()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
