"""More tests that pin preprocessing behaviour mutation testing found unpinned (issue 16, item 5).

A sibling of ``test_preprocess_mutants.py`` (which grew past 400 lines). As there, every expected value is known
by construction or worked out by hand in a comment; none was produced by the code under test.
"""

from __future__ import annotations

import numpy as np

from htr.preprocess.render import shear_rows


def test_shear_rows_shifts_by_hand() -> None:
    # k = 0.5: row y moves round(0.5 (y + 0.5)) = 0, 1, 1, 2 (rint: 0.25 -> 0, 0.75 -> 1, 1.25 -> 1, 1.75 -> 2).
    a = np.arange(1, 9, dtype=np.float32).reshape(4, 2)
    out = shear_rows(a, 0.5)
    expected = np.array([[1, 2, 0, 0], [0, 3, 4, 0], [0, 5, 6, 0], [0, 0, 7, 8]], np.float32)
    np.testing.assert_array_equal(out, expected)
