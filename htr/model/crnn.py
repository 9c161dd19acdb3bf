"""The recognizer: conv (or flat MLP) encoder -> bidirectional LSTMs (length-aware) -> linear -> log-softmax."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from htr.config import ModelConfig
from htr.model.lstm import packed_bilstm, reversed_bilstm

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01), "gelu": nn.GELU}


ENCODERS = ("conv", "flat")
COLUMN_POOLS = ("flatten", "max")


def _check(cfg: ModelConfig) -> None:
    if cfg.encoder not in ENCODERS:
        raise ValueError(f"model.encoder={cfg.encoder!r} is not one of {', '.join(ENCODERS)}")
    if cfg.encoder == "flat":
        if not 1 <= cfg.flat_stride <= cfg.flat_window:
            raise ValueError(
                f"model.flat_stride={cfg.flat_stride} must be between 1 and model.flat_window={cfg.flat_window}"
            )
        if cfg.height < 1 or not cfg.flat_hidden or any(n < 1 for n in cfg.flat_hidden):
            raise ValueError("model.height and model.flat_hidden (at least one layer) must be positive")
        return
    n = len(cfg.conv_channels)
    for name in ("conv_kernels", "conv_pools", "conv_dropout"):
        if len(getattr(cfg, name)) != n:
            raise ValueError(f"model.{name} has {len(getattr(cfg, name))} entries but model.conv_channels has {n}")
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"model.activation={cfg.activation!r} is not one of {sorted(ACTIVATIONS)}")
    if cfg.column_pool not in COLUMN_POOLS:
        raise ValueError(f"model.column_pool={cfg.column_pool!r} is not one of {', '.join(COLUMN_POOLS)}")
    if feature_rows(cfg) < 1:
        raise ValueError(f"model.height={cfg.height} is too small for the pooling in model.conv_pools")


def feature_rows(cfg: ModelConfig) -> int:
    """Rows of the conv encoder's output at the model's input height (each pooling floors); with
    ``column_pool=flatten`` they size the LSTMs' input."""
    rows = cfg.height
    for pool_height, _ in cfg.conv_pools:
        rows //= pool_height
    return rows


def width_stride(cfg: ModelConfig) -> int:
    """Input columns per output frame of the model ``cfg`` describes (no model needs to be built for it)."""
    _check(cfg)
    if cfg.encoder == "flat":
        return cfg.flat_stride
    return math.prod(pw for _, pw in cfg.conv_pools)


class ConvEncoder(nn.Sequential):
    """Conv blocks (dropout, conv, batch norm, activation, max pooling) whose output columns are the frames.

    ``forward(images (N, 1, H, W))`` gives features ``(T, N, feature_size)`` with ``T = W // width_stride``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
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
        super().__init__(*layers)
        self.pool_widths = [pw for _, pw in cfg.conv_pools]
        self.column_max = cfg.column_pool == "max"
        self.feature_size = c_in if self.column_max else c_in * h

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features (T, N, F) of a padded batch (N, 1, H, W)."""
        x = super().forward(images)  # (N, C', H', T)
        if self.column_max:
            return x.amax(dim=2).permute(2, 0, 1)
        n, c, h, t = x.shape
        return x.reshape(n, c * h, t).permute(2, 0, 1)

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


class FlatEncoder(nn.Module):
    """The "flat DNN": an MLP over windows of raw pixels, no convolution in the modelling sense.

    The image is padded with background (0) by ``(window - stride) // 2`` columns on the left and the rest of
    ``window - stride`` on the right, then cut into windows ``window`` columns wide every ``stride`` columns
    (:meth:`windows`); each ``H x window`` window, flattened row by row, goes through ``Linear -> ReLU ->
    Dropout`` layers of ``flat_hidden`` sizes. Window ``t`` is centred on columns ``t * stride .. (t + 1) *
    stride - 1``, so a line of width ``W`` gives ``W // stride`` frames.

    The first layer, a linear map of each flattened window, is computed as what it equals: a ``Conv2d`` with
    one ``(H, window)`` kernel per hidden unit and stride ``(1, stride)`` (``first.weight.view(n, -1)`` is the
    linear layer's weight). This avoids copying the overlapping windows and exports to ONNX with a dynamic
    width, which ``Tensor.unfold`` does not.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.height, self.window, self.stride = cfg.height, cfg.flat_window, cfg.flat_stride
        self.pad_left = (self.window - self.stride) // 2
        self.pad_right = self.window - self.stride - self.pad_left
        self.first = nn.Conv2d(1, cfg.flat_hidden[0], (cfg.height, self.window), stride=(1, self.stride))
        layers: list[nn.Module] = [nn.ReLU()]
        if cfg.flat_dropout > 0:
            layers.append(nn.Dropout(cfg.flat_dropout))
        for n_in, n_out in zip(cfg.flat_hidden, cfg.flat_hidden[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
            if cfg.flat_dropout > 0:
                layers.append(nn.Dropout(cfg.flat_dropout))
        self.mlp = nn.Sequential(*layers)
        self.feature_size = cfg.flat_hidden[-1]

    def windows(self, images: torch.Tensor) -> torch.Tensor:
        """The flattened pixel windows ``(T, N, H * window)`` of a padded batch (N, 1, H, W), row by row."""
        x = F.pad(images, (self.pad_left, self.pad_right)).unfold(3, self.window, self.stride)  # (N, 1, H, T, w)
        n, _, h, t, w = x.shape
        return x.permute(3, 0, 1, 2, 4).reshape(t, n, h * w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features (T, N, F) of a padded batch (N, 1, H, W)."""
        x = self.first(F.pad(images, (self.pad_left, self.pad_right)))  # (N, hidden, 1, T)
        return self.mlp(x.squeeze(2).permute(2, 0, 1))  # (T, N, F)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        """Number of output frames for input widths: ``W // stride``."""
        return torch.div(widths, self.stride, rounding_mode="floor")

    @property
    def width_stride(self) -> int:
        """Input columns per output frame."""
        return self.stride


class CRNN(nn.Module):
    """Encoder -> BiLSTM -> linear line recognizer over ``num_classes`` labels (blank = 0).

    The encoder is :class:`ConvEncoder` (``model.encoder=conv``, attribute ``conv``) or :class:`FlatEncoder`
    (``model.encoder=flat``, attribute ``flat``). ``forward(images (N, 1, H, W), widths (N,))`` returns
    log-probabilities ``(T, N, C)`` and the valid output length of each line ``(N,)``; frames past a line's
    length are padding.
    """

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__()
        _check(cfg)
        self.cfg = cfg
        # Named by kind, so checkpoints of the conv model keep their ``conv.*`` weight names.
        if cfg.encoder == "flat":
            self.flat = FlatEncoder(cfg)
        else:
            self.conv = ConvEncoder(cfg)
        self.feature_size = self.encoder.feature_size
        self.lstm_dropout = nn.Dropout(cfg.lstm_dropout)
        self.lstm = nn.LSTM(
            self.feature_size,
            cfg.lstm_hidden,
            num_layers=cfg.lstm_layers,
            bidirectional=True,
            dropout=cfg.lstm_dropout if cfg.lstm_layers > 1 else 0.0,
        )
        self.out_dropout = nn.Dropout(cfg.out_dropout)
        self.cpu_unpacked_lstm = True  # False: packed sequences on CPU too (tests compare the two)
        self.linear = nn.Linear(2 * cfg.lstm_hidden, num_classes)
        # The CTC shortcut (training only): encoder frames -> classes, a 1-D convolution 3 frames wide.
        self.shortcut = nn.Conv1d(self.feature_size, num_classes, 3, padding=1) if cfg.ctc_shortcut > 0 else None

    @property
    def encoder(self) -> ConvEncoder | FlatEncoder:
        """The image encoder, whichever kind."""
        return self.flat if self.cfg.encoder == "flat" else self.conv

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        """Number of output frames for input widths."""
        return self.encoder.output_lengths(widths)

    @property
    def width_stride(self) -> int:
        """Input columns per output frame."""
        return self.encoder.width_stride

    def forward(self, images: torch.Tensor, widths: torch.Tensor, shortcut: bool = False) -> tuple[torch.Tensor, ...]:
        """Log-probabilities (T, N, C) and output lengths (N,) for a padded batch (N, 1, H, W); with
        ``shortcut`` (and a shortcut head), also the shortcut head's log-probabilities (T, N, C)."""
        x = self.encoder(images)  # (T, N, F)
        aux = None
        if shortcut and self.shortcut is not None:
            aux = self.shortcut(x.permute(1, 2, 0)).permute(2, 0, 1).log_softmax(-1)  # (T, N, C)
        t = x.shape[0]
        lengths = self.output_lengths(widths).clamp(min=1, max=t)
        x = self.lstm_dropout(x)
        # The same computation either way (htr/model/lstm.py); packed on CUDA and for ONNX, faster unpacked on CPU.
        use_packed = x.is_cuda or torch.onnx.is_in_onnx_export() or not self.cpu_unpacked_lstm
        y = (packed_bilstm if use_packed else reversed_bilstm)(self.lstm, x, lengths)  # (T, N, 2*hidden)
        y = self.linear(self.out_dropout(y))  # (T, N, classes)
        if aux is not None:
            return y.log_softmax(-1), lengths, aux
        return y.log_softmax(-1), lengths


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
