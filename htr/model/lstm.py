"""Bidirectional LSTMs over padded batches of lines of different lengths, two ways that give the same result.

- :func:`packed_bilstm`: PyTorch's packed sequences. Used on CUDA (cuDNN runs them well) and for ONNX export
  (the exporter turns them into the ``sequence_lens`` input of ONNX's LSTM).
- :func:`reversed_bilstm`: on CPU, PyTorch's packed LSTM takes a slow per-time-step path whose backward pass
  costs about twice the whole rest of a training step (docs/results.md, "Training throughput"). This runs each
  direction of each layer as one ordinary (oneDNN) LSTM call on the padded batch instead; the backward direction
  reads each line reversed *within its own length*, so it starts at the line's last real frame exactly as with
  packing, and padding never reaches a real frame.
  Frames past a line's length are zeroed, as ``pad_packed_sequence`` does.

Both take the parameters of one ``nn.LSTM(bidirectional=True)``, so checkpoints do not depend on the path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def packed_bilstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``lstm`` over ``x`` (T, N, F) with per-line ``lengths`` (N,) via packed sequences; (T, N, 2*hidden)."""
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    y, _ = lstm(packed)
    y, _ = pad_packed_sequence(y, total_length=x.shape[0])
    return y


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each line's first ``lengths[i]`` frames of ``x`` (T, N, F) in reverse order; padding frames stay put."""
    steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (T, 1)
    ends = lengths.to(x.device).unsqueeze(0)  # (1, N)
    index = torch.where(steps < ends, ends - 1 - steps, steps)  # (T, N)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


def reversed_bilstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The same as :func:`packed_bilstm`, one unpacked LSTM call per direction and layer; (T, N, 2*hidden)."""
    if not lstm.bidirectional or lstm.batch_first or lstm.proj_size:
        raise ValueError("reversed_bilstm takes a bidirectional, time-first LSTM without projections")
    n = x.shape[1]
    h0 = x.new_zeros(1, n, lstm.hidden_size)
    out = x
    for layer in range(lstm.num_layers):
        if layer > 0 and lstm.dropout > 0:  # nn.LSTM's dropout: on each layer's output but the last
            out = F.dropout(out, lstm.dropout, lstm.training)
        directions = []
        for suffix in ("", "_reverse"):
            params = [getattr(lstm, f"{w}_l{layer}{suffix}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            inp = reverse_within_lengths(out, lengths) if suffix else out
            y, _, _ = torch.lstm(inp, (h0, h0), params, True, 1, 0.0, lstm.training, False, False)
            directions.append(reverse_within_lengths(y, lengths) if suffix else y)
        out = torch.cat(directions, dim=-1)  # (T, N, 2*hidden)
    valid = torch.arange(x.shape[0], device=x.device).unsqueeze(1) < lengths.to(x.device).unsqueeze(0)
    return out * valid.unsqueeze(-1)
