"""Structured config schemas, registered with Hydra in one place so a typo fails at start-up.

``conf/config.yaml`` lists ``config_schema`` first in its defaults: every key that the YAML groups and the
command line set is checked against these dataclasses (types included) before anything runs.

Each dataclass documents its fields in a Google-style ``Attributes:`` section (``name: what it means``, one
entry per field, continuation lines indented further). That section is the one description of a key:
``python -m htr.train --help`` (:mod:`htr.config_help`) prints it, and a test fails when a field lacks one.
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
    """The network: CNN (or a flat MLP) -> BiLSTM -> linear, with CTC's blank as label 0.

    Conv block i is dropout ``conv_dropout[i]``, ``conv_channels[i]`` filters of ``conv_kernels[i]``, batch
    norm, the activation and max pooling ``conv_pools[i] = [ph, pw]``; the product of the ``pw`` is the
    number of input columns per output frame. ``train.init_from`` and ``train.resume`` replace this whole
    section with the checkpoint's.

    Attributes:
        name: the architecture's label, saved with the checkpoint (the ``model`` group's option).
        height: input line height in pixels (``data.preprocess.height`` follows it).
        conv_channels: filters of each conv block; its length is the number of blocks.
        conv_kernels: square kernel size of each conv block.
        conv_pools: max-pooling ``[height, width]`` factor after each conv block (``[1, 1]``: none).
        conv_dropout: dropout before each conv block.
        batchnorm: batch normalization after each convolution.
        activation: the conv blocks' activation: relu, leaky_relu or gelu.
        lstm_hidden: units of each BiLSTM layer, per direction.
        lstm_layers: number of BiLSTM layers.
        lstm_dropout: dropout on the LSTM input and between LSTM layers.
        out_dropout: dropout before the output layer.
        encoder: "conv" (the conv blocks) or "flat": no convolutions; each window of ``flat_window``
            columns (stride ``flat_stride``) of raw pixels, flattened, goes through an MLP of ``flat_hidden``
            ReLU layers (dropout ``flat_dropout``) into the BiLSTM.
        flat_window: encoder="flat": width in pixels of each window.
        flat_stride: encoder="flat": columns between windows (input columns per output frame).
        flat_hidden: encoder="flat": size of each MLP layer.
        flat_dropout: encoder="flat": dropout after each MLP layer.
        column_pool: how a column of the last conv block becomes a frame: "max" takes the maximum over the
            height (Retsinas et al. 2022), so the LSTM input is ``conv_channels[-1]`` wide and the model does
            not depend on the ink's exact row; "flatten" (the earlier models) stacks the rows instead.
        ctc_shortcut: > 0: an auxiliary CTC head (a 1-D convolution of width 3 over the conv frames) whose
            loss, times this weight, is added in training (Retsinas et al. 2022's "CTC shortcut"); it gives
            the conv layers a direct gradient. Inference and export ignore the head.
    """

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
    encoder: str = "conv"
    flat_window: int = 8
    flat_stride: int = 4
    flat_hidden: list[int] = field(default_factory=lambda: [256, 256])
    flat_dropout: float = 0.1
    column_pool: str = "flatten"
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
    """Synthetic handwriting-font lines generated under ``data.root`` when ``data.name=synthetic`` (also the
    lines mixed in by ``data.synthetic_fraction`` and ``generate: synthetic`` sources).

    Attributes:
        n_train: training lines to generate.
        n_val: validation lines to generate.
        n_test: test lines to generate.
        seed: seed of the generated lines (the same settings give the same files).
    """

    n_train: int = 2000
    n_val: int = 200
    n_test: int = 200
    seed: int = 0


@dataclass
class MnistConfig:
    """Lines of 1-10 MNIST digits generated under ``data.root`` when ``data.name=mnist_lines`` (see
    :mod:`htr.data.mnist`).

    Attributes:
        dir: the folder with the MNIST test-set files the digits are taken from.
        n_train: training lines to generate.
        n_val: validation lines to generate.
        n_test: test lines to generate.
        train_digits: build the training lines from the first N of the 8,000 training digits only; null: all.
        seed: seed of the generated lines (the same settings give the same files).
    """

    dir: str = "../shared/data/mnist"
    n_train: int = 4000
    n_val: int = 500
    n_test: int = 1000
    train_digits: int | None = None
    seed: int = 0


@dataclass
class DataConfig:
    """Where the lines are, how they are prepared and how they are batched.

    Attributes:
        name: the dataset's label (the ``data`` group's option); "synthetic" and "mnist_lines" also
            generate their lines under ``root`` on first use.
        root: the dataset: a ``lines.tsv``, an IAM folder or ``lines.txt``, a folder of PAGE/ALTO pages, or
            a folder of image + ``.gt.txt`` pairs (unused with ``sources``).
        sources: several datasets trained on together (each ``name``, ``root``, ``weight``, ``val_weight``,
            ``generate``), with one charset, the union of their training texts; ``root`` is then unused.
        train_split: the split trained on (a manifest's split column, an IAM split list, a sub-folder).
        val_split: the split validated on (it picks best.pt and drives early stopping).
        test_split: the test split's name, kept with the run's config (training does not read it).
        synthetic: the generated synthetic lines (sizes, seed).
        synthetic_fraction: the share of synthetic handwriting-font lines mixed into the training set, in
            [0, 1); 0: none.
        synthetic_mix_root: where the lines mixed in by ``synthetic_fraction`` are generated.
        mnist: the generated MNIST digit lines (``name=mnist_lines``).
        preprocess: how each line image is normalized before training and recognition.
        augment: random distortions of the training lines (the ``augment`` group).
        batch_size: lines per training step (per GPU under torchrun).
        num_workers: DataLoader worker processes; 0: load batches in the training process.
        bucketing: batch lines of similar width together (less padding, faster steps).
        pad_width_to: batches are padded to a multiple of this many columns; null: 64 on CUDA (a few dozen
            batch shapes, so the GPU libraries' per-shape set-up is paid once, not at nearly every step), 1
            on the CPU.
        cache_dir: where preprocessed lines are cached, keyed by the settings and the image files; null:
            no cache (preprocess at every start).
        max_train_lines: train on the first N lines of the split only; null: all.
        max_val_lines: validate on the first N lines of the split only; null: all.
    """

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
    pad_width_to: int | None = None
    cache_dir: str | None = ".cache/htr"
    max_train_lines: int | None = None
    max_val_lines: int | None = None


@dataclass
class OptimConfig:
    """Optimizer, learning-rate schedule and gradient clipping.

    Attributes:
        name: the optimizer: adam, adamw (decoupled weight decay) or rmsprop.
        lr: the (peak) learning rate.
        weight_decay: L2 penalty (adam, rmsprop) or decoupled weight decay (adamw).
        scheduler: "plateau" (multiply the rate by ``plateau_factor`` when the validation CER has not
            improved for ``plateau_patience`` epochs), "cosine" (decay to 0 over ``train.max_steps``, else
            ``train.max_epochs``), "cosine_time" (decay to 0 over ``train.max_time_s`` by the clock: a run
            with a fixed wall-time budget, such as a GPU lease, ends its schedule on time whatever its speed;
            not step-for-step reproducible; a resumed run goes on with what was left of its budget), "wsd" and
            "wsd_time" (warm-up, stable, decay: the peak rate until the last ``cooldown_share`` of the steps or of
            the time budget, then a 1 - sqrt decay to 0; Hägele et al. 2024) or "none".
        plateau_factor: scheduler=plateau: the factor applied to the learning rate.
        plateau_patience: scheduler=plateau: epochs without improvement before it is applied.
        cooldown_share: scheduler=wsd or wsd_time: the share of the run (steps or time) its final decay takes.
        warmup_steps: steps over which the learning rate rises linearly from 0 to ``lr``; 0: none.
        grad_clip: largest gradient norm (larger ones are scaled down); 0: no clipping.
    """

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "plateau"
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    cooldown_share: float = 0.2
    warmup_steps: int = 0
    grad_clip: float = 5.0


@dataclass
class TrainConfig:
    """The training loop: budget, seeding, device, checkpoints and logging.

    Attributes:
        out_dir: the run folder (checkpoints, train.log, TensorBoard events); by default Hydra's run folder,
            ``runs/DATE_TIME`` (choose it with ``hydra.run.dir=...``).
        max_epochs: the most epochs to train.
        max_steps: the most optimizer steps; null: no limit.
        max_time_s: the most seconds of training (checked after each step); null: no limit.
        early_stopping_patience: stop after this many epochs without a better validation CER.
        target_cer: stop once the validation CER is at most this; null: never.
        seed: seed of the initial weights, the batch order, dropout and augmentation.
        device: "auto" (CUDA when available, else the CPU), "cuda" or "cpu".
        amp: mixed precision on CUDA (bfloat16 where supported, else float16); ignored on the CPU.
        threads: PyTorch's CPU threads; 0: every physical core but one (at least one), so that training keeps
            its speed when another process is busy (see docs/results.md, "Training threads").
        resume: a ``last.pt`` to continue exactly where its run stopped (weights, optimizer, step, RNG).
        overwrite: allow a run folder that already holds best.pt or last.pt, replacing them (without it such
            a folder is refused unless resuming into it).
        init_from: a checkpoint (or "default", the shipped model) whose weights, architecture and
            preprocessing a new run starts from; characters new to its charset get new output rows.
        init_conv_pools: with ``init_from``, pool the conv blocks' widths this way instead of as the checkpoint
            did: one ``[height, width]`` per block, the heights leaving the LSTMs the rows they were trained on
            (unchanged heights do; see ``init_height``), so every weight keeps its shape. Halving
            one width factor (e.g. ``[[2, 2], [2, 2], [2, 1], [1, 1]]`` for the ``cpu`` model) doubles the output
            frames per line, for writing too dense for the trained model's frames (CTC needs at least one frame
            per character, and one between repeated ones). null: the checkpoint's pooling.
        init_height: with ``init_from``, read lines at this input height instead of the checkpoint's (the
            preprocessing follows). Its conv weights are kept, so ``init_conv_pools`` must pool the new height
            down to the rows the checkpoint's LSTMs were trained on: e.g. 72 with ``[[3, 3], [2, 2], [2, 1], [1,
            1]]`` for the ``cpu`` model's 48 with ``[[2, 2], [2, 2], [2, 1], [1, 1]]`` (the same feature map from
            the second block on, with 1.5 times the pixels under the first). null: the checkpoint's height.
        init_lstm_hidden: with ``init_from``, widen its LSTMs to this many units per direction, starting from
            the same function: trained weights kept, new units' outgoing weights zero (htr/widen.py). null: the
            checkpoint's.
        init_conv_channels: with ``init_from``, widen its conv blocks to these channels (one per block, none
            narrower), the same way. null: the checkpoint's.
        log_every_steps: write the mean training loss and gradient norm to TensorBoard every this many steps.
        num_val_images: validation lines shown in TensorBoard with their predictions at each validation.
        max_bad_fraction: refuse to train when more than this fraction of the training or validation lines
            are unusable (unreadable image, empty text, too narrow for its text).
        max_nonfinite_steps: stop the run (exit status 1) after more than this many steps with a non-finite
            loss or gradient (each is skipped).
        ema_decay: > 0: validate and save an exponential moving average of the weights
            (torch.optim.swa_utils, this decay per step) in best.pt/last.pt's "model"; the raw training
            weights travel in last.pt for resuming.
        ema_warmup: let the average's decay grow with its updates n, min(ema_decay, (1 + n) / (10 + n)),
            instead of starting at ema_decay: the average then follows a short run from its first epochs
            (htr.ema).
        checkpoint_every_steps: also write last.pt every this many steps; 0: only at validations.
        val_every_steps: > 0: also validate every this many steps within an epoch (long epochs): each
            validation logs, may write best.pt and stop at ``target_cer``, and writes last.pt; the plateau
            schedule and early stopping still count epochs (an epoch is bad when no validation in it
            improved). 0: only at each epoch's end.
        progress: show a progress bar (on a terminal only).
    """

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
    overwrite: bool = False
    init_from: str | None = None
    init_conv_pools: list[list[int]] | None = None
    init_height: int | None = None
    init_lstm_hidden: int | None = None
    init_conv_channels: list[int] | None = None
    log_every_steps: int = 20
    num_val_images: int = 16
    max_bad_fraction: float = 0.05
    max_nonfinite_steps: int = 20
    ema_decay: float = 0.0
    ema_warmup: bool = False
    checkpoint_every_steps: int = 0
    val_every_steps: int = 0
    progress: bool = True


@dataclass
class Config:
    """The whole run.

    Attributes:
        data: the dataset, its preprocessing, augmentation and batching.
        model: the network.
        optim: the optimizer and learning-rate schedule.
        decode: how CTC output becomes text (kept with the run's config; training validates with greedy
            decoding whatever it says).
        train: the training loop.
    """

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
