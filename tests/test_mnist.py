"""MNIST digit lines (idx reading, line generation, the data hook), the flat encoder and the MNIST experiments.

Most tests use a small fake MNIST written here; those marked ``needs_mnist`` read the real files in
``../shared/data/mnist`` and are skipped without them.
"""

from __future__ import annotations

import gzip
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from htr.charset import Charset
from htr.checkpoint import save_checkpoint
from htr.config import ModelConfig
from htr.data import mnist
from htr.data.formats import read_dataset
from htr.data.mnist import compose_line, digit_pools, draw_line, generate_digit_lines, load_mnist, read_idx
from htr.data.sources import dataset_path
from htr.errors import DataError, HTRError
from htr.model import CRNN
from htr.preprocess.pipeline import PreprocessConfig

from .conftest import SHARED, compose_config

MNIST = SHARED / "mnist"
needs_mnist = pytest.mark.skipif(not (MNIST / mnist.IMAGES_FILE).is_file(), reason="no ../shared/data/mnist")


def write_idx(path: Path, array: np.ndarray, magic_type: int = 0x08, compress: bool = True) -> Path:
    """An idx file of a uint8 array (gzip-compressed when ``compress``)."""
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    return path


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory) -> Path:
    """10,000 fake 28x28 digits (digit ``i`` is a bar at row ``i % 20``, label ``i % 10``) in MNIST's files."""
    root = tmp_path_factory.mktemp("mnist")
    n = 10_000
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[np.arange(n), 4 + np.arange(n) % 20, 6:22] = 255
    write_idx(root / mnist.IMAGES_FILE, images)
    write_idx(root / mnist.LABELS_FILE, np.arange(n) % 10)
    return root


# -------------------------------------------------------------------------------------------------- idx


def test_read_idx_tiny_files(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for compress in (True, False):
        path = write_idx(tmp_path / ("a.idx.gz" if compress else "a.idx"), a, compress=compress)
        b = read_idx(path, expected_magic=0x0803)
        assert b.dtype == np.uint8 and b.shape == (2, 3, 4) and np.array_equal(a, b)
    labels = write_idx(tmp_path / "l.gz", np.array([7, 2, 1], dtype=np.uint8))
    assert read_idx(labels, expected_magic=2049).tolist() == [7, 2, 1]


def test_read_idx_rejects_bad_files(tmp_path):
    a = np.zeros((2, 3), dtype=np.uint8)
    with pytest.raises(DataError, match="expected 0x00000803"):
        read_idx(write_idx(tmp_path / "a.gz", a), expected_magic=2051)
    with pytest.raises(DataError, match="bad magic"):
        read_idx(write_idx(tmp_path / "b.gz", a, magic_type=0x42))
    good = write_idx(tmp_path / "c", a, compress=False)
    (tmp_path / "d").write_bytes(good.read_bytes()[:-1])
    with pytest.raises(DataError, match="does not match its header"):
        read_idx(tmp_path / "d")
    (tmp_path / "e.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "e.gz")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "missing.gz")
    with pytest.raises(DataError, match="not found"):
        load_mnist(tmp_path / "nowhere")


@needs_mnist
def test_real_mnist_files():
    images, labels = load_mnist(MNIST)
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert images.max() == 255 and images[:, 0, 0].max() == 0  # ink high, blank corners


# ------------------------------------------------------------------------------------------------ lines


def test_compose_line_geometry():
    d = np.zeros((28, 28), dtype=np.uint8)
    d[10:18, 10:18] = 200
    line = compose_line([d, d], gaps=[5], shifts=[-3, 2])
    assert line.shape == (28 + 2 * mnist.JITTER, 2 * mnist.MARGIN + 2 * 28 + 5) and line.dtype == np.uint8
    ink = line < 128  # dark digits on light paper
    rows, cols = np.nonzero(ink)
    assert rows.min() == mnist.JITTER - 3 + 10 and rows.max() == mnist.JITTER + 2 + 17
    assert cols.min() == mnist.MARGIN + 10 and cols.max() == mnist.MARGIN + 28 + 5 + 17
    assert line.max() == 255 and line.min() == 55


def test_pools_are_disjoint_and_limited():
    pools = digit_pools(10_000, train_digits=1000)
    assert pools["train"].tolist() == list(range(1000))
    assert (pools["val"].min(), pools["val"].max()) == (8000, 8999)
    assert np.array_equal(pools["test"], pools["digits"]) and pools["test"].min() == 9000
    assert len(digit_pools(10_000)["train"]) == 8000
    with pytest.raises(HTRError, match="train_digits"):
        digit_pools(10_000, train_digits=9000)


def test_lines_are_deterministic_and_match_their_digits(fake_mnist, tmp_path):
    tsv = generate_digit_lines(tmp_path / "a", fake_mnist, 30, 5, 5, seed=3, train_digits=7)
    again = generate_digit_lines(tmp_path / "b", fake_mnist, 30, 5, 5, seed=3, train_digits=7)
    assert tsv.read_bytes() == again.read_bytes()
    pngs = sorted((tmp_path / "a" / "lines").iterdir())
    assert len(pngs) == 30 + 5 + 5 + 1000
    assert all(p.read_bytes() == (tmp_path / "b" / "lines" / p.name).read_bytes() for p in pngs[::37])

    images, labels = load_mnist(fake_mnist)
    pools = digit_pools(len(images), train_digits=7)
    samples = {s.id: s for s in read_dataset(tsv)}
    for split, n in (("train", 30), ("val", 5), ("test", 5)):
        for i in range(n):
            s = samples[f"{split}-{i:06d}"]
            idx, gaps, shifts = draw_line(random.Random(f"htr-mnist:3:{split}:{i}"), pools[split])
            assert s.text == "".join(str(labels[k]) for k in idx) and s.split == split and not s.writer
            assert 1 <= len(s.text) <= 10 and all(pools[split][0] <= k <= pools[split][-1] for k in idx)
            expected = compose_line([images[k] for k in idx], gaps, shifts)
            assert np.array_equal(np.asarray(Image.open(s.image)), expected)
    train_digits = {c for s in samples.values() if s.split == "train" for c in s.text}
    assert train_digits <= set("0123456")  # only the first 7 digits (labels i % 10)
    digits = read_dataset(tsv, split="digits")
    assert [s.text for s in digits] == [str(labels[9000 + i]) for i in range(1000)]
    assert Image.open(digits[0].image).size == (28 + 2 * mnist.MARGIN, 28 + 2 * mnist.JITTER)


def test_existing_dataset_is_reused_and_regenerated_on_change(fake_mnist, tmp_path):
    tsv = generate_digit_lines(tmp_path / "d", fake_mnist, 4, 2, 2, seed=0)
    mtime = tsv.stat().st_mtime_ns
    assert generate_digit_lines(tmp_path / "d", fake_mnist, 4, 2, 2, seed=0).stat().st_mtime_ns == mtime
    generate_digit_lines(tmp_path / "d", fake_mnist, 4, 2, 2, seed=1)
    assert read_dataset(tsv, split="train")[0].text != "" and (tmp_path / "d" / "params.json").is_file()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(HTRError, match="not an MNIST lines dataset"):
        generate_digit_lines(tmp_path / "other", fake_mnist, 1, 1, 1)


def test_data_hook_generates_mnist_lines(fake_mnist, tmp_path):
    cfg = compose_config(
        [
            "experiment=mnist_conv",
            f"data.root={tmp_path / 'lines'}",
            f"data.mnist.dir={fake_mnist}",
            "data.mnist.n_train=3",
            "data.mnist.n_val=2",
            "data.mnist.n_test=2",
            "data.mnist.train_digits=50",
            "train.out_dir=/tmp/x",
        ]
    )
    tsv = dataset_path(cfg.data)
    assert tsv == tmp_path / "lines" / "lines.tsv"
    assert len(read_dataset(tsv, split="train")) == 3 and len(read_dataset(tsv, split="test")) == 2


@needs_mnist
def test_real_digit_lines(tmp_path):
    tsv = generate_digit_lines(tmp_path / "m", MNIST, 3, 1, 1, seed=0, train_digits=1000)
    _, labels = load_mnist(MNIST)
    digits = read_dataset(tsv, split="digits")
    assert "".join(s.text for s in digits[:10]) == "".join(str(d) for d in labels[9000:9010])
    a = np.asarray(Image.open(read_dataset(tsv, split="train")[0].image))
    assert a.shape[0] == 34 and np.median(a) == 255 and a.min() < 50  # dark digits on white paper


# ---------------------------------------------------------------------------------------------- encoder


def flat_cfg(**kw) -> ModelConfig:
    cfg = ModelConfig(
        height=16, encoder="flat", flat_window=6, flat_stride=4, flat_hidden=[12, 10], flat_dropout=0.0,
        lstm_hidden=8, lstm_layers=1, lstm_dropout=0.0, out_dropout=0.0,
    )  # fmt: skip
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_flat_encoder_shapes_and_lengths():
    torch.manual_seed(0)
    m = CRNN(flat_cfg(), 5).eval()
    assert not hasattr(m, "conv") and m.width_stride == 4 and m.feature_size == 10
    widths = torch.tensor([4, 7, 8, 33, 41])
    assert m.output_lengths(widths).tolist() == [1, 1, 2, 8, 10]
    lp, lengths = m(torch.rand(5, 1, 16, 41), widths)
    assert lp.shape == (10, 5, 5) and lengths.tolist() == [1, 1, 2, 8, 10]
    assert torch.allclose(lp.exp().sum(-1), torch.ones(10, 5), atol=1e-5)
    assert all(
        m.output_lengths(torch.tensor([w])).item() == m.flat(torch.zeros(1, 1, 16, w)).shape[0] for w in range(4, 30)
    )


def test_flat_first_layer_is_a_linear_map_of_each_pixel_window():
    torch.manual_seed(0)
    enc = CRNN(flat_cfg(flat_hidden=[12]), 5).flat.eval()
    x = torch.rand(2, 1, 16, 23)
    windows = enc.windows(x)  # (T, N, 16 * 6)
    assert windows.shape == (23 // 4, 2, 16 * 6)
    # Window t covers padded columns t*4 .. t*4+5, i.e. input columns t*4-1 .. t*4+4 (pad_left = 1).
    assert torch.equal(windows[3, 1].view(16, 6), x[1, 0, :, 11:17])
    linear = windows @ enc.first.weight.view(12, -1).T + enc.first.bias
    assert torch.allclose(enc(x), torch.relu(linear), atol=1e-5)


def test_flat_padding_does_not_change_a_lines_output():
    torch.manual_seed(0)
    m = CRNN(flat_cfg(lstm_layers=2), 7).eval()
    line = torch.rand(1, 1, 16, 24)
    alone, n = m(line, torch.tensor([24]))
    batch = torch.zeros(2, 1, 16, 64)
    batch[0, :, :, :24] = line[0]
    batch[1] = torch.rand(1, 16, 64)
    padded, lengths = m(batch, torch.tensor([24, 64]))
    assert lengths[0] == n[0] == 6
    assert torch.allclose(alone[:6, 0], padded[:6, 0], atol=1e-5)  # windows see zeros past the line either way


def test_bad_flat_configs_fail_clearly():
    with pytest.raises(ValueError, match="encoder"):
        CRNN(flat_cfg(encoder="mlp"), 5)
    with pytest.raises(ValueError, match="flat_stride"):
        CRNN(flat_cfg(flat_stride=8), 5)
    with pytest.raises(ValueError, match="flat_hidden"):
        CRNN(flat_cfg(flat_hidden=[]), 5)


def test_flat_model_exports_to_onnx(tmp_path):
    from htr.export import to_onnx
    from htr.inference import load_model

    cfg, charset = flat_cfg(), Charset.from_texts(["0123456789"])
    model = CRNN(cfg, len(charset))
    payload = {"model": model.state_dict(), "charset": charset.chars, "config": {"model": asdict(cfg)}}
    save_checkpoint(tmp_path / "flat.pt", payload | {"preprocess": asdict(PreprocessConfig(height=cfg.height))})
    proto = to_onnx(load_model(tmp_path / "flat.pt"))  # checked against PyTorch on lines of three widths
    assert "Conv" in {n.op_type for n in proto.graph.node}


# ------------------------------------------------------------------------------------------- experiments


@pytest.mark.parametrize("encoder", ["flat", "conv"])
def test_experiment_configs_compose(encoder):
    cfg = compose_config([f"experiment=mnist_{encoder}", "train.out_dir=/tmp/x"])
    assert cfg.data.name == "mnist_lines" and cfg.model.encoder == encoder
    assert cfg.data.preprocess.height == cfg.model.height == 32
    assert not cfg.data.preprocess.deslant and not cfg.data.preprocess.deskew and not cfg.data.preprocess.crop
    assert cfg.train.max_time_s and cfg.train.max_time_s <= 240
    model = CRNN(OmegaConf.to_object(cfg.model), 11).eval()
    assert model.width_stride == 4 and 0.5e6 < sum(p.numel() for p in model.parameters()) < 1.5e6
    lp, lengths = model(torch.zeros(2, 1, 32, 36), torch.tensor([36, 20]))
    assert lp.shape == (9, 2, 11) and lengths.tolist() == [9, 5]
