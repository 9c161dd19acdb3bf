"""The sample type every dataset reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One text line: where its image is and what it says.

    ``flags`` carries reader-specific remarks that must not be lost, e.g. ``("err",)`` for IAM lines whose
    segmentation the IAM authors marked as erroneous.
    """

    id: str
    image: Path
    text: str
    writer: str | None = None
    split: str | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)
    #: The ``data.sources`` entry the line came from (None for a single-dataset run).
    source: str | None = None
