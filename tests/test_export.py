"""ONNX export and the onnxruntime backend: same log-probabilities and texts as PyTorch, through the CLI too."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import onnx
import pytest
import torch
from omegaconf import OmegaConf

from htr.charset import Charset
from htr.checkpoint import save_checkpoint
from htr.errors import CheckpointError, HTRError
from htr.export import cache_path, export_checkpoint, onnx_for_checkpoint, save_onnx
from htr.inference import LoadedModel, OnnxModel, lines_to_batch, load_model, recognize_lines
from htr.model import CRNN
from htr.preprocess.pipeline import PreprocessConfig, preprocess_line

from .conftest import REPO, TINY_MODEL, compose_config, render_text

TEXTS = ["a", "hi there", "the quick brown fox", "jumps", "over the lazy dog 42", "Zoe", "mix cup hat jug bed"]


def _run(*args: str) -> str:
    p = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p.stdout


def write_random_checkpoint(path, seed: int = 0) -> None:
    """An untrained TINY_MODEL checkpoint in the layout ``htr.train`` writes (batch-norm statistics randomized)."""
    model_cfg = OmegaConf.to_object(compose_config([*TINY_MODEL, "train.out_dir=/tmp/x"]).model)
    charset = Charset.from_texts(TEXTS)
    torch.manual_seed(seed)
    model = CRNN(model_cfg, len(charset))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "charset": charset.chars,
            "config": {"model": asdict(model_cfg)},
            "preprocess": asdict(PreprocessConfig(height=model_cfg.height)),
        },
    )


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model runs fastest on one thread, and a busy machine does not then slow these tests down."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(checkpoint, onnx file, PyTorch model, onnxruntime model, preprocessed lines of 7 different widths)."""
    root = tmp_path_factory.mktemp("export")
    ckpt, out = root / "best.pt", root / "model.onnx"
    write_random_checkpoint(ckpt)
    _run("htr.export", str(ckpt), str(out))
    torch_model, ort_model = load_model(ckpt), load_model(out)
    assert isinstance(torch_model, LoadedModel) and isinstance(ort_model, OnnxModel)
    arrays = [preprocess_line(render_text(t), torch_model.preprocess) for t in TEXTS]
    assert len({a.shape[1] for a in arrays}) == len(TEXTS)
    return ckpt, out, torch_model, ort_model, arrays


def test_export_is_valid_and_self_describing(exported):
    ckpt, out, torch_model, ort_model, _ = exported
    proto = onnx.load(out)
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["images", "widths"]
    assert [o.name for o in proto.graph.output] == ["log_probs", "lengths"]
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, 32, "width"]
    meta = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert {"charset", "preprocess", "htr_version", "model", "source_sha256"} <= set(meta)
    assert meta["charset"] == torch_model.charset.chars == ort_model.charset.chars
    assert meta["preprocess"] == asdict(torch_model.preprocess)
    assert ort_model.preprocess == torch_model.preprocess
    assert any(n.op_type == "LSTM" and n.input[4] for n in proto.graph.node)  # per-line sequence_lens


@pytest.mark.parametrize("batch_size", [1, 4])
def test_onnxruntime_log_probs_match_torch(exported, batch_size):
    _, _, torch_model, ort_model, arrays = exported
    for start in range(0, len(arrays), batch_size):
        batch = lines_to_batch(arrays[start : start + batch_size])  # mixed widths: padding inside the batch
        expected = torch_model.log_probs(batch["images"], batch["widths"])
        got = ort_model.log_probs(batch["images"], batch["widths"])
        for a, b in zip(expected, got, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)


def test_padding_does_not_leak_into_a_line(exported):
    # The ONNX LSTMs get each line's length (sequence_lens): a short line padded next to a wide one differs from
    # the same line alone only by the model's own conv edge effect at its last frames, exactly as in PyTorch.
    _, _, torch_model, ort_model, arrays = exported
    single, pair = lines_to_batch([arrays[0]]), lines_to_batch([arrays[0], arrays[2]])
    diffs = []
    for m in (torch_model, ort_model):
        alone = m.log_probs(single["images"], single["widths"])[0]
        padded = m.log_probs(pair["images"], pair["widths"])[0]
        diffs.append(np.abs(alone - padded).max(axis=1))
    np.testing.assert_allclose(diffs[1], diffs[0], atol=1e-4, rtol=0)
    assert diffs[1][: len(diffs[1]) // 2].max() < 1e-3


def test_recognize_lines_gives_the_same_texts(exported):
    _, _, torch_model, ort_model, arrays = exported
    texts = [h.text for h in recognize_lines(torch_model, arrays, batch_size=4)]
    assert any(texts)  # an untrained model still emits characters, so the comparison means something
    assert [h.text for h in recognize_lines(ort_model, arrays, batch_size=4)] == texts
    assert [h.text for h in recognize_lines(ort_model, arrays, batch_size=1)] == texts


def test_recognize_cli_backends_agree(exported, tmp_path):
    ckpt, out, *_ = exported
    images = []
    for i, t in enumerate(TEXTS):
        images.append(str(tmp_path / f"line{i}.png"))
        render_text(t).save(images[-1])
    expected = _run("htr.recognize", *images, "--checkpoint", str(ckpt), "--json")
    assert len(expected.splitlines()) == len(TEXTS)
    assert _run("htr.recognize", *images, "--checkpoint", str(out), "--backend", "onnxruntime", "--json") == expected
    assert _run("htr.recognize", *images, "--checkpoint", str(out), "--json") == expected  # .onnx: onnxruntime


def test_pt_checkpoint_with_onnxruntime_is_exported_once_and_cached(tmp_path):
    ckpt = tmp_path / "best.pt"
    write_random_checkpoint(ckpt, seed=1)
    first = onnx_for_checkpoint(ckpt)
    assert first == cache_path(ckpt) == tmp_path / "best.pt.onnx"
    stamp = first.stat().st_mtime_ns
    assert onnx_for_checkpoint(ckpt) == first and first.stat().st_mtime_ns == stamp  # reused
    write_random_checkpoint(ckpt, seed=2)  # retrained: the cache is stale and is exported again
    assert onnx_for_checkpoint(ckpt) == first and first.stat().st_mtime_ns != stamp
    loaded = load_model(ckpt, backend="onnxruntime")
    assert isinstance(loaded, OnnxModel) and loaded.charset.chars == Charset.from_texts(TEXTS).chars


def test_bad_onnx_inputs_fail_with_one_sentence(exported, tmp_path):
    ckpt, out, *_ = exported
    with pytest.raises(CheckpointError, match="onnxruntime backend"):
        load_model(out, backend="torch")
    with pytest.raises(HTRError, match="CPU"):
        load_model(out, device="meta", backend="onnxruntime")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        load_model(tmp_path / "junk.onnx")
    bare = export_checkpoint(ckpt)
    del bare.metadata_props[:]
    save_onnx(bare, tmp_path / "bare.onnx")
    with pytest.raises(CheckpointError, match="not an ONNX model exported by htr"):
        load_model(tmp_path / "bare.onnx")


def test_weights_exact_in_float16_are_stored_as_float16_and_read_the_same(tmp_path, monkeypatch):
    """A checkpoint whose weights are float16 values (as the shipped one) exports at about half the size and
    reads exactly as its export in float32 does; one with full float32 weights keeps them as they are."""
    full, halved = tmp_path / "full.pt", tmp_path / "halved.pt"
    write_random_checkpoint(full)
    ckpt = torch.load(full, weights_only=True)
    ckpt["model"] = {k: v.half().float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    save_checkpoint(halved, ckpt)
    protos = {name: export_checkpoint(path) for name, path in (("full", full), ("halved", halved))}
    monkeypatch.setattr("htr.export.halve_exact_weights", lambda proto: 0)
    protos["float32"] = export_checkpoint(halved)
    kinds = {
        name: {init.data_type for init in p.graph.initializer if onnx.numpy_helper.to_array(init).size >= 1024}
        for name, p in protos.items()
    }
    # (the exporter folds batch norm into the convolutions: those products stay float32)
    assert kinds["full"] == kinds["float32"] == {onnx.TensorProto.FLOAT}
    assert onnx.TensorProto.FLOAT16 in kinds["halved"]
    sizes = {name: len(p.SerializeToString()) for name, p in protos.items()}
    assert sizes["halved"] < 0.6 * sizes["float32"]
    batch = lines_to_batch([np.random.default_rng(0).random((32, w), dtype=np.float32) for w in (90, 40)])
    got, want = (OnnxModel(protos[k].SerializeToString(), threads=1).log_probs(**batch) for k in ("halved", "float32"))
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
