"""Structured config schemas, registered with Hydra in one place so a typo fails at start-up.

``conf/config.yaml`` lists ``config_schema`` first in its defaults: every key that the YAML groups and the
command line set is checked against these dataclasses (types included) before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from htr.data.augment import AugmentConfig
from htr.decode.config import DecodeConfig
from htr.preprocess.pipeline import PreprocessConfig


@dataclass
class ModelConfig:
    """CNN -> BiLSTM -> linear. Conv block i has ``conv_channels[i]`` filters of ``conv_kernels[i]``,
    batch norm, the activation, dropout ``conv_dropout[i]`` and max pooling ``conv_pools[i] = [ph, pw]``."""

    name: str = "small"
    height: int = 64
    conv_channels: list[int] = field(default_factory=lambda: [16, 32, 48, 64])
    conv_kernels: list[int] = field(default_factory=lambda: [3, 3, 3, 3])
    conv_pools: list[list[int]] = field(default_factory=lambda: [[2, 2], [2, 2], [2, 1], [2, 1]])
    conv_dropout: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.1, 0.1])
    batchnorm: bool = True
    activation: str = "leaky_relu"
    lstm_hidden: int = 128
    lstm_layers: int = 2
    lstm_dropout: float = 0.25
    out_dropout: float = 0.25
    # encoder="flat": no convolutions; each window of flat_window columns (stride flat_stride) of raw pixels,
    # flattened, goes through an MLP of flat_hidden ReLU layers (dropout flat_dropout) into the BiLSTM.
    encoder: str = "conv"
    flat_window: int = 8
    flat_stride: int = 4
    flat_hidden: list[int] = field(default_factory=lambda: [256, 256])
    flat_dropout: float = 0.1
    # column_pool="max": each frame is the maximum over the height of the last conv block's columns (Retsinas
    # et al. 2022), so the LSTM input is conv_channels[-1] wide and the model does not depend on the ink's
    # exact row; "flatten" (the earlier models) stacks the rows instead.
    column_pool: str = "flatten"
    # > 0: an auxiliary CTC head (a 1-D convolution of width 3 over the conv frames) whose loss, times this
    # weight, is added in training (Retsinas et al. 2022's "CTC shortcut"); it gives the conv layers a direct
    # gradient. Inference and export ignore the head.
    ctc_shortcut: float = 0.0


@dataclass
class SourceConfig:
    """One dataset of a run that trains on several (``data.sources``).

    Attributes:
        name: how the source is called in logs, TensorBoard and ``evaluate`` rows.
        root: its ``lines.tsv`` / IAM folder / folder of pairs (as ``data.root``); for ``generate``, the
            folder the generated lines go to.
        weight: its share of each training epoch, relative to the other sources' weights (an epoch draws as
            many lines as all sources' training splits hold together); null: its own size (plain
            concatenation). A source whose share exceeds its size is drawn with repetition, across epochs in
            a fresh order each time.
        val_weight: its weight in the validation CER that picks best.pt and drives early stopping and the
            plateau schedule: sum(val_weight * CER of the source) / sum(val_weight). 0 leaves it out of
            that choice (its CER is still logged).
        generate: "synthetic" to generate handwriting-font lines at ``root`` (``data.synthetic`` sizes).
    """

    name: str = ""
    root: str = ""
    weight: float | None = None
    val_weight: float = 1.0
    generate: str | None = None


@dataclass
class SyntheticConfig:
    """Synthetic handwriting-font lines generated under ``data.root`` when ``data.name=synthetic``."""

    n_train: int = 2000
    n_val: int = 200
    n_test: int = 200
    seed: int = 0


@dataclass
class MnistConfig:
    """Lines of 1-10 MNIST digits generated under ``data.root`` when ``data.name=mnist_lines`` (see
    :mod:`htr.data.mnist`); ``train_digits`` limits the training pool to its first N of 8,000 digits."""

    dir: str = "../shared/data/mnist"
    n_train: int = 4000
    n_val: int = 500
    n_test: int = 1000
    train_digits: int | None = None
    seed: int = 0


@dataclass
class DataConfig:
    """Where the lines are and how they are batched. ``root`` is a ``lines.tsv``, an IAM folder or
    ``lines.txt``, or a folder of image + ``.gt.txt`` pairs; or ``sources`` lists several such datasets
    (``root`` is then unused), trained on together with one charset, the union of their training texts."""

    name: str = "synthetic"
    root: str = "data/synthetic"
    sources: list[SourceConfig] = field(default_factory=list)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    synthetic_fraction: float = 0.0
    synthetic_mix_root: str = "data/synthetic-mix"
    mnist: MnistConfig = field(default_factory=MnistConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    batch_size: int = 16
    num_workers: int = 0
    bucketing: bool = True
    # Batches are padded to a multiple of this many columns; null: 64 on CUDA (a few dozen batch shapes, so the
    # GPU libraries' per-shape set-up is paid once, not at nearly every step), 1 on the CPU.
    pad_width_to: int | None = None
    cache_dir: str | None = ".cache/htr"
    max_train_lines: int | None = None
    max_val_lines: int | None = None


@dataclass
class OptimConfig:
    """Optimizer, learning-rate schedule and gradient clipping."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "plateau"
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    warmup_steps: int = 0
    grad_clip: float = 5.0


@dataclass
class TrainConfig:
    """The training loop: budget, seeding, device, checkpoints and logging."""

    out_dir: str = "runs/default"
    max_epochs: int = 30
    max_steps: int | None = None
    max_time_s: float | None = None
    early_stopping_patience: int = 8
    target_cer: float | None = None
    seed: int = 42
    device: str = "auto"
    amp: bool = True
    threads: int = 0
    resume: str | None = None
    # A run folder that already holds best.pt or last.pt is refused unless resuming or told to overwrite.
    overwrite: bool = False
    init_from: str | None = None
    log_every_steps: int = 20
    num_val_images: int = 16
    max_bad_fraction: float = 0.05
    max_nonfinite_steps: int = 20
    # > 0: validate and save an exponential moving average of the weights (torch.optim.swa_utils, this decay
    # per step) in best.pt/last.pt's "model"; the raw training weights travel in last.pt for resuming.
    ema_decay: float = 0.0
    checkpoint_every_steps: int = 0
    # > 0: also validate every this many steps within an epoch (long epochs): each validation logs, may write
    # best.pt and stop at train.target_cer, and writes last.pt; the plateau schedule and early stopping still
    # count epochs (an epoch is bad when no validation in it improved). 0: only at each epoch's end.
    val_every_steps: int = 0
    progress: bool = True


@dataclass
class Config:
    """The whole run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def structured(schema: type, values: Any) -> Any:
    """Turn a plain dict (e.g. from a checkpoint) into a typed config object of ``schema``."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values or {}))


def register_configs() -> None:
    """Register the schema with Hydra's ConfigStore (idempotent)."""
    ConfigStore.instance().store(name="config_schema", node=Config)


register_configs()
