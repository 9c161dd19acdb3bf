"""How many CPU threads training takes when ``train.threads`` is left at 0 (docs/results.md, "Training threads")."""

from __future__ import annotations

import pytest

import htr.runtime as runtime
from htr.runtime import training_threads


@pytest.mark.parametrize(
    ("cores", "local_processes", "expected"),
    [
        (2, None, 1),  # this project's machine: one core for training, one for everything else
        (1, None, 1),  # never 0 threads
        (16, None, 15),
        (16, "4", 3),  # torchrun's processes share the cores but one
        (2, "2", 1),
    ],
)
def test_threads_default_leaves_one_core_free(monkeypatch, cores, local_processes, expected) -> None:
    monkeypatch.setattr(runtime, "physical_cores", lambda: cores)
    if local_processes is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local_processes)
    assert training_threads(0) == expected


def test_threads_asked_for_are_taken_as_given(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "physical_cores", lambda: 2)
    assert [training_threads(n) for n in (1, 2, 5)] == [1, 2, 5]
