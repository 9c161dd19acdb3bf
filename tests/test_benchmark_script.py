"""scripts/benchmark.py reads each --models entry as a model group with overrides, lists included."""

from __future__ import annotations

import importlib.util

import pytest

from .conftest import REPO

_spec = importlib.util.spec_from_file_location("benchmark", REPO / "scripts" / "benchmark.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("cpu", ["cpu"]),
        ("small,lstm_layers=1,height=40", ["small", "lstm_layers=1", "height=40"]),
        ("cpu,conv_pools=[[2,2],[2,1]],lstm_hidden=8", ["cpu", "conv_pools=[[2,2],[2,1]]", "lstm_hidden=8"]),
    ],
)
def test_models_entries_split_at_the_commas_outside_brackets(text: str, parts: list[str]) -> None:
    assert bench._top_level_split(text) == parts


def test_a_model_entry_with_a_nested_list_override_composes() -> None:
    cfg = bench._model_cfg("cpu,conv_pools=[[2,2],[2,2],[2,1],[1,1]],lstm_hidden=64")
    assert (cfg.name, cfg.conv_pools, cfg.lstm_hidden) == ("cpu", [[2, 2], [2, 2], [2, 1], [1, 1]], 64)
