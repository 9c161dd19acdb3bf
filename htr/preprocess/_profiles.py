"""The inner loop of :func:`htr.preprocess._common.projection_scores`: splatting points into profiles, scoring them."""

from __future__ import annotations

import numpy as np

#: Largest (candidates x points) product computed by BLAS (see :func:`coordinates`).
_BLAS_MAX = 1 << 15


def coordinates(coeffs: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``coeffs @ points`` (K x 3 times 3 x N), raveled: every candidate's coordinate of every point.

    A BLAS product writes it in one pass, three times faster than three elementwise passes; it is used only
    where OpenBLAS runs it on one thread (a matrix-matrix product of at most ``3 * _BLAS_MAX`` multiplications,
    well under its threshold for threads), since waking BLAS threads costs far more than this product on a busy
    machine. Elsewhere ``np.einsum``.
    """
    if coeffs.shape[0] > 1 and coeffs.shape[0] * points.shape[1] <= _BLAS_MAX:
        return (coeffs @ points).ravel()
    return np.einsum("kj,jn->kn", coeffs, points).ravel()


#: np.add.at got a fast path in numpy 1.25 (before, it was many times slower than np.bincount).
_ADD_AT_FAST = np.lib.NumpyVersion(np.__version__) >= "1.25.0"


def _splat(idx: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount(idx, weights, minlength=n)``: by ``np.add.at`` where faster, which sums in the same order."""
    if not _ADD_AT_FAST:
        return np.bincount(idx, weights, minlength=n)
    out = np.zeros(n)
    np.add.at(out, idx, weights)
    return out


def profile_scores(c: np.ndarray, weights: np.ndarray, k: int, nbins: int, m: int) -> np.ndarray:
    """Sums of squares of the ``k`` smoothed profiles of ``nbins`` bins that the coordinates ``c`` splat into.

    ``c``: (k * N,) coordinates in bins, candidate by candidate, each within its own profile (overwritten);
    ``weights``: at least k * N weights (the points' weights, repeated per candidate).
    """
    idx = np.floor(c)  # every coordinate is positive
    frac = np.subtract(c, idx, out=c)
    idx = idx.astype(np.intp)
    frac *= weights[: frac.size]
    hist = _splat(idx, weights[: idx.size], k * nbins)
    up = _splat(idx, frac, k * nbins)
    hist -= up
    hist[1:] += up[:-1]
    hist = hist.reshape(k, nbins)
    for _ in range(3):
        # A one-pixel box (m bins) as log2(m) sums of shifted copies: much faster than cumsum.
        shift = 1
        while shift < m:
            hist = hist[:, :-shift] + hist[:, shift:]
            shift *= 2
    return np.einsum("ij,ij->i", hist, hist)
