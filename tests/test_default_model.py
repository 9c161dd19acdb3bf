"""The model shipped in the package loads, reads real lines, and comes with its LM settings."""

from __future__ import annotations

import json

import pytest

from htr.cli import DEFAULT_LM
from htr.data.lines import preprocess_file
from htr.data.readers import read_tsv
from htr.inference import DEFAULT_MODEL, load_model, recognize_lines
from htr.metrics import error_rates

from .conftest import COPISTE

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no default model in this copy")


def test_default_model_is_self_describing():
    loaded = load_model("default")
    assert loaded.preprocess.height == loaded.model.cfg.height == 48
    assert len(loaded.charset) == 139 and "é" in loaded.charset.index
    meta = json.loads(DEFAULT_LM.with_name(DEFAULT_LM.name + ".json").read_text())
    assert meta["unit"] == "char" and 0 < meta["lm_weight"] <= 2


@pytest.mark.skipif(not COPISTE.is_dir(), reason="../shared/data/copiste is absent")
def test_default_model_reads_copiste_test_lines():
    samples = read_tsv(COPISTE / "lines.tsv", split="test")[:24]
    loaded = load_model("default")
    hyps = recognize_lines(loaded, [preprocess_file(s.image, loaded.preprocess) for s in samples])
    # The shipped model has test CER ~18% (greedy); a broken load or preprocessing mismatch gives > 80%.
    assert error_rates([s.text for s in samples], [h.text for h in hyps]).cer < 0.35
