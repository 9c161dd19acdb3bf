"""The outlines of segmented lines: least-ink paths between neighbouring lines and the polygons they cut.

Part of :func:`htr.segment.segment_lines`; everything here is in the straightened work image.
"""

from __future__ import annotations

import numpy as np

Point = tuple[float, float]


def find_seams(mask: np.ndarray, peaks: list[float], smooth: np.ndarray, pitch: float) -> list[np.ndarray]:
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


def outline_polygon(xs: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> list[Point]:
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
