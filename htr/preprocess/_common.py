"""Small helpers shared by the preprocessing modules (not public API)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from htr.errors import ImageError
from htr.preprocess._profiles import batch_scores

#: Angles are estimated on a copy cropped to the ink and downscaled to at most ``WORK_HEIGHT`` rows and
#: about ``WORK_PIXELS`` pixels, but not below ``WORK_MIN_HEIGHT`` rows (angles are unchanged by
#: translation and uniform scaling); see :func:`htr.preprocess.resize.work_copy`.
WORK_HEIGHT = 40
WORK_PIXELS = 16_000
WORK_MIN_HEIGHT = 20

#: Affine warps are resampled with this filter: it never overshoots, so ink stays in [0, 1].
WARP_RESAMPLE = Image.Resampling.BILINEAR


def check_2d(a: np.ndarray, what: str = "image") -> np.ndarray:
    """Return ``a`` as an ndarray after checking that it is a non-empty 2-D (H, W) array.

    Raises:
        ImageError: if ``a`` is not 2-D or has a zero-sized dimension.
    """
    a = np.asarray(a)
    if a.ndim != 2:
        raise ImageError(f"{what} must be a 2-D (H, W) array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"{what} is empty (shape {a.shape})")
    return a


def as_float32(a: np.ndarray) -> np.ndarray:
    """Return ``a`` as a C-contiguous float32 array (no copy when it already is one)."""
    return np.ascontiguousarray(a, dtype=np.float32)


def affine_inverse(a: float, b: float, c: float, d: float, e: float, f: float) -> tuple[float, ...]:
    """The inverse of the affine map ``x' = a x + b y + c, y' = d x + e y + f``, as the same six numbers.

    In closed form: ``np.linalg.inv`` of a 3x3 matrix goes through LAPACK, whose OpenBLAS threads can take
    hundreds of times longer than this arithmetic while other processes keep the cores busy.
    """
    det = a * e - b * d
    if abs(det) < 1e-12:
        raise ValueError("the affine map is singular")
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    return (float(ia), float(ib), float(-(ia * c + ib * f)), float(id_), float(ie), float(-(id_ * c + ie * f)))


def warp_affine(a: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Apply the affine map ``forward`` to an ink-high float image on a canvas that holds all of it.

    ``forward`` is a 3x3 (or 2x3) matrix mapping input to output coordinates in the continuous pixel
    frame, where pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)`` and ``x`` is the column. The output
    canvas is the bounding box of the mapped input, so no ink is cut; uncovered areas are 0
    (background). Resampling is bilinear, done once by PIL on an 'F' image.
    """
    a = as_float32(check_2d(a))
    h, w = a.shape
    f = np.eye(3)
    f[:2, :] = np.asarray(forward, dtype=np.float64)[:2, :]
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], dtype=np.float64).T
    mapped = f @ corners
    # Snap to the grid with a tolerance so float noise never adds a spurious row or column.
    x0 = np.floor(mapped[0].min() + 1e-6)
    y0 = np.floor(mapped[1].min() + 1e-6)
    out_w = max(1, int(np.ceil(mapped[0].max() - 1e-6) - x0))
    out_h = max(1, int(np.ceil(mapped[1].max() - 1e-6) - y0))
    data = affine_inverse(f[0, 0], f[0, 1], f[0, 2] - x0, f[1, 0], f[1, 1], f[1, 2] - y0)
    img = Image.fromarray(a)
    out = img.transform((out_w, out_h), Image.Transform.AFFINE, data, resample=WARP_RESAMPLE, fillcolor=0.0)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def _dither(n: int) -> np.ndarray:
    """A fixed pseudo-random sequence of ``n`` values in [0, 1) (the same on every call; read-only).

    Computed once and grown when needed: the modulo costs more than a whole coarse angle scan of a line.
    """
    global _DITHER
    if _DITHER.size < n:
        _DITHER = (np.arange(max(n, 2 * _DITHER.size), dtype=np.float64) * 0.6180339887498949) % 1.0
        _DITHER.flags.writeable = False
    return _DITHER[:n]


_DITHER = np.zeros(0)


#: Candidate-point pairs splatted per batch by :func:`projection_scores`: few enough to stay in cache, enough
#: that a small point set is scored in one batch (each batch costs a dozen numpy calls).
_SPLATS = 1 << 16


def projection_scores(
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    oversample: int = 2,
) -> np.ndarray:
    """Score candidate projections of weighted points by the peakiness of their profiles.

    Candidate ``k`` projects point ``i`` to ``a[k] * u[i] + b[k] * v[i]`` (in pixels); its score is the
    sum of squares of the resulting (smoothed) projection profile, weighted by ``w``. A larger score
    means a more sharply peaked profile.

    The profile has ``oversample`` bins per pixel (a power of 2); each point is splatted linearly onto
    its two nearest bins and the profile is then smoothed three times with a one-pixel box. The
    smoothing and a fixed sub-bin dither make the score almost independent of where points fall
    between bins: with plain 1-bin-per-pixel splatting, a candidate under which all points land halfway
    between bins (or exactly on them) would score lower (or higher) for that reason alone, which biases
    the estimate by about a degree.

    Returns:
        (K,) float64 scores.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    n = u.size
    if n == 0:
        return np.zeros(a.size)
    m = int(oversample)
    if m < 1 or m & (m - 1):
        raise ValueError(f"oversample must be a power of 2, got {oversample}")
    points = np.empty((3, n))
    um, vm = points[0], points[1]
    np.multiply(u, float(m), um)
    um += _dither(n)
    np.multiply(v, float(m), vm)
    points[2] = 1.0
    # Each candidate's coordinate range, from the ranges of u and v (no pass over the points needed): the
    # extremes of a linear map over a box lie at its corners.
    au, av = a * float(um.min()), a * float(um.max())
    bu, bv = b * float(vm.min()), b * float(vm.max())
    lo = np.minimum(au, av)
    lo += np.minimum(bu, bv)
    span = np.maximum(au, av)
    span += np.maximum(bu, bv)
    span -= lo
    # Three box passes move mass by up to 3(m - 1) bins either way: pad each profile by 3m on both sides.
    pad = 3 * m
    offsets = np.floor(lo)
    np.subtract(pad, offsets, offsets)
    w = np.asarray(w, dtype=np.float64)
    chunk = max(1, min(a.size, _SPLATS // n))
    return np.concatenate(
        [
            batch_scores(points, w, a[sl], b[sl], offsets[sl], span[sl], m)
            for sl in (slice(start, start + chunk) for start in range(0, a.size, chunk))
        ]
    )


def ink_points(
    a: np.ndarray,
    min_weight: float = 0.05,
    x_bin: int = 1,
    background: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return pixel-centre coordinates ``(x, y)`` and weights of the ink pixels of ``a``.

    The background level (the median) is subtracted first, so an image whose background is not exactly 0
    does not bias the projection criteria; pixels below ``min_weight`` are ignored. With ``x_bin > 1``,
    groups of ``x_bin`` adjacent columns are averaged into one point at their centre first: cheaper, and
    harmless where horizontal resolution matters little (skew, whose angles are small). Pass the median as
    ``background`` when it is already known (it costs as much as the rest).
    """
    a = as_float32(a)
    bg = median_level(a) if background is None else float(background)
    return binned_points(bin_columns(a, x_bin, bg), bg, x_bin, min_weight)


def bin_columns(a: np.ndarray, n: int, fill: float) -> np.ndarray:
    """The means of each ``n`` adjacent columns of float32 ``a``, its width first padded with ``fill`` to a multiple
    of ``n`` (``a`` itself when ``n`` is 1)."""
    if n <= 1:
        return a
    h, w = a.shape
    pad = -w % n
    if pad:
        padded = np.empty((h, w + pad), dtype=np.float32)
        padded[:, :w] = a
        padded[:, w:] = fill
        a = padded
    return _bin_columns(a, n)


def binned_points(
    a: np.ndarray, bg: float, x_bin: int = 1, min_weight: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`ink_points` of an image whose columns are already binned by ``x_bin`` (:func:`bin_columns`)."""
    flat = (a - bg if bg else a).ravel()
    idx = np.flatnonzero(flat > min_weight)
    # Row and column of each index, from its centre idx + 0.5, which lies at least 0.5 / width away from a multiple
    # of the width, so the float quotient floors exactly: several times cheaper than np.divmod on integers.
    xs = idx + 0.5
    ys = np.floor(xs * (1.0 / a.shape[1]))
    xs -= ys * a.shape[1]
    ys += 0.5
    if x_bin != 1:
        xs *= float(x_bin)
    return xs, ys, flat[idx].astype(np.float64)


def _bin_columns(a: np.ndarray, n: int) -> np.ndarray:
    """The means of each ``n`` adjacent columns of ``a`` (whose width is a multiple of ``n``).

    As sums of strided column slices, in the order numpy's own reduction adds them, so the values are the same as
    ``a.reshape(h, -1, n).mean(axis=2)``: several times faster than a reduction over such a short axis.
    """
    if n < 8:
        out = a[:, 0::n].copy()
        for j in range(1, n):
            out += a[:, j::n]
    elif n % 8 == 0 and n <= 128:
        # numpy's pairwise summation of 8 to 128 terms: eight running sums of every eighth term, added as a tree.
        r = [a[:, j::n].copy() for j in range(8)]
        for i in range(8, n, 8):
            for j in range(8):
                r[j] += a[:, i + j :: n]
        out = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    else:
        return a.reshape(a.shape[0], -1, n).mean(axis=2)
    out /= np.float32(n)
    return out


def median_level(a: np.ndarray) -> float:
    """``np.median(a)``, without the partial sort when more than half of ``a`` is exactly 0 and none below.

    That is the usual case for a contrast-normalized line, whose background is 0, and the sort costs as much
    as extracting the sample points.
    """
    n = a.size
    # count_nonzero of a float array is several times slower than comparing first.
    if np.count_nonzero(a != 0) < n - n // 2 and not (a < 0).any():
        return 0.0
    return float(np.median(a))


def refine_search(
    score: Callable[[np.ndarray], np.ndarray] | Sequence[Callable[[np.ndarray], np.ndarray]],
    max_angle: float,
    steps: tuple[float, ...],
) -> float:
    """Coarse-to-fine 1-D maximisation of ``score`` over angles in ``[-max_angle, max_angle]`` degrees.

    ``score`` takes an array of candidate angles and returns one score per angle; it may also be one such
    function per step (e.g. a cheap, coarser criterion for the first scan, which only has to find the right
    neighbourhood). The first step scans the whole range; each later step scans the previous winner plus or
    minus the previous step. The winner of the last scan is refined by the vertex of the parabola through it
    and its neighbours. Returns 0.0 when no candidate scores above 0 (no ink).
    """
    scorers = [score] * len(steps) if callable(score) else list(score)
    if len(scorers) != len(steps):
        raise ValueError(f"{len(scorers)} score functions for {len(steps)} steps")
    center, half = 0.0, float(max_angle)
    best, i, step = 0.0, 0, 1.0
    scores: list[float] = [0.0]
    for step, scorer in zip(steps, scorers):
        # In plain Python: a few dozen numbers, for which each numpy call costs more than the work.
        n = math.floor(half / step + 1e-9)
        angles = [a for a in (center + step * j for j in range(-n, n + 1)) if abs(a) <= max_angle + 1e-9]
        if not angles:
            break
        scores = scorer(np.array(angles)).tolist()
        top_score = max(scores)
        if not top_score > 0:
            return 0.0
        # Ties (e.g. a symmetric profile) resolve towards the smallest correction.
        top = [j for j, s in enumerate(scores) if s >= top_score * (1 - 1e-12)]
        i = min(top, key=lambda j: abs(angles[j]))
        best = angles[i]
        center, half = best, step
    if 0 < i < len(scores) - 1:
        s0, s1, s2 = scores[i - 1], scores[i], scores[i + 1]
        curvature = s0 - 2.0 * s1 + s2
        if curvature < 0:
            best += min(max(0.5 * (s0 - s2) / curvature, -0.5), 0.5) * step
    return min(max(best, -max_angle), max_angle)
