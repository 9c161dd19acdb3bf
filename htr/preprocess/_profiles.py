"""The inner loop of :func:`htr.preprocess._common.projection_scores`: splatting points into profiles, scoring them."""

from __future__ import annotations

import math

import numpy as np

#: Largest (candidates x points) product computed by BLAS (see :func:`coordinates`).
_BLAS_MAX = 1 << 16


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


def _splat_bincount(out: np.ndarray, idx: np.ndarray, weights: np.ndarray) -> None:
    """``np.add.at(out, idx, weights)`` by ``np.bincount``: faster before numpy 1.25's fast path for ``np.add.at``."""
    counts = np.bincount(idx, weights)
    out[: counts.size] += counts


#: ``out[idx] += weights``, summing repeated indices.
_splat = np.add.at if _ADD_AT_FAST else _splat_bincount


def profile_scores(c: np.ndarray, w: np.ndarray, k: int, nbins: int, m: int) -> np.ndarray:
    """Sums of squares of the ``k`` smoothed profiles of ``nbins`` bins that the coordinates ``c`` splat into.

    ``c``: (k * N,) coordinates in bins, candidate by candidate, each within its own profile (overwritten);
    ``w``: the N points' weights. Each point adds ``w (1 - f)`` to its bin and ``w f`` to the next, ``f`` being its
    coordinate's fractional part.
    """
    whole = np.floor(c)  # every coordinate is positive
    up = np.subtract(c, whole, out=c)
    idx = whole.astype(np.intp)
    np.multiply(up.reshape(k, -1), w, out=up.reshape(k, -1))
    low = np.subtract(w, up.reshape(k, -1), out=whole.reshape(k, -1)).ravel()
    hist = np.zeros(k * nbins)
    _splat(hist, idx, low)
    _splat(hist[1:], idx, up)  # the next bins: never past the end, which is padding
    # Three one-pixel boxes (m bins each, as log2(m) sums of shifted copies: much faster than cumsum), over the
    # whole run of profiles at once: each profile's 3m bins of padding on either side keep its mass from reaching
    # its neighbours'. The result is aligned with the profiles' starts and completed with zeros to full length.
    shifts = [1 << j for j in range(m.bit_length() - 1)] * 3
    smooth = np.zeros(k * nbins) if shifts else hist
    for j, shift in enumerate(shifts):
        hist = np.add(hist[:-shift], hist[shift:], out=smooth[: hist.size - shift] if j == len(shifts) - 1 else None)
    smooth = smooth.reshape(k, nbins)
    return np.einsum("ij,ij->i", smooth, smooth)


def batch_scores(
    points: np.ndarray, w: np.ndarray, a: np.ndarray, b: np.ndarray, offsets: np.ndarray, span: np.ndarray, m: int
) -> np.ndarray:
    """:func:`~htr.preprocess._common.projection_scores` of one batch of candidates.

    ``points``: the rows ``(m u + dither, m v, 1)``; ``offsets`` and ``span``: each candidate's shift into its profile
    and the width of its coordinates' range, in bins.
    """
    k = a.size
    nbins = math.ceil(float(span.max())) + 2 + 6 * m
    # Candidate j's coordinates go to bins [j * nbins, (j + 1) * nbins) of one long profile.
    coeffs = np.empty((k, 3))
    coeffs[:, 0], coeffs[:, 1] = a, b
    np.add(offsets, np.arange(0.0, k * nbins, nbins)[:k], coeffs[:, 2])
    return profile_scores(coordinates(coeffs, points), w, k, nbins, m)
