"""Widen a trained model without changing what it computes (``train.init_lstm_hidden``, ``train.init_conv_channels``).

A model that has stopped improving under restarts of its schedule may need more units, and training a wider
model from scratch throws away hours of CPU training. Net2Net (Chen, Goodfellow and Shlens, ICLR 2016) widens a
trained network so that it starts from the same function. This does it the simple way: every trained weight keeps
its value and place; a new unit (LSTM cell or conv channel) gets the fresh model's random incoming weights, and
every weight *from* a new unit *to* a trained one (the next layer's input, the LSTM's recurrence, the output
layer, the CTC shortcut) starts at zero. The trained units therefore compute exactly what they did, whatever the
new ones output; training moves the zeroed weights first (their gradients are not zero, the new units' outputs
are), and the new units' incoming weights follow.

Index maps say where each trained unit lands: conv channels and LSTM units keep their numbers (the new ones come
after); PyTorch stacks an LSTM's four gates (``i, f, g, o``) in blocks of ``hidden`` rows and a bidirectional
layer's output as ``[forward, reverse]``, so those move by block.
"""

from __future__ import annotations

import torch

from htr.config import ModelConfig
from htr.model.crnn import CRNN, feature_rows


def _blocks(n_old: int, n_new: int, blocks: int) -> list[int]:
    """Where the ``blocks`` consecutive blocks of ``n_old`` units go when each block grows to ``n_new``."""
    return [b * n_new + u for b in range(blocks) for u in range(n_old)]


def _features(old: ModelConfig, channels: int) -> list[int]:
    """Where the trained conv features land among the LSTMs' inputs. Flattened features are ``channel * rows +
    row`` (channel-major), so the new channels' come after; the rows do not change."""
    return list(range(channels if old.column_pool == "max" else channels * feature_rows(old)))


def _place(fresh: torch.Tensor, trained: torch.Tensor, rows: list[int], cols: list[int] | None) -> torch.Tensor:
    """``fresh`` with ``trained`` put at ``rows`` (and ``cols``), and the trained rows' other columns (inputs from
    new units) zeroed."""
    out = fresh.clone()
    r = torch.tensor(rows)
    if cols is None:
        out[r] = trained.to(out.dtype)
        return out
    c = torch.tensor(cols)
    new_cols = torch.tensor(sorted(set(range(out.shape[1])) - set(cols)), dtype=torch.long)
    out[r.unsqueeze(1), new_cols.unsqueeze(0)] = 0
    out[r.unsqueeze(1), c.unsqueeze(0)] = trained.to(out.dtype)
    return out


def _conv_maps(old: ModelConfig, model: CRNN) -> dict[str, tuple[list[int], list[int] | None]]:
    """Row and column maps of the conv encoder's weights, by name."""
    maps: dict[str, tuple[list[int], list[int] | None]] = {}
    c_in = [0]  # the one grey input channel
    block = -1
    for index, layer in enumerate(model.conv):
        if isinstance(layer, torch.nn.Conv2d):
            block += 1
            c_out = list(range(old.conv_channels[block]))
            maps[f"conv.{index}.weight"] = (c_out, c_in)
            maps[f"conv.{index}.bias"] = (c_out, None)
            c_in = c_out
        elif isinstance(layer, torch.nn.BatchNorm2d):
            for name in ("weight", "bias", "running_mean", "running_var"):
                maps[f"conv.{index}.{name}"] = (c_in, None)
    return maps


def widened_state(trained: dict[str, torch.Tensor], old: ModelConfig, model: CRNN) -> dict[str, torch.Tensor]:
    """``trained`` (the weights of a model ``old`` describes) laid into the wider ``model``'s shapes, new units
    from ``model``'s own initial weights with their outgoing weights zeroed (see the module's docstring). The
    output layer keeps its rows (labels), so :func:`htr.finetune.load_pretrained` can still map them."""
    new = model.cfg
    h, hh = old.lstm_hidden, new.lstm_hidden
    gates, units, both = _blocks(h, hh, 4), list(range(h)), _blocks(h, hh, 2)
    features = _features(old, old.conv_channels[-1])
    maps = _conv_maps(old, model)
    for layer in range(new.lstm_layers):
        for sfx in ("", "_reverse"):
            maps[f"lstm.weight_ih_l{layer}{sfx}"] = (gates, features if layer == 0 else both)
            maps[f"lstm.weight_hh_l{layer}{sfx}"] = (gates, units)
            maps[f"lstm.bias_ih_l{layer}{sfx}"] = (gates, None)
            maps[f"lstm.bias_hh_l{layer}{sfx}"] = (gates, None)
    labels = list(range(trained["linear.weight"].shape[0]))
    maps["linear.weight"] = (labels, both)
    maps["shortcut.weight"] = (labels, features)  # (labels, features, 3)
    fresh = model.state_dict()
    out = {}
    for name, value in trained.items():
        rows, cols = maps.get(name, (None, None))
        if rows is None or value.shape == fresh[name].shape:
            out[name] = value
        elif rows is labels:  # the output layers keep the checkpoint's labels (load_pretrained maps them to the
            # new charset); only their inputs widen, and those from new units start at zero
            out[name] = _place(fresh[name].new_zeros((value.shape[0], *fresh[name].shape[1:])), value, rows, cols)
        else:
            out[name] = _place(fresh[name], value, rows, cols)
    return out
