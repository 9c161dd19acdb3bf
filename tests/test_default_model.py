"""The model shipped in the package loads, reads real lines, and comes with its LM settings."""

from __future__ import annotations

import json
import random

import pytest

from htr.cli import DEFAULT_LM
from htr.data.formats import read_tsv
from htr.data.lines import preprocess_file
from htr.data.synthetic import available_fonts, render_line
from htr.decode import DecodeConfig
from htr.inference import DEFAULT_MODEL, DEFAULT_ONNX, OnnxModel, load_model, recognize_lines
from htr.metrics import error_rates
from htr.preprocess.pipeline import preprocess_line

from .conftest import COPISTE

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no default model in this copy")


def test_default_model_is_self_describing():
    loaded = load_model("default", backend="torch")
    assert loaded.preprocess.height == loaded.model.cfg.height == 48
    assert len(loaded.charset) == 152 and "é" in loaded.charset.index and "’" in loaded.charset.index
    meta = json.loads(DEFAULT_LM.with_name(DEFAULT_LM.name + ".json").read_text())
    assert meta["unit"] == "char" and 0 < meta["lm_weight"] <= 2


@pytest.mark.skipif(not COPISTE.is_dir(), reason="../shared/data/copiste is absent")
def test_default_model_reads_copiste_test_lines():
    samples = read_tsv(COPISTE / "lines.tsv", split="test")[:24]
    texts = {}
    for backend in ("torch", "onnxruntime"):
        loaded = load_model("default", backend=backend)
        hyps = recognize_lines(loaded, [preprocess_file(s.image, loaded.preprocess) for s in samples])
        texts[backend] = [h.text for h in hyps]
    # The shipped model reads these 24 lines at CER 10.2% (greedy; 11.4% on the whole test split); a broken load
    # or a preprocessing mismatch gives > 80%.
    assert error_rates([s.text for s in samples], texts["torch"]).cer < 0.2
    assert texts["onnxruntime"] == texts["torch"]


@pytest.mark.skipif(not COPISTE.is_dir(), reason="../shared/data/copiste is absent")
def test_default_lm_lowers_the_default_models_cer():
    """The shipped character LM with its tuned settings must help, not merely run: on these 24 lines it takes
    CER from 10.2% (greedy) to 7.9%; a mismatched charset, a wrong weight sign or an LM that is never consulted
    leaves the two equal."""
    samples = read_tsv(COPISTE / "lines.tsv", split="test")[:24]
    loaded = load_model("default", backend="torch")
    arrays = [preprocess_file(s.image, loaded.preprocess) for s in samples]
    refs = [s.text for s in samples]
    greedy = error_rates(refs, [h.text for h in recognize_lines(loaded, arrays)]).cer
    with_lm = recognize_lines(loaded, arrays, decode_cfg=DecodeConfig(name="beam_lm", lm_path=str(DEFAULT_LM)))
    assert error_rates(refs, [h.text for h in with_lm]).cer < min(greedy - 0.015, 0.12)


def test_shipped_onnx_export_is_of_the_shipped_weights():
    """recognize runs default.pt.onnx by default: it must be the export of default.pt as shipped, intact (its
    own checksum recorded and matching) and naming the checksum of the weights it came from."""
    from htr.checkpoint import load_checkpoint
    from htr.export import cache_is_current
    from htr.onnx_file import read_metadata

    assert DEFAULT_ONNX.is_file() and cache_is_current(DEFAULT_ONNX, DEFAULT_MODEL)
    meta, _ = read_metadata(DEFAULT_ONNX.read_bytes())
    assert json.loads(meta["source_weights_sha256"]) == load_checkpoint(DEFAULT_MODEL)["weights_sha256"]
    assert isinstance(load_model("default"), OnnxModel)
    assert DEFAULT_MODEL.stat().st_size + DEFAULT_ONNX.stat().st_size < 25e6


def test_recognizing_with_the_default_model_does_not_import_torch(tmp_path):
    """A cold `recognize` spends most of its time importing PyTorch; the default (ONNX) path must not."""
    import subprocess
    import sys

    from PIL import Image

    Image.new("L", (200, 48), 255).save(tmp_path / "blank.png")
    code = (
        "import sys; from htr.recognize import main; sys.argv = ['recognize', '--quiet', sys.argv[1]]; "
        "rc = main(); print('torch' in sys.modules); sys.exit(rc)"
    )
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "blank.png")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "False"


# French sentences (written for this test) rendered by htr's own handwriting-font generator: a check of the
# shipped model that needs no ../shared data, so a user's clone has one too.
FRENCH = ["Le vieux notaire relut la lettre deux fois", "et la posa sur la table de la cuisine.",
          "Il faisait froid dans la maison depuis le matin,", "mais personne n'avait allumé le poêle.",
          "Demain, dit-elle, nous irons au marché du village", "acheter du pain, des œufs et un peu de fromage.",
          "La rivière avait débordé pendant la nuit", "et les champs étaient couverts d'eau jusqu'à la route.",
          "Mon cher frère, je t'écris ces quelques mots", "pour te dire que nous allons tous bien ici."]  # fmt: skip


def test_default_model_reads_french_lines_in_every_handwriting_font():
    """Each of the eight fonts, ten lines: CER 0.7% (Kalam Regular) to 14.4% (Zeyada), 4.5% over all 80 (the
    stage-9 model; stage 8: 0.7% to 15.6%, 4.2%; stages 6 and 7: 0.7% to 15.3%, 4.3%; stage 5: 0.7% to 14.0%,
    4.5%); a broken preprocessing, charset or weights file gives over 50%."""
    loaded = load_model("default")
    refs, hyps, worst = [], [], 0.0
    for font in available_fonts():
        images = [render_line(t, random.Random(i), [font]) for i, t in enumerate(FRENCH)]
        texts = [h.text for h in recognize_lines(loaded, [preprocess_line(im, loaded.preprocess) for im in images])]
        worst = max(worst, error_rates(FRENCH, texts).cer)
        refs, hyps = refs + FRENCH, hyps + texts
    assert len(refs) == 80
    assert error_rates(refs, hyps).cer < 0.06
    assert worst < 0.25


def _card_test_cers() -> dict[str, tuple[str, str]]:
    """Greedy and LM test CER per set, as the model card's first table gives them (``**14.22%**`` → ``14.2``)."""
    from .conftest import REPO

    card = (REPO / "htr" / "pretrained" / "MODEL_CARD.md").read_text(encoding="utf-8")
    rows = {}
    for line in card.splitlines():
        cells = [c.strip().strip("*").rstrip("%") for c in line.strip("|").split("|")]
        if len(cells) == 6 and cells[0] in ("Copiste", "Peraire", "Poilus"):
            rows[cells[0]] = (f"{float(cells[2]):.1f}", f"{float(cells[4]):.1f}")
    return rows


def test_the_test_cers_in_recognize_help_and_the_readme_are_the_model_cards():
    """The figures a user reads first (``recognize --help``, README) are those of the model that ships."""
    from htr.recognize import DEFAULT_MODEL_NOTE

    from .conftest import REPO

    rows = _card_test_cers()
    assert sorted(rows) == ["Copiste", "Peraire", "Poilus"]
    note = " ".join(DEFAULT_MODEL_NOTE.split())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name, (greedy, lm) in rows.items():
        assert f"{name} {greedy}% ({lm}%)" in note, name
        assert f"{greedy}% / {lm}%" in readme, name
