"""Text for language models: plain text files, ``lines.tsv`` manifests and the Brown corpus (NLTK's zip).

Every reader yields normalized text lines (:func:`htr.charset.normalize_text`); empty lines are skipped.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from htr.charset import normalize_text
from htr.errors import DataError

# Brown tokens that attach to the previous word (no space before) or to the next one (no space after).
_ATTACH_LEFT = {",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%"}
_ATTACH_RIGHT = {"``", "`", "(", "[", "{", "$"}
_BROWN_SPELLING = {"``": '"', "''": '"', "`": "'"}
_BROWN_FILE = re.compile(r"(?:^|/)c[a-r]\d\d$")


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise DataError(f"cannot be read ({e.strerror})", path) from e
    except UnicodeDecodeError as e:
        raise DataError(f"is not valid UTF-8 (byte offset {e.start})", path) from e


def read_plain(path: Path) -> Iterator[str]:
    """One text line per line of the file."""
    for line in _read(path).splitlines():
        text = normalize_text(line)
        if text:
            yield text


def read_manifest(path: Path, split: str | None = None) -> Iterator[str]:
    """The ``text`` column of a tab-separated manifest (quotes literal); only rows of ``split`` when given."""
    reader = csv.reader(io.StringIO(_read(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None:
        raise DataError("manifest is empty", path)
    columns = [c.strip() for c in header]
    if "text" not in columns:
        raise DataError(f"manifest header has no 'text' column (found: {', '.join(columns)})", path)
    if split is not None and "split" not in columns:
        raise DataError(f"split {split!r} was asked for but the manifest has no 'split' column", path)
    ti, si = columns.index("text"), columns.index("split") if "split" in columns else -1
    kept = 0
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(columns):
            raise DataError(f"line {reader.line_num}: expected {len(columns)} fields, found {len(row)}", path)
        if split is not None and row[si].strip() != split:
            continue
        kept += 1
        text = normalize_text(row[ti])
        if text:
            yield text
    if split is not None and kept == 0:
        raise DataError(f"no rows with split {split!r}", path)


def detokenize(tokens: Iterable[str]) -> str:
    """Join Brown-style tokens into running text: ``( `` word , word '' )`` -> ``("word, word")``."""
    out: list[str] = []
    glue = True  # no space before the next token
    for tok in tokens:
        if tok == "." and out and out[-1].endswith("."):  # "Jr." ending a sentence: one period
            continue
        word = _BROWN_SPELLING.get(tok, tok)
        if out and not glue and tok not in _ATTACH_LEFT:
            out.append(" ")
        out.append(word)
        glue = tok in _ATTACH_RIGHT
    return "".join(out)


def brown_sentences(data: str) -> Iterator[str]:
    """Sentences of one Brown file (one sentence per non-blank line of ``word/tag`` tokens)."""
    for line in data.splitlines():
        words = [tok.rpartition("/")[0] or tok for tok in line.split()]
        text = normalize_text(detokenize(w for w in words if w))
        if text:
            yield text


def read_brown(path: Path) -> Iterator[str]:
    """Sentences of the Brown corpus from NLTK's ``brown.zip`` (files ``brown/ca01`` .. ``brown/cr09``)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = sorted(n for n in z.namelist() if _BROWN_FILE.search(n))
            if not names:
                raise DataError("zip file holds no Brown corpus files (brown/ca01 ...)", path)
            for name in names:
                yield from brown_sentences(z.read(name).decode("utf-8", errors="replace"))
    except zipfile.BadZipFile as e:
        raise DataError("is not a valid zip file", path) from e


def read_texts(inputs: Iterable[str | Path], split: str | None = None) -> Iterator[str]:
    """Text lines of every input: ``*.zip`` is the Brown corpus, ``*.tsv`` a manifest, others plain text.

    ``split`` applies to manifests only.
    """
    for inp in inputs:
        path = Path(inp)
        if not path.is_file():
            raise DataError("does not exist or is not a file", path)
        suffix = path.suffix.lower()
        if suffix == ".zip":
            yield from read_brown(path)
        elif suffix == ".tsv":
            yield from read_manifest(path, split)
        else:
            yield from read_plain(path)
