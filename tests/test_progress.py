"""Progress bars stay visible on a pseudo-terminal that reports no size."""

from __future__ import annotations

import os
import pty
import select

from htr.progress import progress


def test_bar_is_drawn_on_an_unsized_pseudo_terminal():
    master, slave = pty.openpty()  # a fresh pty reports 0 x 0, as under `script` or some job runners
    with os.fdopen(slave, "w") as term:
        assert tuple(os.get_terminal_size(term.fileno())) == (0, 0)
        for _ in progress(range(3), desc="epoch 1", file=term, mininterval=0):
            pass
        term.flush()
        out = _read_all(master)
    os.close(master)
    assert "epoch 1: 100%" in out and "3/3 [" in out


def _read_all(fd: int) -> str:
    """Everything written to the pty so far (a read may return only part of it)."""
    chunks = []
    while select.select([fd], [], [], 0.2)[0]:
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "ignore")
