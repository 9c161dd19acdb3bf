"""Widening a trained model (htr/widen.py, train.init_lstm_hidden / train.init_conv_channels): the wider model
computes what the trained one did, keeps every trained weight in place, and its new units can learn."""

from __future__ import annotations

import pytest
import torch

from htr.checkpoint import load_checkpoint
from htr.config import ModelConfig, structured
from htr.model import CRNN
from htr.train import train
from htr.widen import widened_state

from .conftest import write_tsv_dataset
from .test_train import WORDS, _cfg


def _model(seed: int, **sizes) -> CRNN:
    torch.manual_seed(seed)
    base = {"height": 32, "conv_channels": [4, 8, 12], "conv_kernels": [3, 3, 3], "conv_dropout": [0.0, 0.0, 0.0],
            "conv_pools": [[2, 2], [2, 1], [2, 1]], "lstm_hidden": 10, "lstm_layers": 2}  # fmt: skip
    model = CRNN(structured(ModelConfig, {**base, **sizes}), 7)
    with torch.no_grad():  # batch norm's statistics away from 0 and 1, so that misplaced channels would show
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model.eval()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({}, {"lstm_hidden": 16}),
        ({}, {"conv_channels": [6, 8, 20]}),
        ({}, {"lstm_hidden": 13, "conv_channels": [5, 9, 12]}),
        (
            {"column_pool": "max", "ctc_shortcut": 0.1},
            {"column_pool": "max", "ctc_shortcut": 0.1, "lstm_hidden": 14, "conv_channels": [4, 10, 16]},
        ),  # fmt: skip
    ],
)
def test_the_widened_model_reads_exactly_as_the_trained_one(old, new):
    trained = _model(0, **old)
    wide = _model(1, **new)
    wide.load_state_dict(widened_state(trained.state_dict(), trained.cfg, wide))
    images = torch.rand(3, 1, 32, 40)
    widths = torch.tensor([40, 33, 17])
    with torch.no_grad():
        want, got = trained(images, widths, shortcut=True), wide(images, widths, shortcut=True)
    for a, b in zip(want, got, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    # the new units are not dead: their incoming weights are the fresh model's, not zeros
    name = "lstm.weight_hh_l1_reverse" if "lstm_hidden" in new else "conv.0.weight"
    assert wide.state_dict()[name].abs().sum() > trained.state_dict()[name].abs().sum()


def test_a_wider_lstm_learns_through_its_new_units():
    """The zeroed outgoing weights get gradients at once (the new units' outputs are not zero)."""
    trained = _model(0)
    wide = _model(1, lstm_hidden=16)
    wide.load_state_dict(widened_state(trained.state_dict(), trained.cfg, wide))
    wide.train()
    log_probs, lengths = wide(torch.rand(2, 1, 32, 40), torch.tensor([40, 40]))
    loss = torch.nn.functional.ctc_loss(log_probs, torch.tensor([[1, 2, 3], [4, 5, 6]]), lengths,
                                        torch.tensor([3, 3]))  # fmt: skip
    loss.backward()
    new_columns = wide.linear.weight.grad[:, 10:16]  # forward direction's new units, into the output layer
    assert new_columns.abs().sum() > 0


def test_init_lstm_hidden_and_conv_channels_widen_a_checkpoint_in_training(tmp_path):
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    train(_cfg(tsv, tmp_path / "base", ["train.max_steps=1"]))
    base = load_checkpoint(tmp_path / "base" / "last.pt")
    train(_cfg(tsv, tmp_path / "ft", [f"train.init_from={tmp_path / 'base' / 'last.pt'}", "train.max_steps=1",
                                       "optim.lr=0", "train.init_lstm_hidden=56",
                                       "train.init_conv_channels=[8,16,32]"]))  # fmt: skip
    ft = load_checkpoint(tmp_path / "ft" / "last.pt")
    old, new = base["config"]["model"], ft["config"]["model"]
    assert (new["lstm_hidden"], new["conv_channels"]) == (56, [8, 16, 32])
    assert {k: v for k, v in new.items() if k not in ("lstm_hidden", "conv_channels")} == {
        k: v for k, v in old.items() if k not in ("lstm_hidden", "conv_channels")
    }
    h = old["lstm_hidden"]
    # lr 0: the trained weights are where they were (the forget gate's block of the reverse direction, say)
    w_old, w_new = base["model"]["lstm.weight_hh_l0_reverse"], ft["model"]["lstm.weight_hh_l0_reverse"]
    assert torch.equal(w_new[56 : 56 + h, :h], w_old[h : 2 * h])
    assert torch.equal(ft["model"]["linear.weight"][:, 56 : 56 + h], base["model"]["linear.weight"][:, h:])
    assert not ft["model"]["linear.weight"][:, h:56].any()


@pytest.mark.parametrize(
    ("extra", "init", "message"),
    [
        (["train.init_lstm_hidden=40"], True, r"init_lstm_hidden=40 is narrower than the 48 units of \S+last.pt"),
        (["train.init_conv_channels=[8,16]"], True, r"needs one width for each conv block of \S+ \(\[8, 16, 24\]"),
        (["train.init_conv_channels=[8,12,24]"], True, r"is narrower than \S+'s \[8, 16, 24\] in some block"),
        (["train.init_lstm_hidden=64"], False, r"train.init_lstm_hidden changes .* no train.init_from is set"),
    ],
)
def test_widening_that_does_not_fit_is_one_clear_error(tmp_path, extra, init, message):
    from htr.errors import HTRError

    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    base = tmp_path / "base" / "last.pt"
    if init:
        train(_cfg(tsv, tmp_path / "base", ["train.max_steps=1"]))
    with pytest.raises(HTRError, match=message):
        train(_cfg(tsv, tmp_path / "ft", [*extra, "train.max_steps=1", *([f"train.init_from={base}"] if init else [])]))
