"""Small helpers shared by the preprocessing modules (not public API)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from htr.errors import ImageError

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
    shift = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(shift @ f)
    data = (inv[0, 0], inv[0, 1], inv[0, 2], inv[1, 0], inv[1, 1], inv[1, 2])
    img = Image.fromarray(a)
    out = img.transform((out_w, out_h), Image.Transform.AFFINE, data, resample=WARP_RESAMPLE, fillcolor=0.0)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def profile_peakiness(coords: np.ndarray, weights: np.ndarray, oversample: int = 4) -> np.ndarray:
    """Score each row of projected coordinates by the sum of squares of its (smoothed) profile.

    Args:
        coords: (K, N) float array: the projected coordinate (in pixels) of each of N ink pixels under
            K candidate transforms.
        weights: (N,) ink weight of each pixel.
        oversample: profile bins per pixel.

    Returns:
        (K,) float64 scores; larger means a more sharply peaked projection profile.

    Each pixel is splatted linearly onto the two nearest bins of a profile with ``oversample`` bins per
    pixel, which is then smoothed three times with a one-pixel box. The smoothing makes the score almost
    independent of where pixels fall between bins: with plain linear splatting, a candidate under which
    all pixels land halfway between bins (or exactly on them) would score lower (or higher) for that
    reason alone, which biases the estimate by about a degree.
    """
    k, n = coords.shape
    if n == 0:
        return np.zeros(k)
    m = int(oversample)
    # Leading and trailing padding of 3m bins keeps all mass inside the profile through three box passes.
    c = coords * float(m)
    c -= np.floor(c.min()) - 3 * m
    nbins = int(np.ceil(c.max())) + 2 + 3 * m
    base = np.floor(c)
    frac = c - base
    idx = base.astype(np.int64)
    idx += (np.arange(k, dtype=np.int64) * nbins)[:, None]
    wf = frac * weights
    flat = idx.ravel()
    hist = np.bincount(flat, (weights - wf).ravel(), minlength=k * nbins)
    hist[1:] += np.bincount(flat, wf.ravel(), minlength=k * nbins)[:-1]
    hist = hist.reshape(k, nbins)
    for _ in range(3):
        cs = np.zeros((k, hist.shape[1] + 1))
        np.cumsum(hist, axis=1, out=cs[:, 1:])
        hist = cs[:, m:] - cs[:, :-m]
    return np.einsum("ij,ij->i", hist, hist)


def ink_points(a: np.ndarray, min_weight: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return pixel-centre coordinates ``(x, y)`` and weights of the ink pixels of ``a``.

    The background level (the median) is subtracted first, so an image whose background is not exactly 0
    does not bias the projection criteria; pixels below ``min_weight`` are ignored.
    """
    a = as_float32(a)
    bg = float(np.median(a))
    w = a - bg
    ys, xs = np.nonzero(w > min_weight)
    return xs.astype(np.float64) + 0.5, ys.astype(np.float64) + 0.5, w[ys, xs].astype(np.float64)


def refine_search(score, max_angle: float, steps: tuple[float, ...]) -> float:
    """Coarse-to-fine 1-D maximisation of ``score`` over angles in ``[-max_angle, max_angle]`` degrees.

    ``score`` takes an array of candidate angles and returns one score per angle. The first step scans
    the whole range; each later step scans the previous winner plus or minus the previous step.
    """
    center, half = 0.0, float(max_angle)
    best = 0.0
    for step in steps:
        n = int(np.floor(half / step + 1e-9))
        cands = center + step * np.arange(-n, n + 1, dtype=np.float64)
        cands = cands[np.abs(cands) <= max_angle + 1e-9]
        if cands.size == 0:
            break
        scores = score(cands)
        if not np.any(scores > 0):
            return 0.0
        # Ties (e.g. a symmetric profile) resolve towards the smallest correction.
        top = np.flatnonzero(scores >= scores.max() * (1 - 1e-12))
        best = float(cands[top[np.argmin(np.abs(cands[top]))]])
        center, half = best, step
    return best
