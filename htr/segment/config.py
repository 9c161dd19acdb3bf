"""The settings of :func:`htr.segment.segment_lines`, in a module of their own: the step modules read them
without importing :mod:`htr.segment.lines`, which imports those modules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SegmentConfig:
    """Settings of :func:`htr.segment.segment_lines` (lengths relative to the line pitch are fractions of it).

    Attributes:
        work_width: the page is analyzed downscaled (by an integer factor) to at most this many columns.
        max_skew: largest page skew searched, in degrees either way.
        rule_length: a horizontal run of ink at least this fraction of the page width is a ruled line.
        smooth: width of the profile's smoothing window, as a fraction of the pitch.
        min_peak: a profile peak lower than this fraction of the median peak is not a line.
        min_ink: a band with less ink than this fraction of the median band's is dropped.
        min_height_ratio: a band whose ink is less tall than this fraction of the median band's is dropped
            (small print on a handwritten page: form headers, page numbers); 0 keeps every band.
        pad: padding around each line's ink, as a fraction of the pitch (vertically only up to the
            boundary with a neighbouring line).
    """

    work_width: int = 1280
    max_skew: float = 5.0
    rule_length: float = 0.12
    smooth: float = 0.3
    min_peak: float = 0.15
    min_ink: float = 0.12
    min_height_ratio: float = 0.45
    pad: float = 0.08
