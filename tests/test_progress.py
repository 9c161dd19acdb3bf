"""Progress bars stay visible on a pseudo-terminal that reports no size."""

from __future__ import annotations

import os
import pty

from htr.progress import progress


def test_bar_is_drawn_on_an_unsized_pseudo_terminal():
    master, slave = pty.openpty()  # a fresh pty reports 0 x 0, as under `script` or some job runners
    with os.fdopen(slave, "w") as term:
        assert tuple(os.get_terminal_size(term.fileno())) == (0, 0)
        for _ in progress(range(3), desc="epoch 1", file=term, mininterval=0):
            pass
        term.flush()
        out = os.read(master, 65536).decode("utf-8", "ignore")
    os.close(master)
    assert "epoch 1: 100%" in out and "3/3 [" in out
