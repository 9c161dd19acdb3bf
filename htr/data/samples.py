"""The sample type every dataset reader returns, and the check all of them make."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from htr.errors import DataError


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


def check_unique(samples: list[Sample], path: Path) -> None:
    """Refuse two samples with the same id (``path``: the dataset file or folder they were read from)."""
    seen: set[str] = set()
    for s in samples:
        if s.id in seen:
            raise DataError(f"duplicate sample id {s.id!r}", path)
        seen.add(s.id)
