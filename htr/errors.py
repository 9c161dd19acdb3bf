"""htr's own error type: one clear sentence naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class HTRError(Exception):
    """An error caused by the user's input (a file, a config value), reported as one sentence.

    The command-line entry points catch it and print ``htr: <message>`` without a traceback.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)


class ImageError(HTRError):
    """An image file that is missing, unreadable or unusable."""


class DataError(HTRError):
    """A dataset manifest, transcription or sample that cannot be used."""


class CheckpointError(HTRError):
    """A checkpoint that is missing, truncated, of another version, or not a checkpoint."""
