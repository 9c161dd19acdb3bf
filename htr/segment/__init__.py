"""Text-line segmentation of a page image by projection profiles, in pure numpy and PIL.

:func:`segment_lines` finds the text lines of a single-column page (handwritten or printed) and returns
them top to bottom. The steps, all on a copy downscaled to at most :attr:`SegmentConfig.work_width` columns:

1. Ink-high contrast normalization (:func:`htr.preprocess.to_ink_array`, :func:`htr.preprocess.normalize_contrast`)
   and an Otsu threshold.
2. Page skew: the angle whose horizontal projection profile is most sharply peaked, searched coarse to fine
   (the same criterion as a line's skew, :func:`htr.preprocess.estimate_skew`). The page is then straightened
   by shifting each column vertically (a shear; at a few degrees it is a rotation to within a fraction of a
   pixel), so page coordinates come back exactly.
3. Ruled lines (long thin horizontal runs of ink, as on lined paper or forms) are removed from the mask: they
   would otherwise be the strongest peaks of the profile.
4. The line pitch (baseline-to-baseline distance) is the first strong peak of the profile's autocorrelation.
   The profile is smoothed with a window of a fraction of the pitch; its peaks at least half a pitch apart are
   the lines and the minimum between two neighbouring peaks is their boundary (so ascenders and descenders
   that reach into the gap go to the nearer line, and an accent or a descender alone never makes a line).
   A band that holds two lines with a blank gap between them (small print) is cut there.
5. Each band is trimmed to its ink; bands with little ink (specks, remains of rules) are dropped, and so are
   bands whose text is much smaller than the page's (printed headers or footers of forms; see
   :attr:`SegmentConfig.min_height_ratio`). The horizontal extent of a band is that of its body (the rows of
   its x-height), words further than two pitches from the rest with little ink (margin noise) left out.
6. Between each two neighbouring lines, a path from the left edge to the right one that crosses the least ink
   (dynamic programming; ruled lines count as ink, so each line keeps the rule it is written on).

A line's outline is its band's rectangle (with a little padding, never past the boundaries with its
neighbours), less what lies beyond those paths (the neighbours' descenders and ascenders), turned back by the
skew into page pixels. Crop it with :func:`htr.data.formats.pages.crop_line`, which paints what lies outside it with
the paper's gray.

The package's modules, in the order of the steps: :mod:`htr.segment.mask` (steps 1-3), :mod:`htr.segment.bands`
(4-5), :mod:`htr.segment.outlines` (6), :mod:`htr.segment.lines` (the whole, and page coordinates);
:mod:`htr.segment.config` holds the settings.
"""

from htr.segment.config import SegmentConfig
from htr.segment.lines import LineBox, segment_lines

__all__ = ["LineBox", "SegmentConfig", "segment_lines"]
