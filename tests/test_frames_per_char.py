"""scripts/frames_per_char.py: CER by output frames per character."""

from __future__ import annotations

import importlib.util
import json

import pytest

from htr.inference import DEFAULT_MODEL, load_model
from htr.model import width_stride

from .conftest import REPO, write_tsv_dataset

_spec = importlib.util.spec_from_file_location("frames_per_char", REPO / "scripts" / "frames_per_char.py")
fpc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fpc)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("ratio", "label"), [(0.5, "<1.2"), (1.2, "<1.5"), (1.99, "<2.0"), (2.0, "<3.0"), (3.0, ">=3.0")]
)
def test_bands_are_closed_below_and_open_above(ratio: float, label: str) -> None:
    assert fpc.band(ratio) == label


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no default model in this copy")
def test_every_line_lands_in_one_band(tmp_path, capsys) -> None:
    words = ["tom", "ada", "a very long line of text", "mix"]
    tsv = write_tsv_dataset(tmp_path / "d", {"val": words})
    assert fpc.main(["default", str(tsv), "--split", "val"]) == 0
    stride = width_stride(load_model("default").bundle.model)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sum(r["lines"] for r in rows) == len(words) and {r["stride"] for r in rows} == {stride}
    assert all(r["cer"] >= 0 for r in rows) and len({r["frames_per_char"] for r in rows}) == len(rows)
