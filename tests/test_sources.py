"""Several datasets in one run (data.sources), the weighted epoch draw, per-source validation, the column
max-pool and CTC shortcut of the CRNN, EMA weights, and evaluate over several datasets."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import sys

import pytest
import torch
from torch import nn

from htr.config import ModelConfig, structured
from htr.data.dataset import BucketBatchSampler
from htr.data.sources import check_sources, epoch_shares, load_split
from htr.decode import GreedyDecoder
from htr.errors import DataError, HTRError
from htr.evaluate import combine, source_name
from htr.model import CRNN
from htr.train import ctc_loss, train, validate

from .conftest import TINY_MODEL, compose_config, write_tsv_dataset


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread for this module's models (much faster on a busy machine); the old count back after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sources_override(*sources: str) -> str:
    return "data.sources=[" + ", ".join("{" + s + "}" for s in sources) + "]"


def _data_cfg(*sources: str):  # noqa: ANN202
    return compose_config(["data=copiste", "data.root=unused", _sources_override(*sources)]).data


def _source_dataset(root, prefix: str, splits: dict[str, list[str]]):  # noqa: ANN001, ANN202
    """A lines.tsv whose ids start with ``prefix`` (write_tsv_dataset's ids alone repeat across datasets)."""
    tsv = write_tsv_dataset(root, splits)
    rows = tsv.read_text(encoding="utf-8").splitlines()
    tsv.write_text("\n".join([rows[0]] + [prefix + r for r in rows[1:]]) + "\n", encoding="utf-8")
    return tsv


# --- load_split over data.sources -------------------------------------------------------------------------------


def test_load_split_tags_each_line_with_its_source_in_source_order(tmp_path):
    ta = _source_dataset(tmp_path / "a", "a_", {"train": ["tom", "ada", "mix"], "val": ["zoe"]})
    tb = _source_dataset(tmp_path / "b", "b_", {"train": ["bed", "cup"], "val": ["hat", "jug"]})
    # b first: the order is that of data.sources, not of the names.
    data = _data_cfg(f"name: b, root: '{tb}'", f"name: a, root: '{ta}'")
    train_samples = load_split(data, "train")
    assert [(s.id, s.text, s.source) for s in train_samples] == [
        ("b_train000", "bed", "b"), ("b_train001", "cup", "b"),
        ("a_train000", "tom", "a"), ("a_train001", "ada", "a"), ("a_train002", "mix", "a"),
    ]  # fmt: skip
    val = [(s.id, s.source) for s in load_split(data, "val")]
    assert val == [("b_val000", "b"), ("b_val001", "b"), ("a_val000", "a")]
    # max_lines applies to each source.
    assert [s.id for s in load_split(data, "train", max_lines=1)] == ["b_train000", "a_train000"]
    assert all(s.image.is_file() for s in train_samples)


def test_an_id_in_two_sources_is_a_data_error_naming_both(tmp_path):
    ta = write_tsv_dataset(tmp_path / "a", {"train": ["tom", "ada"]})
    tb = write_tsv_dataset(tmp_path / "b", {"train": ["bed"]})  # its train000 is also a's
    data = _data_cfg(f"name: first, root: '{ta}'", f"name: second, root: '{tb}'")
    with pytest.raises(DataError, match=r"line id 'train000' is in sources 'first' and 'second'"):
        load_split(data, "train")


def test_an_unknown_generator_is_refused(tmp_path):
    data = _data_cfg(f"name: a, root: '{tmp_path}', generate: handwriting")
    with pytest.raises(HTRError, match=r"generate='handwriting' is not one of"):
        load_split(data, "train")


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (["name: a, root: x", "name: '', root: y"], "every source needs a name and a root"),
        (["name: a"], "every source needs a name and a root"),
        (["name: a, root: x", "name: a, root: y"], "the name 'a' is used twice"),
        (["name: a, root: x, weight: -1", "name: b, root: y, weight: 1"], "weight and val_weight must be >= 0"),
        (["name: a, root: x, val_weight: -0.5"], "weight and val_weight must be >= 0"),
        (["name: a, root: x, weight: 2", "name: b, root: y"], "give every source a weight, or none"),
        (["name: a, root: x, val_weight: 0", "name: b, root: y, val_weight: 0"], "at least one source needs"),
        (["name: a, root: x, weight: 0", "name: b, root: y, weight: 0"], "the weights are all 0"),
    ],
    ids=[
        "no-name",
        "no-root",
        "repeated-name",
        "negative-weight",
        "negative-val-weight",
        "some-weights",
        "no-val",
        "zero-weights",
    ],
)
def test_check_sources_refuses(sources, message):
    data = _data_cfg(*sources)
    with pytest.raises(HTRError, match=re.escape(message)):
        check_sources(data)
    with pytest.raises(HTRError, match=re.escape(message)):  # load_split checks before reading anything
        load_split(data, "train")


def test_check_sources_accepts_weights_on_all_and_one_val_weight_zero():
    check_sources(_data_cfg("name: a, root: x, weight: 0, val_weight: 0", "name: b, root: y, weight: 1"))
    check_sources(_data_cfg("name: a, root: x", "name: b, root: y"))


# --- epoch_shares ------------------------------------------------------------------------------------------------


def test_epoch_shares_from_weights():
    lines = ["a"] * 10 + ["b"] * 3
    a, b = list(range(10)), [10, 11, 12]
    # 13 * 1/2 = 6.5 for each: the one line left over goes to the first of the equal remainders, 13 in all.
    even = _data_cfg("name: a, root: x, weight: 1", "name: b, root: y, weight: 1")
    assert epoch_shares(even, lines) == [(a, 7), (b, 6)]
    # 13 * 3/4 = 9.75 -> 10 and 13 * 1/4 = 3.25 -> 3.
    assert epoch_shares(_data_cfg("name: a, root: x, weight: 3", "name: b, root: y, weight: 1"), lines) == [
        (a, 10), (b, 3)
    ]  # fmt: skip
    # In the order of data.sources, whatever the order of the lines: 3 * 1/3 = 1 and 3 * 2/3 = 2.
    assert epoch_shares(_data_cfg("name: a, root: x, weight: 1", "name: b, root: y, weight: 2"), ["b", "b", "a"]) == [
        ([2], 1), ([0, 1], 2)
    ]  # fmt: skip
    # A source without lines is left out of the shares and of the weights' sum: 8 * 1/2 = 4 each, c gets none.
    three = _data_cfg("name: a, root: x, weight: 1", "name: b, root: y, weight: 1", "name: c, root: z, weight: 2")
    assert epoch_shares(three, ["a"] * 4 + ["b"] * 4) == [([0, 1, 2, 3], 4), ([4, 5, 6, 7], 4)]


def test_epoch_shares_none_without_weights_and_untagged_lines_keep_their_count():
    assert epoch_shares(_data_cfg("name: a, root: x", "name: b, root: y"), ["a", "b"]) is None
    assert epoch_shares(compose_config(["data=copiste", "data.root=unused"]).data, [None, None]) is None
    # Two untagged lines (synthetic_fraction's) are taken off the total first: 5 tagged lines, 4/5 and 1/5.
    data = _data_cfg("name: a, root: x, weight: 4", "name: b, root: y, weight: 1")
    assert epoch_shares(data, ["a", "b", None, "a", None, "b", "a"]) == [([0, 3, 6], 4), ([1, 5], 1), ([2, 4], 2)]


# --- the weighted sampler ----------------------------------------------------------------------------------------

A_LINES, B_LINES, C_LINES = [0, 1, 2, 3], [4, 5, 6, 7, 8, 9], [10, 11]
SHARES = [(A_LINES, 10), (B_LINES, 4), (C_LINES, 0)]  # a 2.5 times over per epoch, b 2/3 of it, c never
WIDTHS = [30 + 7 * (i % 5) for i in range(12)]


def _sampler(seed: int = 5) -> BucketBatchSampler:
    return BucketBatchSampler(WIDTHS, 4, shuffle=True, seed=seed, shares=SHARES)


def test_weighted_draw_shows_every_line_once_before_any_twice():
    s = _sampler()
    seq_a, seq_b = [], []
    for epoch in range(6):
        s.set_epoch(epoch)
        draw = s._weighted_draw()
        assert len(draw) == 14
        assert set(draw[:10]) <= set(A_LINES) and set(draw[10:]) <= set(B_LINES)
        seq_a += draw[:10]
        seq_b += draw[10:]
        batches = s.batches()
        assert sorted(i for b in batches for i in b) == sorted(draw)  # the batches hold exactly this draw
        assert sorted(len(b) for b in batches) == [2, 4, 4, 4]
    # Across epochs, each source's lines come in whole cycles, each a permutation of the source: 60 = 15 x 4
    # draws of a (epoch 0 ends half-way through its third cycle), 24 = 4 x 6 of b (a cycle spans epochs).
    cycles_a = [seq_a[i : i + 4] for i in range(0, 60, 4)]
    cycles_b = [seq_b[i : i + 6] for i in range(0, 24, 6)]
    assert all(sorted(c) == A_LINES for c in cycles_a)
    assert all(sorted(c) == B_LINES for c in cycles_b)
    assert len({tuple(c) for c in cycles_a}) > 1  # a fresh order per cycle


def test_weighted_sampler_is_deterministic_per_seed_and_epoch():
    s1, s2 = _sampler(), _sampler()
    for e in range(3):  # no state carried from epoch to epoch
        s1.set_epoch(e)
        list(s1)
    s1.set_epoch(3)
    s2.set_epoch(3)
    epoch3 = list(s1)
    assert epoch3 == list(s2)
    s2.set_epoch(4)
    assert list(s2) != epoch3
    other_seed = _sampler(seed=6)
    other_seed.set_epoch(3)
    assert list(other_seed) != epoch3
    assert other_seed._weighted_draw() != s1._weighted_draw()  # the draw itself depends on the seed


def test_weighted_sampler_length_and_start_batch():
    s = _sampler()
    assert len(s) == 4  # ceil((10 + 4 + 0) / 4)
    s.set_epoch(2)
    full = list(s)
    assert len(full) == 4
    s.set_epoch(2, start_batch=1)
    assert len(s) == 3
    assert list(s) == full[1:]
    s.set_epoch(2, start_batch=4)
    assert len(s) == 0 and list(s) == []


# --- validation per source ---------------------------------------------------------------------------------------

LABELS = ["<b>", "a", "b", "c", "d"]


class _Scripted(nn.Module):
    """A stand-in model whose forward returns the next of the given (log_probs, lengths)."""

    def __init__(self, outputs: list) -> None:
        super().__init__()
        self.outputs = list(outputs)

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple:
        return self.outputs.pop(0)


def _scripted(batches: list[list[tuple[str, str, str]]]) -> tuple[_Scripted, list[dict]]:
    """A model and a loader for batches of (id, reference, what the model reads): frames spell each reading
    with a blank between characters."""
    t = 12
    outputs, loader = [], []
    for batch in batches:
        lp = torch.full((t, len(batch), len(LABELS)), -20.0)
        lp[:, :, 0] = 0.0
        for i, (_, _, hyp) in enumerate(batch):
            for k, ch in enumerate(hyp):
                lp[2 * k, i, 0] = -20.0
                lp[2 * k, i, LABELS.index(ch)] = 0.0
        outputs.append((lp.log_softmax(-1), torch.full((len(batch),), t)))
        targets = [torch.tensor([LABELS.index(c) for c in ref]) for _, ref, _ in batch]
        loader.append({
            "images": torch.zeros(len(batch), 1, 8, 2 * t), "widths": torch.full((len(batch),), 2 * t),
            "targets": torch.cat(targets), "target_lengths": torch.tensor([len(x) for x in targets]),
            "texts": [ref for _, ref, _ in batch], "ids": [sid for sid, _, _ in batch],
        })  # fmt: skip
    return _Scripted(outputs), loader


# Source a: "abcd" read "ab" (2 of 4 characters wrong, its one word wrong). Source b: 5 characters, all right.
VAL_BATCHES = [[("a1", "abcd", "ab"), ("b1", "ca", "ca")], [("b2", "bd", "bd"), ("b3", "a", "a")]]
VAL_SOURCES = {"a1": "a", "b1": "b", "b2": "b", "b3": "b"}


def _validate(sources, val_weights):  # noqa: ANN001, ANN202
    model, loader = _scripted(VAL_BATCHES)
    return validate(model, loader, torch.device("cpu"), GreedyDecoder(LABELS), sources, val_weights)


def test_validate_weights_the_sources_cers():
    out = _validate(VAL_SOURCES, {"a": 1.0, "b": 3.0})
    assert out["predictions"] == {"a1": "ab", "b1": "ca", "b2": "bd", "b3": "a"}
    assert out["per_source"] == {
        "a": {"cer": 0.5, "wer": 1.0, "lines": 1},
        "b": {"cer": 0.0, "wer": 0.0, "lines": 3},
    }
    assert out["cer"] == pytest.approx((1 * 0.5 + 3 * 0.0) / 4)  # 0.125
    assert out["cer_pooled"] == pytest.approx(2 / 9)  # 2 errors in 4 + 5 characters
    assert out["wer"] == pytest.approx(1 / 4)
    assert math.isfinite(out["loss"])


def test_validate_val_weight_zero_and_default_weights():
    assert _validate(VAL_SOURCES, {"a": 0.0, "b": 1.0})["cer"] == 0.0
    assert _validate(VAL_SOURCES, None)["cer"] == pytest.approx((0.5 + 0.0) / 2)  # weight 1 each
    assert _validate(VAL_SOURCES, {"b": 3.0})["cer"] == pytest.approx((1 * 0.5 + 3 * 0.0) / 4)  # a: 1
    plain = _validate(None, None)
    assert "per_source" not in plain and "cer_pooled" not in plain
    assert plain["cer"] == pytest.approx(2 / 9)


def test_ctc_loss_values_by_hand():
    # Uniform log-probabilities. Line 1: 1 frame over 2 classes, target [1]: one path, probability 1/2.
    # Line 2: 3 frames over 3 classes, target [1, 2]: 5 paths (112, 122, 12_, 1_2, _12), each (1/3)^3.
    # Line 3: target [1, 1] needs 3 frames (a blank between the repeats) but has 2: infinite, zeroed.
    lp = torch.full((3, 3, 3), math.log(1 / 3))
    lp[:, 0, :2], lp[:, 0, 2] = math.log(1 / 2), -math.inf
    targets = torch.tensor([1, 1, 2, 1, 1])
    lengths, target_lengths = torch.tensor([1, 3, 2]), torch.tensor([1, 2, 2])
    none = ctc_loss(lp.half(), targets, lengths, target_lengths, reduction="none")
    assert none.dtype == torch.float32
    expected = [math.log(2), math.log(27 / 5), 0.0]
    assert none.tolist() == pytest.approx(expected, abs=2e-3)  # float16 log-probabilities
    mean = ctc_loss(lp, targets, lengths, target_lengths)
    assert float(mean) == pytest.approx((math.log(2) / 1 + math.log(27 / 5) / 2 + 0.0) / 3, rel=1e-5)


# --- CRNN: column max-pool and CTC shortcut ----------------------------------------------------------------------

TINY = {
    "height": 32, "conv_channels": [8, 16, 24], "conv_kernels": [3, 3, 3], "conv_pools": [[2, 2], [2, 1], [2, 1]],
    "conv_dropout": [0, 0, 0], "lstm_hidden": 12, "lstm_layers": 1, "lstm_dropout": 0, "out_dropout": 0,
}  # fmt: skip


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 1, 32, 44, generator=g), torch.tensor([44, 30])


def test_column_max_pool():
    torch.manual_seed(0)
    model = CRNN(structured(ModelConfig, {**TINY, "column_pool": "max"}), 5).eval()
    flat = CRNN(structured(ModelConfig, TINY), 5)
    assert model.feature_size == 24 and flat.feature_size == 24 * 4  # 32 rows pooled 3 times by 2: 4 left
    assert model.lstm.input_size == 24
    images, widths = _batch()
    with torch.no_grad():
        fmap = nn.Sequential.forward(model.conv, images)  # (N, 24, 4, 22)
        frames = model.conv(images)
        log_probs, lengths = model(images, widths)
    assert fmap.shape == (2, 24, 4, 22)
    assert torch.equal(frames, fmap.max(dim=2).values.permute(2, 0, 1))  # each frame: the maximum over the rows
    assert log_probs.shape == (22, 2, 5)  # T = 44 // 2
    assert lengths.tolist() == [22, 15]


def test_unknown_column_pool_is_a_value_error():
    with pytest.raises(ValueError, match=r"model.column_pool='mean' is not one of flatten, max"):
        CRNN(structured(ModelConfig, {**TINY, "column_pool": "mean"}), 5)


def test_ctc_shortcut_head():
    torch.manual_seed(0)
    model = CRNN(structured(ModelConfig, {**TINY, "column_pool": "max", "ctc_shortcut": 0.3}), 5)
    assert isinstance(model.shortcut, nn.Conv1d)
    assert model.shortcut.weight.shape == (5, 24, 3)
    images, widths = _batch()
    log_probs, lengths, aux = model(images, widths, shortcut=True)
    assert aux.shape == log_probs.shape == (22, 2, 5)
    assert torch.allclose(aux.exp().sum(-1), torch.ones(22, 2))
    assert len(model(images, widths)) == 2  # without shortcut=True: as at inference
    targets, target_lengths = torch.tensor([1, 2, 3, 4, 1]), torch.tensor([3, 2])
    # The shortcut's loss reaches the head and the conv layers, not the LSTM or the output layer.
    ctc_loss(aux, targets, lengths, target_lengths).backward()
    assert model.shortcut.weight.grad is not None and model.shortcut.weight.grad.abs().sum() > 0
    assert model.conv[0].weight.grad.abs().sum() > 0
    assert model.linear.weight.grad is None and all(p.grad is None for p in model.lstm.parameters())
    model.zero_grad(set_to_none=True)
    log_probs, lengths = model(images, widths)
    ctc_loss(log_probs, targets, lengths, target_lengths).backward()
    assert model.shortcut.weight.grad is None  # the main loss alone does not train the head


def test_no_shortcut_head_without_a_weight():
    model = CRNN(structured(ModelConfig, TINY), 5)
    assert model.shortcut is None
    assert not any(k.startswith("shortcut.") for k in model.state_dict())
    images, widths = _batch()
    assert len(model(images, widths, shortcut=True)) == 2


# --- the shipped recipe ------------------------------------------------------------------------------------------


def test_french_medium_recipe_composes():
    cfg = compose_config(["experiment=french_medium", "train.out_dir=/tmp/unused"])
    assert [(s.name, s.weight, s.val_weight) for s in cfg.data.sources] == [
        ("copiste", 5.5, 1.0), ("peraire", 2.8, 1.0), ("poilus", 1.7, 1.0)
    ]  # fmt: skip
    assert cfg.train.ema_decay == 0.999
    assert cfg.model.name == "medium" and cfg.model.column_pool == "max" and cfg.model.ctc_shortcut == 0.1
    model = CRNN(structured(ModelConfig, cfg.model), 10)
    assert model.width_stride == 8 and model.feature_size == 128
    check_sources(cfg.data)


# --- training on two sources, EMA, resume, evaluate --------------------------------------------------------------


@pytest.fixture(scope="module")
def two_source_run(tmp_path_factory):
    """Three steps of a tiny model (column max-pool, CTC shortcut, EMA 0.9) on two sources: two steps, then one
    more resumed from last.pt. The checkpoints and what each run printed."""
    tmp = tmp_path_factory.mktemp("two_sources")
    ta = _source_dataset(tmp / "a", "a_", {"train": ["tom", "ada", "mix", "zoe"], "val": ["tom", "mix"],
                                           "test": ["ada", "zoe", "tom"]})  # fmt: skip
    tb = _source_dataset(tmp / "b", "b_", {"train": ["bed", "cup", "hat", "jug"], "val": ["cup", "jug"],
                                           "test": ["hat", "bed"]})  # fmt: skip
    run = tmp / "run"
    common = [
        "data=copiste", f"data.root={ta}", "data.cache_dir=null", f"train.out_dir={run}",
        _sources_override(f"name: a, root: '{ta}', weight: 1, val_weight: 1",
                          f"name: b, root: '{tb}', weight: 3, val_weight: 3"),
        "data.batch_size=4", "train.max_epochs=5", "train.ema_decay=0.9", "train.progress=false", "train.seed=3",
        "train.threads=1", "optim.lr=0.01", "optim.scheduler=none", "model.column_pool=max", "model.ctc_shortcut=0.1",
        *TINY_MODEL,
    ]  # fmt: skip
    first, second = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(first):
        train(compose_config([*common, "train.max_steps=2"]))
    after_two = torch.load(run / "last.pt", weights_only=True)
    best = torch.load(run / "best.pt", weights_only=True)
    with contextlib.redirect_stdout(second):
        train(compose_config([*common, "train.max_steps=3", f"train.resume={run / 'last.pt'}"]))
    after_three = torch.load(run / "last.pt", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the same three steps without the interruption
        train(compose_config([*common, "train.max_steps=3", f"train.out_dir={tmp / 'full'}"]))
    full = torch.load(tmp / "full" / "last.pt", weights_only=True)
    return {"a": ta, "b": tb, "run": run, "first": first.getvalue(), "second": second.getvalue(),
            "after_two": after_two, "best": best, "after_three": after_three, "full": full}  # fmt: skip


def test_training_reports_each_source(two_source_run):
    out = two_source_run["first"]
    # 8 training lines, weights 1 and 3: a gets 8/4 = 2 lines an epoch, b 8 * 3/4 = 6 (each of its 4 lines
    # 1.5 times); 8 lines in batches of 4 make 2 steps an epoch.
    assert "training lines per epoch by source: a 2 of 4, b 6 of 4" in out
    m = re.search(r"epoch 1 step 2: val loss \S+ CER (\d\.\d{4}) .*; a (\d\.\d{4}), b (\d\.\d{4})$", out, re.M)
    assert m, out
    cer, cer_a, cer_b = (float(x) for x in m.groups())
    assert cer == pytest.approx((cer_a + 3 * cer_b) / 4, abs=1e-4)
    assert "resumed from" in two_source_run["second"] and "at epoch 1, step 2" in two_source_run["second"]
    # Step 3 is the first of epoch 2, where max_steps stops the resumed run: numbered as the epoch that ran.
    assert re.search(
        r"^epoch 2 \(stopped part-way\) step 3: .*; a \d\.\d{4}, b \d\.\d{4}$", two_source_run["second"], re.M
    )


def test_checkpoints_hold_ema_and_raw_weights_and_resume_continues_the_average(two_source_run):
    two, three, best = two_source_run["after_two"], two_source_run["after_three"], two_source_run["best"]
    assert two["state"]["step"] == 2 and two["state"]["ema_updates"] == 2
    assert three["state"]["step"] == 3 and three["state"]["ema_updates"] == 3
    for ckpt in (two, three, best):
        assert set(ckpt["model"]) == set(ckpt["train_model"])
        assert any("shortcut." in k for k in ckpt["model"])
    assert best["state"]["step"] == 2
    # After two updates the average (0.9 * step 1 + 0.1 * step 2) is not the raw step-2 weights.
    assert not torch.equal(best["model"]["linear.weight"], best["train_model"]["linear.weight"])
    # The epoch line's validation loss is that of the averaged weights (best.pt's "model"), not the raw ones.
    printed = float(re.search(r"epoch 1 step 2: val loss (\S+)", two_source_run["first"]).group(1))
    ema_loss, raw_loss = (_val_loss(best, name, two_source_run) for name in ("model", "train_model"))
    assert ema_loss == pytest.approx(printed, abs=6e-4)
    assert abs(raw_loss - printed) > 2e-3
    assert not torch.equal(two["train_model"]["linear.weight"], three["train_model"]["linear.weight"])
    # The shortcut head is trained (its loss is part of the training loss).
    assert not torch.equal(two["train_model"]["shortcut.weight"], three["train_model"]["shortcut.weight"])
    # Resuming restores both the average and its update count: the third update is 0.9 * old + 0.1 * new
    # (a lost average, or a count back at 0, would make it a copy of the raw weights).
    for k, old in two["model"].items():
        if old.is_floating_point():
            expected = 0.9 * old + 0.1 * three["train_model"][k]
            assert torch.allclose(three["model"][k], expected, atol=1e-6), k
    # And the resumed run ends where the uninterrupted one does, raw and averaged weights alike.
    full = two_source_run["full"]
    assert full["state"]["step"] == 3
    for name in ("model", "train_model"):
        for k, v in full[name].items():
            assert torch.equal(three[name][k], v), (name, k)


def _val_loss(ckpt: dict, weights: str, run: dict) -> float:
    """The validation loss of one set of a checkpoint's weights, computed line by line as in validate."""
    from htr.charset import Charset
    from htr.config import PreprocessConfig
    from htr.data.lines import preprocess_file

    model = CRNN(structured(ModelConfig, ckpt["config"]["model"]), len(ckpt["charset"]) + 1)
    model.load_state_dict(ckpt[weights])
    model.eval()
    charset, pre = Charset(ckpt["charset"]), structured(PreprocessConfig, ckpt["preprocess"])
    losses = []
    for tsv, texts in ((run["a"], ["tom", "mix"]), (run["b"], ["cup", "jug"])):
        for i, text in enumerate(texts):
            image = torch.from_numpy(preprocess_file(tsv.parent / "lines" / f"val{i:03d}.png", pre) / 255.0)
            with torch.no_grad():
                log_probs, lengths = model(image.float()[None, None], torch.tensor([image.shape[1]]))
            target = torch.tensor(charset.encode(text))
            loss = torch.nn.functional.ctc_loss(log_probs, target[None], lengths, torch.tensor([len(text)]))
            losses.append(float(loss))  # "mean" reduction: already divided by the target length
    return sum(losses) / len(losses)


def test_evaluate_several_datasets(two_source_run, monkeypatch, capsys):
    from htr import evaluate

    ckpt, ta, tb = two_source_run["run"] / "last.pt", two_source_run["a"], two_source_run["b"]
    monkeypatch.setattr(sys, "argv", ["htr.evaluate", str(ckpt), str(ta), str(tb), "--json", "--device", "cpu"])
    assert evaluate.main() == 0
    result = json.loads(capsys.readouterr().out)
    per = result["sources"]
    assert list(per) == ["a", "b"]
    assert (per["a"]["lines"], per["b"]["lines"], result["lines"]) == (3, 2, 5)
    assert (per["a"]["chars"], per["b"]["chars"], result["chars"]) == (9, 6, 15)
    assert result["char_errors"] == per["a"]["char_errors"] + per["b"]["char_errors"]
    assert result["cer"] == pytest.approx(result["char_errors"] / 15)

    monkeypatch.setattr(sys, "argv", ["htr.evaluate", str(ckpt), str(ta), str(tb), "--device", "cpu"])
    assert evaluate.main() == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows] == ["data", "a", "b", "total"]
    assert [(int(r[3]), int(r[4])) for r in rows[1:]] == [(3, 9), (2, 6), (5, 15)]


def test_combine_pools_the_totals_and_source_name():
    results = {
        "x": {"lines": 2, "chars": 10, "words": 3, "char_errors": 1, "word_errors": 1, "cer": 0.1, "wer": 1 / 3},
        "y": {"lines": 1, "chars": 30, "words": 5, "char_errors": 6, "word_errors": 0, "cer": 0.2, "wer": 0.0},
    }
    total = combine(results)
    assert {k: total[k] for k in ("lines", "chars", "words", "char_errors", "word_errors")} == {
        "lines": 3, "chars": 40, "words": 8, "char_errors": 7, "word_errors": 1
    }  # fmt: skip
    assert total["cer"] == pytest.approx(7 / 40)  # pooled, not the mean of 0.1 and 0.2
    assert total["wer"] == pytest.approx(1 / 8)
    empty = combine({"z": {"lines": 0, "chars": 0, "words": 0, "char_errors": 0, "word_errors": 0}})
    assert empty["cer"] == 0.0 and empty["wer"] == 0.0
    assert source_name("/data/copiste/lines.tsv") == "copiste"
    assert source_name("/data/iam/lines.txt") == "iam"
    assert source_name("/data/pairs") == "pairs"
    assert source_name("/data/pages/page1.xml") == "page1.xml"
