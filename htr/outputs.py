"""Where ``recognize`` puts its results: stdout, or one file per input (text, JSON, PAGE XML or ALTO).

Text and JSON go to stdout unless ``--output-dir`` is given; PAGE and ALTO are always files. A file is named
after its input, ``<stem>.txt``, ``<stem>.json`` or ``<stem>.xml``, and goes into ``--output-dir`` (created when
missing) or else next to its input, as ``kraken -I '*.jpg' -o .xml`` writes them and where Transkribus and our
own readers look for a page's XML. Everything that would stop the run is checked before anything is
recognized (:meth:`Output.prepare`): an output that would replace an input (a PAGE/ALTO file given with
``--page`` is never overwritten: another folder must be named), two inputs that would write the same file, an
output folder that cannot be created or written, and files that exist already (replaced only with
``--overwrite``). Files are written whole through a temporary file, so an interrupted run leaves none
half-written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from htr.atomic import trial_write, write_whole
from htr.errors import HTRError
from htr.page import LineResult, PageResult
from htr.xmlout import alto_xml, image_reference, page_xml

FORMATS = ("txt", "json", "page", "alto")
SUFFIXES = {"txt": ".txt", "json": ".json", "page": ".xml", "alto": ".xml"}
_MAX_LISTED = 5


@dataclass
class Output:
    """The output format (one of :data:`FORMATS`), the folder for files (None: stdout for text and JSON, next to
    each input for XML) and whether existing files may be replaced."""

    format: str = "txt"
    folder: Path | None = None
    overwrite: bool = False

    @property
    def to_stdout(self) -> bool:
        """Whether results are printed rather than written to files."""
        return self.folder is None and self.format in ("txt", "json")

    def path_for(self, source: Path) -> Path:
        """The file written for the input ``source``."""
        folder = self.folder if self.folder is not None else source.parent
        return folder / (source.stem + SUFFIXES[self.format])

    def prepare(self, inputs: list[Path]) -> None:
        """Create the output folder and refuse, before any work, what would fail or destroy something.

        Raises:
            HTRError: an output that would replace an input, two inputs with one output, an output folder that
                cannot be created or written, or output files that exist (without ``overwrite``).
        """
        if self.to_stdout:
            return
        given = {os.path.realpath(p) for p in inputs}
        targets: dict[str, Path] = {}
        for source in inputs:
            dest = self.path_for(source)
            key = os.path.realpath(dest)
            if key in given:
                raise HTRError(
                    f"the {self.format} output would replace this input file; write it to another folder with "
                    "--output-dir",
                    source,
                )
            if key in targets and os.path.realpath(targets[key]) != os.path.realpath(source):
                raise HTRError(
                    f"{targets[key]} and {source} would both be written to {dest}; write them in separate runs "
                    "with different --output-dir"
                )
            targets[key] = source
        folders = {self.folder} if self.folder is not None else {self.path_for(s).parent for s in inputs}
        for folder in sorted(folders):
            _check_folder(folder, create=self.folder is not None)
        existing = sorted(str(self.path_for(s)) for s in targets.values() if self.path_for(s).exists())
        if existing and not self.overwrite:
            shown = ", ".join(existing[:_MAX_LISTED]) + (", ..." if len(existing) > _MAX_LISTED else "")
            raise HTRError(f"{len(existing)} output file(s) exist already: {shown}; pass --overwrite to replace them")

    def render_page(self, result: PageResult, source: Path, text: str) -> str:
        """The file content for a recognized page (or line image): ``text`` (what stdout would show) for the
        text and JSON formats, else the PAGE or ALTO document."""
        if self.format in ("txt", "json"):
            return text + "\n" if text else ""
        if result.image is None or result.size is None:
            raise HTRError("a page without its image file cannot be written as XML", source)
        writer = page_xml if self.format == "page" else alto_xml
        return writer(result, image_reference(result.image, self.path_for(source)), result.size)

    def write(self, source: Path, content: str) -> None:
        """Write ``content`` to the output file of ``source``, whole or not at all."""
        write_whole(self.path_for(source), lambda tmp: tmp.write_text(content, encoding="utf-8"), "the output file")


def line_page(image: Path, text: str, confidence: float, chars: list[float], size: tuple[int, int]) -> PageResult:
    """A line image as a page of one line covering the whole image (for PAGE and ALTO output)."""
    w, h = size
    polygon = ((0.0, 0.0), (float(w - 1), 0.0), (float(w - 1), float(h - 1)), (0.0, float(h - 1)))
    return PageResult(image, [LineResult(text, confidence, (0, 0, w, h), polygon, list(chars))], size=size)


def _check_folder(folder: Path, create: bool) -> None:
    """Make sure ``folder`` exists (creating it when ``create``) and can be written."""
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise HTRError("the output folder is a file", folder) from None
        except OSError as e:
            raise HTRError(f"cannot create the output folder ({e.strerror or e})", folder) from None
    elif not folder.is_dir():
        return  # the input's own folder is missing: the input is reported as unreadable when its turn comes
    try:
        trial_write(folder)
    except OSError:
        raise HTRError("the output folder is not writable", folder) from None
