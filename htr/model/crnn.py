"""The recognizer: convolutional feature extractor -> bidirectional LSTMs (packed) -> linear -> log-softmax."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from htr.config import ModelConfig

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01), "gelu": nn.GELU}


def _check(cfg: ModelConfig) -> None:
    n = len(cfg.conv_channels)
    for name in ("conv_kernels", "conv_pools", "conv_dropout"):
        if len(getattr(cfg, name)) != n:
            raise ValueError(f"model.{name} has {len(getattr(cfg, name))} entries but model.conv_channels has {n}")
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"model.activation={cfg.activation!r} is not one of {sorted(ACTIVATIONS)}")
    h = cfg.height
    for ph, _ in cfg.conv_pools:
        h //= ph
    if h < 1:
        raise ValueError(f"model.height={cfg.height} is too small for the pooling in model.conv_pools")


class CRNN(nn.Module):
    """CNN-BiLSTM-CTC line recognizer over ``num_classes`` labels (blank = 0).

    ``forward(images (N, 1, H, W), widths (N,))`` returns log-probabilities ``(T, N, C)`` and the valid output
    length of each line ``(N,)``; frames past a line's length are padding.
    """

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__()
        _check(cfg)
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in, h = 1, cfg.height
        for c_out, k, (ph, pw), p in zip(
            cfg.conv_channels, cfg.conv_kernels, cfg.conv_pools, cfg.conv_dropout, strict=True
        ):
            if p > 0:
                layers.append(nn.Dropout2d(p))
            layers.append(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=not cfg.batchnorm))
            if cfg.batchnorm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(ACTIVATIONS[cfg.activation]())
            if ph > 1 or pw > 1:
                layers.append(nn.MaxPool2d((ph, pw), (ph, pw)))
            c_in, h = c_out, h // ph
        self.conv = nn.Sequential(*layers)
        self.pool_widths = [pw for _, pw in cfg.conv_pools]
        self.feature_size = c_in * h
        self.lstm_dropout = nn.Dropout(cfg.lstm_dropout)
        self.lstm = nn.LSTM(
            self.feature_size,
            cfg.lstm_hidden,
            num_layers=cfg.lstm_layers,
            bidirectional=True,
            dropout=cfg.lstm_dropout if cfg.lstm_layers > 1 else 0.0,
        )
        self.out_dropout = nn.Dropout(cfg.out_dropout)
        self.linear = nn.Linear(2 * cfg.lstm_hidden, num_classes)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        """Number of output frames for input widths (pooling floors the width at each block)."""
        out = widths.clone()
        for pw in self.pool_widths:
            out = torch.div(out, pw, rounding_mode="floor")
        return out

    @property
    def width_stride(self) -> int:
        """Input columns per output frame."""
        s = 1
        for pw in self.pool_widths:
            s *= pw
        return s

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities (T, N, C) and output lengths (N,) for a padded batch (N, 1, H, W)."""
        x = self.conv(images)  # (N, C', H', T)
        n, c, h, t = x.shape
        x = x.reshape(n, c * h, t).permute(2, 0, 1)  # (T, N, F)
        lengths = self.output_lengths(widths).clamp(min=1, max=t)
        x = self.lstm_dropout(x)
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        y, _ = self.lstm(packed)
        y, _ = pad_packed_sequence(y, total_length=t)  # (T, N, 2*hidden)
        y = self.linear(self.out_dropout(y))  # (T, N, classes)
        return y.log_softmax(-1), lengths


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
