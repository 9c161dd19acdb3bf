"""Everything a training run needs before its first step: device and DDP, the run folder's checks, the
checkpoint it continues or starts from, data, model, optimizer and schedule, all gathered in one :class:`Run`.

The order of the steps in :func:`setup_run` is part of training's reproducibility (the model is built from the
seeded torch RNG, and a resumed run restores the RNG after everything that draws from it).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader

from htr.bundle import ModelBundle
from htr.charset import Charset
from htr.checkpoint import copy_checkpoint, load_checkpoint, remove_stale_temporaries, set_rng_state
from htr.config import Config, ModelConfig
from htr.data.dataset import BucketBatchSampler, LineDataset, SkipReport
from htr.decode import GreedyDecoder
from htr.ema import make_ema
from htr.errors import CheckpointError, HTRError
from htr.finetune import load_pretrained
from htr.lr_schedule import make_scheduler
from htr.model import CRNN, count_parameters, feature_rows, width_stride
from htr.runtime import resolve_checkpoint, training_threads
from htr.train_data import datasets, loaders
from htr.train_log import TrainLogger
from htr.widen import widened_state


@dataclass
class Run:
    """One training run's objects and mutable ``state`` (what ``last.pt`` records as "state")."""

    cfg: Config
    device: torch.device
    rank: int
    world: int
    out_dir: Path
    say: Callable[[str], None]
    charset: Charset
    train_ds: LineDataset
    val_ds: LineDataset
    train_report: SkipReport
    val_report: SkipReport
    model: CRNN
    net: torch.nn.Module  # ``model``, wrapped in DistributedDataParallel under torchrun
    ema: AveragedModel | None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    sampler: BucketBatchSampler
    train_loader: DataLoader
    val_loader: DataLoader
    val_sources: dict[str, str | None] | None
    val_weights: dict[str, float]
    decoder: GreedyDecoder
    logger: TrainLogger
    bundle: ModelBundle  # what checkpoints say about the model besides its weights
    state: dict[str, Any]
    start_time: float = 0.0
    budget_before_s: float = 0.0
    #: optim.scheduler=cosine_time or wsd_time: {"time": the share of train.max_time_s spent}, which the training
    #: loop sets and the schedule's lambda reads (kept here, not on the scheduler, whose load_state_dict replaces its
    #: attributes).
    budget_share: dict[str, float] = field(default_factory=lambda: {"time": 0.0})
    validated_at: int = -1  # the step of the last mid-epoch validation

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def eval_model(self) -> CRNN:
        """The weights that are validated and saved as "model": the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler)


def say_and_log(out_dir: Path, is_main: bool, msg: str) -> None:
    """Print ``msg`` and append it to the run folder's train.log (what the console shows, without the progress
    bars); only on the main rank."""
    if is_main:
        print(msg, flush=True)
        with contextlib.suppress(OSError):  # a log that cannot be written costs the log, not the run
            out_dir.mkdir(parents=True, exist_ok=True)
            with open(out_dir / "train.log", "a", encoding="utf-8") as f:
                f.write(msg + "\n")


def setup_run(cfg: Config) -> Run:
    """Device, checks, data, model, optimizer and, for ``train.resume``, the state of the run it continues."""
    device, rank, world = _setup_distributed(cfg)
    out_dir = Path(cfg.train.out_dir)
    say = functools.partial(say_and_log, out_dir, rank == 0)
    torch.set_num_threads(training_threads(cfg.train.threads))
    torch.manual_seed(cfg.train.seed)
    _check_run_settings(cfg, out_dir)
    resume, init, init_path, source = _starting_point(cfg)
    charset, train_ds, val_ds, train_report, val_report = datasets(
        cfg,
        source.charset if source and resume else None,
        source.charset if source and init else None,
        width_stride(cfg.model), rank, world, say,
    )  # fmt: skip
    model = CRNN(cfg.model, len(charset))
    if init is not None:
        if cfg.train.init_lstm_hidden is not None or cfg.train.init_conv_channels is not None:
            init = {**init, "model": widened_state(init["model"], source.model, model)}
        n_new = load_pretrained(model, init, charset, init_path)
        say(f"initialized from {init_path}; {n_new} new labels")
    model = model.to(device)
    threads = f", {torch.get_num_threads()} CPU thread(s)" if device.type == "cpu" else ""
    say(f"model {cfg.model.name}: {count_parameters(model):,} parameters, {len(charset)} labels, device {device}"
        + threads)  # fmt: skip
    sampler, train_loader, val_loader = loaders(cfg, train_ds, val_ds, device, rank, world, say)
    optimizer = _make_optimizer(cfg, model)
    budget_share = {"time": 0.0}
    scheduler = make_scheduler(cfg, optimizer, cfg.train.max_steps or cfg.train.max_epochs * len(sampler), budget_share)
    amp_dtype = None
    if device.type == "cuda" and cfg.train.amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    ema = make_ema(model, cfg.train.ema_decay, cfg.train.ema_warmup) if cfg.train.ema_decay > 0 else None
    # "improved": a validation since the last epoch's end lowered best_cer (the epoch does not count as bad).
    state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best_cer": math.inf, "bad_epochs": 0, "nonfinite": 0,
             "improved": False}  # fmt: skip
    if resume is not None:
        _restore(resume, model, ema, optimizer, scheduler, scaler, state)
        say(f"resumed from {cfg.train.resume} at epoch {state['epoch']}, step {state['step']}")
        if rank == 0:
            _carry_best(resolve_checkpoint(cfg.train.resume), out_dir, state["best_cer"], say)
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if (
        world > 1
    ) else model  # fmt: skip
    return Run(
        cfg, device, rank, world, out_dir, say, charset, train_ds, val_ds, train_report, val_report, model, net,
        ema, optimizer, scheduler, scaler, amp_dtype, sampler, train_loader, val_loader,
        {smp.id: smp.source for smp in val_ds.samples} if cfg.data.sources else None,
        {src.name: src.val_weight for src in cfg.data.sources}, GreedyDecoder(charset.labels),
        TrainLogger(out_dir, cfg, val_ds, enabled=rank == 0),
        ModelBundle.for_training(
            charset, OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True), cfg.data.preprocess
        ),
        state, budget_share=budget_share,
    )  # fmt: skip


def show_augmentations(run: Run) -> None:
    """Log what augment=... does, on 16 lines the run starts with."""
    if run.is_main and run.train_ds.augmenter is not None:
        run.train_ds.set_epoch(run.state["epoch"])
        spread = range(0, len(run.train_ds), max(len(run.train_ds) // 16, 1))
        run.logger.augmentation_grid([run.train_ds[k]["image"] for k in list(spread)[:16]], run.state["step"])


def _starting_point(cfg: Config) -> tuple[dict | None, dict | None, str | None, ModelBundle | None]:
    """The checkpoints of ``train.resume`` and ``train.init_from`` (loaded), the latter's path, and the bundle of
    the one used; sets ``cfg.model`` and ``cfg.data.preprocess`` to its, whatever the config said."""
    resume = load_checkpoint(resolve_checkpoint(cfg.train.resume)) if cfg.train.resume else None
    if resume is not None and not {"optimizer", "state", "rng"} <= resume.keys():
        raise HTRError(
            f"train.resume={cfg.train.resume} holds a model without its training state (optimizer, RNG, step), so "
            "there is no run to continue; start a new run from its weights with train.init_from instead"
        )
    for name in ("init_conv_pools", "init_height", "init_lstm_hidden", "init_conv_channels"):
        if getattr(cfg.train, name) is not None and not cfg.train.init_from:
            raise HTRError(
                f"train.{name} changes train.init_from's model, and no train.init_from is set; "
                f"for a new model set model.{name.removeprefix('init_')} instead"
            )
    init_path = str(resolve_checkpoint(cfg.train.init_from)) if cfg.train.init_from and not resume else None
    init = load_checkpoint(init_path) if init_path else None
    ckpt = resume if resume is not None else init
    bundle = ModelBundle.from_checkpoint(ckpt, init_path or resolve_checkpoint(cfg.train.resume)) if ckpt else None
    if bundle is not None:
        cfg.model, cfg.data.preprocess = bundle.model, bundle.preprocess
    if init is not None and (cfg.train.init_conv_pools is not None or cfg.train.init_height is not None):
        cfg.model = _repooled(bundle.model, cfg.train.init_conv_pools, cfg.train.init_height, init_path)
        cfg.data.preprocess.height = cfg.model.height
    if init is not None and (cfg.train.init_lstm_hidden is not None or cfg.train.init_conv_channels is not None):
        cfg.model = _widened(cfg.model, cfg.train.init_lstm_hidden, cfg.train.init_conv_channels, init_path)
    if cfg.data.preprocess.height != cfg.model.height:
        raise HTRError(
            f"data.preprocess.height={cfg.data.preprocess.height} differs from model.height={cfg.model.height}; "
            "lines must be scaled to the model's input height (leave data.preprocess.height unset to follow it)"
        )
    return resume, init, init_path, bundle


def _repooled(model: ModelConfig, pools: list[list[int]] | None, height: int | None, path: str) -> ModelConfig:
    """The checkpoint's model with ``train.init_conv_pools`` and ``train.init_height`` applied, checked: one
    ``[height, width]`` pooling per conv block, each width >= 1, and as many rows reaching the LSTMs as trained
    (their input size depends on it), so that every weight keeps its shape."""
    if model.encoder != "conv":
        raise HTRError(f"train.init_conv_pools and train.init_height need a conv encoder, and {path} has "
                       f"model.encoder={model.encoder}")  # fmt: skip
    trained = model.conv_pools
    wanted = [list(p) for p in (pools if pools is not None else trained)]
    if len(wanted) != len(trained) or any(len(p) != 2 for p in wanted):
        raise HTRError(
            f"train.init_conv_pools={wanted} needs one [height, width] pair for each of the {len(trained)} conv "
            f"blocks of {path} (pooled {trained})"
        )
    if min(min(p) for p in wanted) < 1:
        raise HTRError(f"train.init_conv_pools={wanted} needs every pooling factor to be at least 1")
    new = copy.deepcopy(model)
    new.conv_pools, new.height = wanted, height if height is not None else model.height
    rows, trained_rows = feature_rows(new), feature_rows(model)
    if model.column_pool != "max" and rows != trained_rows:
        raise HTRError(
            f"at height {new.height} (train.init_height), train.init_conv_pools={wanted} leaves {rows} rows "
            f"for the LSTMs, and {path} was trained with {trained_rows} (height {model.height}, pooled {trained}); "
            "its LSTMs' input size depends on them, so the pooling heights must bring the height to the same rows"
        )
    return new


def _widened(model: ModelConfig, hidden: int | None, channels: list[int] | None, path: str) -> ModelConfig:
    """The checkpoint's model with ``train.init_lstm_hidden`` and ``train.init_conv_channels`` applied, checked:
    widening only (no trained unit is dropped), one width per conv block."""
    new = copy.deepcopy(model)
    if hidden is not None:
        if hidden < model.lstm_hidden:
            raise HTRError(f"train.init_lstm_hidden={hidden} is narrower than the {model.lstm_hidden} units of "
                           f"{path}'s LSTMs; widening keeps every trained unit")  # fmt: skip
        new.lstm_hidden = hidden
    if channels is not None:
        trained = list(model.conv_channels)
        if model.encoder != "conv" or len(channels) != len(trained):
            raise HTRError(f"train.init_conv_channels={list(channels)} needs one width for each conv block of "
                           f"{path} ({trained}, encoder {model.encoder})")  # fmt: skip
        if any(c < t for c, t in zip(channels, trained)):
            raise HTRError(f"train.init_conv_channels={list(channels)} is narrower than {path}'s {trained} in some "
                           "block; widening keeps every trained channel")  # fmt: skip
        new.conv_channels = list(channels)
    return new


def _restore(
    resume: dict[str, Any],
    model: CRNN,
    ema: AveragedModel | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    state: dict[str, Any],
) -> None:
    """Put the weights, optimizer, schedule, scaler, counters and RNG of ``last.pt`` back (the RNG last)."""
    model.load_state_dict(resume.get("train_model", resume["model"]))
    if ema is not None:
        ema.module.load_state_dict(resume["model"])
        ema.n_averaged.fill_(int(resume["state"].get("ema_updates", 0)))
    optimizer.load_state_dict(resume["optimizer"])
    if scheduler is not None and resume.get("scheduler"):
        scheduler.load_state_dict(resume["scheduler"])
    scaler.load_state_dict(resume["scaler"])
    state.update(resume["state"])
    state.pop("finished", None)  # a finished run resumed (with a larger budget) is not finished until it ends
    set_rng_state(resume["rng"])


def _setup_distributed(cfg: Config) -> tuple[torch.device, int, int]:
    """Device, rank and world size; initializes the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want = cfg.train.device
    use_cuda = torch.cuda.is_available() and want in ("auto", "cuda")
    if want == "cuda" and not torch.cuda.is_available():
        raise HTRError("train.device=cuda was asked for but no CUDA device is available")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        # No cuDNN autotuning: every batch has its own width (and augmentation changes widths every epoch), so
        # benchmark mode would time the convolution algorithms again at nearly every step.
        torch.backends.cudnn.benchmark = False
        return torch.device("cuda", local_rank), rank, world
    return torch.device("cpu"), rank, world


def _check_run_settings(cfg: Config, out_dir: Path) -> None:
    """Refuse settings that would train nothing, and a run folder whose checkpoints a new run would replace;
    remove the temporary files of a checkpoint write that a kill interrupted."""
    if cfg.data.batch_size < 1:
        raise HTRError(f"data.batch_size={cfg.data.batch_size} must be at least 1")
    if not cfg.optim.lr >= 0:  # 0 is allowed: it runs the loop with the weights frozen (the tests use it)
        raise HTRError(f"optim.lr={cfg.optim.lr} must be a number >= 0")
    if cfg.train.max_epochs < 1 or (cfg.train.max_steps is not None and cfg.train.max_steps < 1):
        raise HTRError("train.max_epochs and train.max_steps must be at least 1")
    if cfg.train.val_every_steps < 0:
        raise HTRError(f"train.val_every_steps={cfg.train.val_every_steps} must be >= 0 (0: at each epoch's end only)")
    remove_stale_temporaries(out_dir)
    if cfg.train.overwrite or (cfg.train.resume and _same_folder(resolve_checkpoint(cfg.train.resume), out_dir)):
        return
    existing = [n for n in ("best.pt", "last.pt") if (out_dir / n).exists()]
    if existing:
        raise HTRError(
            f"{out_dir} already holds {' and '.join(existing)} of another run; continue it with "
            f"train.resume={out_dir / 'last.pt'}, choose another folder, or set train.overwrite=true to replace them"
        )


def _same_folder(checkpoint: Path, out_dir: Path) -> bool:
    """Whether ``checkpoint`` lies in the run folder ``out_dir``."""
    return checkpoint.resolve().parent == out_dir.resolve()


def _carry_best(resume_path: Path, out_dir: Path, best_cer: float, say: Callable[[str], None]) -> None:
    """Give a run resumed into another folder the best.pt of the run it continues.

    Its best CER so far is that run's, and best.pt is written only when validation beats it: without the copy,
    the new folder could end without the best.pt the run names. A best.pt that is not of that run (its CER
    differs from the one last.pt records) is left where it is.
    """
    src = resume_path.parent / "best.pt"
    if _same_folder(resume_path, out_dir) or not math.isfinite(best_cer):
        return
    try:
        ours = src.is_file() and load_checkpoint(src).get("state", {}).get("best_cer") == best_cer
    except CheckpointError:  # damaged: the new folder gets its own best.pt at the next improvement
        ours = False
    if ours:
        out_dir.mkdir(parents=True, exist_ok=True)
        copy_checkpoint(src, out_dir / "best.pt")
        say(f"copied {src} (val CER {best_cer:.4f}) to {out_dir}: the best checkpoint of the run so far")
    else:
        say(f"note: no best.pt of this run next to {resume_path}; {out_dir / 'best.pt'} is written when "
            f"validation beats its best CER {best_cer:.4f}")  # fmt: skip


def _make_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    raise HTRError(f"optim.name={o.name!r} is not one of adam, adamw, rmsprop")
