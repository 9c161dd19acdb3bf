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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from htr.preprocess._common import ink_points, refine_search
from htr.preprocess.contrast import normalize_contrast, to_ink_array
from htr.preprocess.skew import skew_scores

Point = tuple[float, float]


@dataclass(frozen=True)
class LineBox:
    """One text line found on a page, in page pixels.

    Attributes:
        box: ``(x0, y0, x1, y1)``, the bounding box of ``polygon`` (right and bottom exclusive).
        polygon: the line's outline, clockwise from its top-left corner: a rectangle around its ink in the
            straightened page, less what lies beyond the paths between it and its neighbours, turned back by
            the skew.
        baseline: an estimate of the line the writing rests on, left end then right end: the lower edge of
            the line's body (its x-height rows) across the line, turned back by the skew. Baseline-based
            tools (kraken, eScriptorium) skip lines without one when they read PAGE or ALTO.
    """

    box: tuple[int, int, int, int]
    polygon: tuple[Point, ...]
    baseline: tuple[Point, ...] = ()

    @property
    def height(self) -> int:
        """Height of the bounding box in pixels."""
        return self.box[3] - self.box[1]


@dataclass
class SegmentConfig:
    """Settings of :func:`segment_lines` (lengths relative to the line pitch are fractions of it).

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


def segment_lines(page: Image.Image | np.ndarray, cfg: SegmentConfig | None = None) -> list[LineBox]:
    """The text lines of a page image (dark ink on light paper), top to bottom; see the module's docstring.

    Args:
        page: a PIL image (any mode; 'L' is usual) or a 2-D array, as :func:`htr.preprocess.to_ink_array`
            takes.
        cfg: segmentation settings (defaults: :class:`SegmentConfig`).

    Returns:
        The lines in reading order (top to bottom); an empty list for a page without ink.
    """
    cfg = cfg or SegmentConfig()
    ink = normalize_contrast(to_ink_array(page))
    height, width = ink.shape
    factor = max(1, math.ceil(width / cfg.work_width))
    small = _downscale(ink, factor)
    threshold = _otsu(small)
    mask = small > threshold
    if not mask.any():
        return []
    skew = _page_skew(mask, cfg.max_skew)
    offsets = _column_offsets(mask.shape[1], skew)
    straight = _shear(mask, offsets)
    # Rules are thin and often broken at the work scale: look for them in a lighter threshold too.
    faint = _shear(small > 0.5 * threshold, offsets)
    ruled = straight.copy()
    straight &= ~_ruled_lines(faint, max(8, round(cfg.rule_length * mask.shape[1])))
    bands, pitch, smooth = _find_bands(straight, cfg)
    # The paths between lines do not cross ruled lines either: a line is cut with the rule it is written on.
    seams = _seams(ruled, [b.peak for b in bands], smooth, pitch)
    lines = []
    for i, band in enumerate(bands):
        x0, x1 = int(band.x0), int(math.ceil(band.x1))
        # The band's rectangle, less what the paths between lines give to the neighbours (their ascenders
        # and descenders reaching into it).
        top = np.full(x1 - x0, band.top)
        if i > 0:
            top = np.maximum(top, seams[i - 1][x0:x1])
        bottom = np.full(x1 - x0, band.bottom)
        if i < len(seams):
            bottom = np.minimum(bottom, seams[i][x0:x1] + 1)
        outline = _outline(np.arange(x0, x1 + 1, dtype=np.float64), top, bottom)
        polygon = tuple(_to_page(x, y, offsets, factor, (width, height)) for x, y in outline)
        xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
        box = (math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys)))
        baseline = tuple(_to_page(float(x), band.base, offsets, factor, (width, height)) for x in (x0, x1))
        lines.append(LineBox(box, polygon, baseline))
    return lines


def _to_page(x: float, y: float, offsets: np.ndarray, factor: int, size: tuple[int, int]) -> Point:
    """A point of the straightened work image in page pixels (turned back by the skew), kept on the page."""
    return (
        min(max(x * factor, 0.0), float(size[0])),
        min(max((y - offsets_at(offsets, x)) * factor, 0.0), float(size[1])),
    )


# --------------------------------------------------------------------------------------------- steps


def _downscale(a: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (the ragged edge is dropped when the image is larger than one)."""
    if factor == 1:
        return a
    h, w = (a.shape[0] // factor) or 1, (a.shape[1] // factor) or 1
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BOX, (0, 0, w * factor, h * factor)))


def _otsu(a: np.ndarray) -> float:
    """Otsu's threshold of an ink-high image in [0, 1] (256 bins), kept within [0.2, 0.6]."""
    hist = np.bincount(np.clip((a * 256).astype(np.intp), 0, 255).ravel(), minlength=256).astype(np.float64)
    p = hist / max(hist.sum(), 1.0)
    w = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    between = (mu[-1] * w - mu) ** 2 / np.maximum(w * (1.0 - w), 1e-12)
    return float(np.clip((np.argmax(between) + 1) / 256.0, 0.2, 0.6))


def _page_skew(mask: np.ndarray, max_angle: float) -> float:
    """Skew in degrees (positive: lines rise to the right) that makes the horizontal profile most peaked."""
    x, y, w = ink_points(mask.astype(np.float32), x_bin=4)
    if x.size < 2:
        return 0.0
    return refine_search(lambda angles: skew_scores(x, y, w, angles), max_angle, (1.0, 0.2, 0.04))


def _column_offsets(width: int, skew: float) -> np.ndarray:
    """Per-column vertical shift (float, >= 0) that straightens lines of ``skew`` degrees: ``y' = y + off[x]``."""
    off = (np.arange(width) + 0.5) * math.tan(math.radians(skew))
    return off - off.min()


def offsets_at(offsets: np.ndarray, x: float) -> float:
    """The column shift at (continuous) column ``x``, linearly extended beyond the columns."""
    n = offsets.size
    if n == 1:
        return float(offsets[0])
    slope = (offsets[-1] - offsets[0]) / (n - 1)
    return float(offsets[0] + (x - 0.5) * slope)


def _shear(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Shift each column of ``mask`` down by its rounded offset (the canvas grows to hold every pixel)."""
    shifts = np.rint(offsets).astype(np.intp)
    if not shifts.any():
        return mask.copy()
    h, w = mask.shape
    out = np.zeros((h + int(shifts.max()), w), dtype=bool)
    rows = np.arange(h)[:, None] + shifts[None, :]
    out[rows, np.arange(w)[None, :]] = mask
    return out


def _window_count(mask: np.ndarray, n: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Number of True values in the centred window of ``n`` along ``axis`` (cut at the edges), and the windows'
    lengths (``n``, less at the edges)."""
    m = np.moveaxis(mask, axis, -1)
    c = np.zeros((*m.shape[:-1], m.shape[-1] + 1), dtype=np.int32)
    np.cumsum(m, axis=-1, out=c[..., 1:])
    k = m.shape[-1]
    lo = np.clip(np.arange(k) - n // 2, 0, k)
    hi = np.clip(np.arange(k) - n // 2 + n, 0, k)
    counts = c[..., hi] - c[..., lo]
    return np.moveaxis(counts, -1, axis), hi - lo


def _dilate(mask: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Dilation by a centred segment of ``n`` pixels along ``axis``."""
    return _window_count(mask, n, axis)[0] > 0


def _erode(mask: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Erosion by a centred segment of ``n`` pixels along ``axis`` (outside the image counts as ink)."""
    counts, lengths = _window_count(mask, n, axis)
    shape = [1, 1]
    shape[axis] = -1
    return counts >= lengths.reshape(shape)


def _ruled_lines(mask: np.ndarray, length: int, fill: float = 0.9, thickness: int = 5) -> np.ndarray:
    """Pixels of ruled lines: thin horizontal runs of ink, ``length`` long and at least ``fill`` solid.

    A rule wanders by a pixel or two up and down, so runs are looked for in 3-row strips. Text is not solid
    enough (even dense print fills under 0.85 of a strip through its letters) and a stretch taller than
    ``thickness`` rows is not thin. The rule pixels are grown by a row each way.
    """
    strips = _dilate(mask, 3, 0)
    core = _window_count(strips, length, 1)[0] >= fill * length
    if not core.any():
        return core
    rules = _dilate(core, length, 1) & strips
    rules &= ~_dilate(_erode(rules, thickness + 1, 0), thickness + 1, 0)
    return _dilate(rules, 3, 0) & mask


def _smooth(profile: np.ndarray, n: int) -> np.ndarray:
    """Two passes of a centred box of ``n`` (a triangle of width ~2n), same length as the input."""
    out = profile.astype(np.float64)
    if n <= 1:
        return out
    kernel = np.ones(n) / n
    for _ in range(2):
        out = np.convolve(out, kernel, mode="same")
    return out


def _line_pitch(profile: np.ndarray) -> float:
    """Baseline-to-baseline distance: the first strong autocorrelation peak of the profile (in rows).

    Without one (a single line), the height of the rows holding most of the ink.
    """
    p = profile - profile.mean()
    n = p.size
    spec = np.fft.rfft(p, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:n]
    if ac[0] <= 0:
        return float(max(4, n))
    ac /= ac[0]
    # After the first local minimum, the first local maximum at least 0.3 times as high as the best one (with
    # irregular spacing and few lines, multiples of the pitch can correlate better than the pitch itself).
    d = np.diff(ac)
    first_min = int(np.argmax(d > 0)) if (d > 0).any() else n
    if first_min < 2 or first_min >= n // 2:
        return _ink_height(profile)
    seg = ac[first_min : n // 2]
    peaks = [i for i in range(1, seg.size - 1) if seg[i] >= seg[i - 1] and seg[i] >= seg[i + 1]]
    if not peaks or seg.max() < 0.1:
        return _ink_height(profile)
    best = max(seg[i] for i in peaks)
    lag = next(i for i in peaks if seg[i] >= 0.3 * best) + first_min
    return float(max(lag, 4))


def _ink_height(profile: np.ndarray) -> float:
    """Rows above a tenth of the profile's maximum: the height of a single line's ink, roughly."""
    return float(max(4, int((profile > 0.1 * profile.max()).sum())))


@dataclass
class _Band:
    """A line in the straightened work image: ink rows ``top:bottom``, columns ``x0:x1``, between the
    boundaries ``lo:hi`` with its neighbours."""

    top: float
    bottom: float
    lo: int
    hi: int
    peak: float
    x0: float
    x1: float
    ink: float
    base: float = 0.0


def _find_bands(mask: np.ndarray, cfg: SegmentConfig) -> tuple[list[_Band], float, np.ndarray]:
    """The lines of a straightened mask, top to bottom, padded (work pixels); the pitch; the smoothed profile."""
    profile = mask.sum(axis=1).astype(np.float64)
    if not profile.any():
        return [], 1.0, profile
    light = _smooth(profile, 3)
    pitch = _line_pitch(light)
    smooth = _smooth(profile, max(1, round(cfg.smooth * pitch)))
    peaks = _peaks(smooth, max(2, round(0.5 * pitch)), cfg.min_peak)
    if not peaks:
        return [], pitch, smooth
    # Boundaries: the minimum between neighbouring peaks; the outer ones up to a pitch beyond the outer peaks.
    cuts = [max(0, peaks[0] - round(pitch))]
    cuts += [a + int(np.argmin(smooth[a:b])) for a, b in zip(peaks[:-1], peaks[1:])]
    cuts.append(min(mask.shape[0], peaks[-1] + round(pitch) + 1))
    bands = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        for a, b in _split_at_gaps(light, lo, hi):
            band = _trim_band(mask, a, b, pitch)
            if band is not None:
                band.peak = float(a + np.argmax(light[a:b]))
                bands.append(band)
    if not bands:
        return [], pitch, smooth
    median_ink = float(np.median([b.ink for b in bands]))
    median_height = float(np.median([b.bottom - b.top for b in bands]))
    bands = [
        b
        for b in bands
        if b.ink >= cfg.min_ink * median_ink and b.bottom - b.top >= cfg.min_height_ratio * median_height
    ]
    pad = cfg.pad * pitch
    for b in bands:
        b.top, b.bottom = max(b.lo, b.top - pad), min(b.hi, b.bottom + pad)
        b.x0, b.x1 = max(0.0, b.x0 - pad), min(float(mask.shape[1]), b.x1 + pad)
    return bands, pitch, smooth


def _split_at_gaps(
    light: np.ndarray, lo: int, hi: int, depth: float = 0.05, share: float = 0.2
) -> list[tuple[int, int]]:
    """Rows ``lo:hi`` cut at (nearly) empty rows that have at least ``share`` of the ink on either side.

    Two lines of small print fall into one band of the page's pitch; an accent or a descender alone never
    holds that share of a line's ink, so a handwritten line is not cut.
    """
    seg = light[lo:hi]
    total = float(seg.sum())
    if seg.size < 3 or total <= 0:
        return [(lo, hi)]
    above = np.cumsum(seg) - seg  # ink strictly above each row
    below = total - above - seg
    ok = np.flatnonzero((above >= share * total) & (below >= share * total))
    if ok.size == 0:
        return [(lo, hi)]
    r = int(ok[np.argmin(seg[ok])])
    if seg[r] > depth * float(seg.max()):
        return [(lo, hi)]
    return _split_at_gaps(light, lo, lo + r, depth, share) + _split_at_gaps(light, lo + r, hi, depth, share)


def _peaks(smooth: np.ndarray, radius: int, min_peak: float) -> list[int]:
    """Rows that are the maximum of ``smooth`` within ``radius`` and above ``min_peak`` x the median such peak."""
    padded = np.pad(smooth, radius, constant_values=-1.0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    is_max = (smooth >= windows.max(axis=1)) & (smooth > 0)
    rows = np.flatnonzero(is_max)
    # A plateau gives several equal maxima: keep the first of each run closer than the radius.
    peaks: list[int] = []
    for r in rows:
        if peaks and r - peaks[-1] <= radius:
            continue
        peaks.append(int(r))
    if not peaks:
        return []
    floor = min_peak * float(np.median(smooth[peaks]))
    return [p for p in peaks if smooth[p] >= floor]


def _trim_band(mask: np.ndarray, lo: int, hi: int, pitch: float) -> _Band | None:
    """The ink of rows ``lo:hi``, specks away from the line left out; None if there is none.

    Columns: groups of ink columns in the body rows (those with at least 0.3 of the busiest row's ink), gaps
    narrower than two pitches bridged (word gaps), then extended by strokes sticking out of the body; rows:
    groups of ink rows, gaps up to a quarter pitch bridged (accents, i-dots). Groups with under 5 % (columns)
    or 2 % (rows) of the band's ink are noise when other groups exist.
    """
    band = mask[lo:hi]
    per_row = band.sum(axis=1)
    if not per_row.any():
        return None
    # The extent of the line's body (the rows of its x-height, not ascenders, descenders or the neighbours'
    # descenders reaching into the band).
    cols = band[per_row >= 0.3 * per_row.max()].sum(axis=0).astype(np.float64)
    x_keep = _main_groups(cols, max(3, round(2 * pitch)), 0.05)
    xs = np.flatnonzero(x_keep)
    # Strokes outside the body (a J's hook, an f's tail) may stick out a little beyond it.
    any_ink = band.any(axis=0)
    x0, x1 = _extend(any_ink, int(xs[0]), -1, pitch), _extend(any_ink, int(xs[-1]), 1, pitch)
    xs = np.arange(x0, x1 + 1)
    rows = band[:, xs[0] : xs[-1] + 1].sum(axis=1).astype(np.float64)
    y_keep = _main_groups(rows, max(3, round(0.25 * pitch)), 0.02)
    ys = np.flatnonzero(y_keep)
    ink = float(band[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1].sum())
    # The baseline: the lower edge of the body rows (descenders hold far less ink than the x-height band).
    body = np.flatnonzero(y_keep & (rows >= 0.3 * rows.max()))
    base = float(lo + body[-1] + 1)
    return _Band(float(lo + ys[0]), float(lo + ys[-1] + 1), lo, hi, 0.0, float(xs[0]), float(xs[-1] + 1), ink, base)


def _extend(ink: np.ndarray, x: int, step: int, pitch: float) -> int:
    """The last column with ink going from ``x`` in direction ``step`` over gaps of under a fifth of a pitch,
    at most half a pitch."""
    gap, reach = max(2, round(0.2 * pitch)), max(2, round(0.5 * pitch))
    last = x
    for c in range(x + step, x + step * (reach + 1), step):
        if not 0 <= c < ink.size or c - last == step * gap:
            break
        if ink[c]:
            last = c
    return last


def _main_groups(counts: np.ndarray, bridge: int, share: float) -> np.ndarray:
    """Positions with ink in the groups (runs with gaps under ``bridge`` closed) holding ``share`` of the ink."""
    has_ink = counts > 0
    joined = _erode(_dilate(has_ink[None, :], bridge, 1), bridge, 1)[0] | has_ink
    edges = np.diff(np.concatenate(([0], joined.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    sums = np.array([counts[s:e].sum() for s, e in zip(starts, ends)])
    keep = sums >= share * counts.sum()
    if not keep.any():
        keep = sums == sums.max()
    out = np.zeros(counts.size, dtype=bool)
    for s, e, k in zip(starts, ends, keep):
        if k:
            out[s:e] = True
    return out & has_ink


# ------------------------------------------------------------------------------------------------ outlines


def _seams(mask: np.ndarray, peaks: list[float], smooth: np.ndarray, pitch: float) -> list[np.ndarray]:
    """Between each two neighbouring lines, the path from the left edge to the right one crossing the least ink.

    Each path runs between the two lines' peaks, one row per column (moving at most a row up or down per
    column), by dynamic programming over all the gaps at once; crossing an ink pixel costs 1, and a tiny cost
    for straying from the profile's minimum between the peaks keeps it straight through blank stretches.
    Returns one float array of rows (one per column) per gap.
    """
    n = len(peaks) - 1
    if n <= 0:
        return []
    h, w = mask.shape
    tops = [int(p) + 1 for p in peaks[:-1]]
    heights = [max(1, int(b) - a) for a, b in zip(tops, peaks[1:])]
    rows = max(heights)
    cost = np.full((n, rows, w), np.inf, dtype=np.float32)
    for i, (a, k) in enumerate(zip(tops, heights)):
        valley = int(np.argmin(smooth[a : a + k]))
        prior = (np.abs(np.arange(k) - valley) / max(pitch, 1.0) * 0.02).astype(np.float32)
        cost[i, :k] = mask[a : a + k].astype(np.float32) + prior[:, None]
    total = cost[:, :, 0].copy()
    back = np.zeros((w, n, rows), dtype=np.int8)
    big = np.full((n, 1), np.inf, dtype=np.float32)
    for x in range(1, w):
        # Arriving from the row above or below costs a little more than staying on the row.
        up = np.concatenate([big, total[:, :-1] + 1e-3], axis=1)
        down = np.concatenate([total[:, 1:] + 1e-3, big], axis=1)
        best = np.minimum(total, np.minimum(up, down))
        back[x] = np.where(best == total, 0, np.where(best == up, -1, 1))
        total = best + cost[:, :, x]
    y = np.argmin(total, axis=1)
    path = np.zeros((n, w), dtype=np.int64)
    path[:, -1] = y
    for x in range(w - 1, 0, -1):
        y = y + back[x, np.arange(n), y]
        path[:, x - 1] = y
    return [path[i] + tops[i] + 0.5 for i in range(n)]


def _outline(xs: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> list[Point]:
    """Polygon of the columns ``xs[:-1]`` between the rows ``top`` and ``bottom`` (one value per column),
    clockwise from the top-left corner, with a vertex only where an edge changes row."""

    def edge(ys: np.ndarray) -> list[Point]:
        points: list[Point] = []
        start = 0
        for k in range(1, ys.size + 1):
            if k == ys.size or ys[k] != ys[start]:
                points += [(float(xs[start]), float(ys[start])), (float(xs[k]), float(ys[start]))]
                start = k
        return points

    upper = edge(np.asarray(top, dtype=np.float64))
    lower = edge(np.asarray(bottom, dtype=np.float64))
    return upper + lower[::-1]
