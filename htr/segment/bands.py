"""The text lines of a straightened ink mask as horizontal bands, for :func:`htr.segment.segment_lines`.

The line pitch comes from the autocorrelation of the horizontal projection profile; the smoothed profile's
peaks are the lines and the minima between them their boundaries; each band is then cut at blank gaps (small
print), trimmed to its ink (specks and margin noise left out), and filtered by ink and height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from htr.segment.config import SegmentConfig
from htr.segment.mask import dilate, erode


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
class Band:
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


def find_bands(mask: np.ndarray, cfg: SegmentConfig) -> tuple[list[Band], float, np.ndarray]:
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


def _trim_band(mask: np.ndarray, lo: int, hi: int, pitch: float) -> Band | None:
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
    return Band(float(lo + ys[0]), float(lo + ys[-1] + 1), lo, hi, 0.0, float(xs[0]), float(xs[-1] + 1), ink, base)


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
    joined = erode(dilate(has_ink[None, :], bridge, 1), bridge, 1)[0] | has_ink
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
