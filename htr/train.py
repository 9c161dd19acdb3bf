"""Training: ``python -m htr.train [overrides]`` (Hydra) or ``train(cfg)`` from Python.

A plain loop, top to bottom: data -> model -> optimizer -> for each epoch: steps (with a validation every
``train.val_every_steps`` if set), validation, checkpoints, early stopping. CUDA with mixed precision when
present, CPU otherwise; several GPUs through PyTorch DDP under ``torchrun`` (world size from the environment).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import hydra
import torch
import torch.distributed as dist
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from htr.charset import Charset
from htr.checkpoint import (
    copy_checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from htr.config import Config, structured
from htr.config_check import config_hint, run_dir_problem, typed_config
from htr.data.augment import build_augmenter
from htr.data.dataset import BucketBatchSampler, SkipReport, build_dataset, collate, ctc_min_frames
from htr.data.lines import LineStore
from htr.data.sources import epoch_shares, load_split, load_train_split
from htr.decode import GreedyDecoder
from htr.errors import CheckpointError, DataError, HTRError
from htr.finetune import load_pretrained, union_charset
from htr.inference import resolve_checkpoint
from htr.metrics import ErrorRates
from htr.model import CRNN, count_parameters, width_stride
from htr.progress import progress
from htr.train_log import TrainLogger

#: A run whose best validation CER is at least this has not learned to read (CTC models sit at ~100% at first).
NOT_LEARNED_CER = 0.9


class _StopFlag:
    """Set by SIGINT/SIGTERM: the loop finishes its step, writes ``last.pt`` and returns."""

    def __init__(self) -> None:
        self.set = False
        self.signal: int | None = None  # which one, for the exit status (128 + its number)
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no signal handling
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:  # a second signal: stop now (the checkpoints already written are intact)
            raise KeyboardInterrupt
        self.set, self.signal = True, signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


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


def _make_scheduler(cfg: Config, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
    o = cfg.optim
    if o.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=o.plateau_factor, patience=o.plateau_patience
        )
    if o.scheduler == "cosine":
        warm = max(o.warmup_steps, 0)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(total_steps - warm, 1))))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if o.scheduler == "none":
        return None
    raise HTRError(f"optim.scheduler={o.scheduler!r} is not one of plateau, cosine, none")


def _datasets(
    cfg: Config, charset: Charset | None, base: Charset | None, model_stride: int, rank: int, world: int, say: Any
) -> tuple:
    """Train and validation datasets and the charset: ``charset`` as given (resume), or ``base``'s characters plus
    the training texts' new ones (init_from), or the training texts' characters."""
    train_samples = load_train_split(cfg.data)
    val_samples = load_split(cfg.data, cfg.data.val_split, cfg.data.max_val_lines)
    if not train_samples:
        raise DataError(f"the training split {cfg.data.train_split!r} is empty", cfg.data.root)
    if not val_samples:
        raise DataError(f"the validation split {cfg.data.val_split!r} is empty", cfg.data.root)
    if charset is None:
        texts = (s.text for s in train_samples)
        charset = union_charset(base, texts) if base is not None else Charset.from_texts(texts)
    if world > 1 and rank != 0:
        dist.barrier()  # rank 0 fills the preprocessing cache first
    t0 = time.time()
    train_store = LineStore.build(train_samples, cfg.data.preprocess, cfg.data.cache_dir)
    val_store = LineStore.build(val_samples, cfg.data.preprocess, cfg.data.cache_dir)
    if world > 1 and rank == 0:
        dist.barrier()
    say(f"preprocessed {len(train_samples) + len(val_samples)} lines in {time.time() - t0:.1f} s")

    def fits(width: int, ids: list[int]) -> bool:
        return width // model_stride >= max(ctc_min_frames(ids), 1)

    train_ds, train_report = build_dataset(
        train_samples, train_store, charset, fits, augmenter=build_augmenter(cfg.data.augment), seed=cfg.train.seed
    )
    val_ds, val_report = build_dataset(val_samples, val_store, charset, fits)
    say(train_report.summary("train"))
    say(val_report.summary("val"))
    for name, rep in (("training", train_report), ("validation", val_report)):
        if rep.n_skipped > cfg.train.max_bad_fraction * rep.total or rep.n_skipped == rep.total:
            raise DataError(
                f"{rep.n_skipped} of {rep.total} {name} lines are unusable, more than "
                f"train.max_bad_fraction={cfg.train.max_bad_fraction} (reasons above); fix the data or raise it",
                cfg.data.root,
            )
    return charset, train_ds, val_ds, train_report, val_report


def ctc_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    """CTC loss (blank 0) in float32, infinite losses (a target that cannot fit) zeroed; "mean" divides each
    line's loss by its target length, then averages over the batch."""
    return F.ctc_loss(
        log_probs.float(), targets, lengths, target_lengths, blank=0, reduction=reduction, zero_infinity=True
    )


def validate(
    model: CRNN,
    loader: DataLoader,
    device: torch.device,
    decoder: GreedyDecoder,
    sources: dict[str, str | None] | None = None,
    val_weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Validation loss, CER, WER, and the predictions by line id.

    With ``sources`` (line id -> source name), also ``per_source`` CER/WER, and ``cer`` becomes the
    ``val_weights``-weighted mean of the sources' CERs (``cer_pooled`` keeps the CER over all characters).
    """
    model.eval()
    rates, loss_sum, n = ErrorRates(), 0.0, 0
    per_source: dict[str | None, ErrorRates] = {}
    predictions: dict[str, str] = {}
    with torch.inference_mode():
        for batch in loader:
            images, widths = batch["images"].to(device), batch["widths"].to(device)
            log_probs, lengths = model(images, widths)
            target_lengths = batch["target_lengths"].to(device)
            loss = ctc_loss(log_probs, batch["targets"].to(device), lengths, target_lengths, reduction="none")
            # Same normalization as training: each line's loss divided by its target length.
            loss_sum += float((loss / target_lengths.clamp(min=1)).sum())
            n += len(batch["ids"])
            lp = log_probs.float().cpu().numpy()
            for i, (ref, sid) in enumerate(zip(batch["texts"], batch["ids"], strict=True)):
                hyp = decoder.decode(lp[: int(lengths[i]), i]).text
                rates.add(ref, hyp)
                if sources is not None:
                    per_source.setdefault(sources.get(sid), ErrorRates()).add(ref, hyp)
                predictions[sid] = hyp
    out = {"loss": loss_sum / max(n, 1), "cer": rates.cer, "wer": rates.wer, "predictions": predictions}
    if sources is not None:
        out["per_source"] = {name: {"cer": r.cer, "wer": r.wer, "lines": r.lines} for name, r in per_source.items()}
        weights = {name: (val_weights or {}).get(name, 1.0) for name in per_source}
        total = sum(weights.values())
        if total > 0:
            out["cer_pooled"] = rates.cer
            out["cer"] = sum(weights[name] * r.cer for name, r in per_source.items()) / total
    return out


def train(cfg: Config | DictConfig) -> dict[str, Any]:
    """Train a model as ``cfg`` says; return the best validation CER, epochs run and checkpoint paths."""
    if not isinstance(cfg, Config):
        cfg = typed_config(cfg)
    device, rank, world = _setup_distributed(cfg)
    is_main = rank == 0

    out_dir = Path(cfg.train.out_dir)

    def say(msg: str) -> None:
        """Print ``msg`` and append it to the run folder's train.log (what the console shows, without the
        progress bars)."""
        if is_main:
            print(msg, flush=True)
            with contextlib.suppress(OSError):  # a log that cannot be written costs the log, not the run
                out_dir.mkdir(parents=True, exist_ok=True)
                with open(out_dir / "train.log", "a", encoding="utf-8") as f:
                    f.write(msg + "\n")

    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    _check_run_settings(cfg, out_dir)

    resume = load_checkpoint(resolve_checkpoint(cfg.train.resume)) if cfg.train.resume else None
    if resume is not None and not {"optimizer", "state", "rng"} <= resume.keys():
        raise HTRError(
            f"train.resume={cfg.train.resume} holds a model without its training state (optimizer, RNG, step), so "
            "there is no run to continue; start a new run from its weights with train.init_from instead"
        )
    init_path = str(resolve_checkpoint(cfg.train.init_from)) if cfg.train.init_from and not resume else None
    init = load_checkpoint(init_path) if init_path else None
    source = resume if resume is not None else init
    if source is not None:  # the checkpoint's architecture and preprocessing, whatever the config said
        cfg.model = structured(type(cfg.model), source["config"]["model"])
        cfg.data.preprocess = structured(type(cfg.data.preprocess), source["preprocess"])
    charset, train_ds, val_ds, train_report, val_report = _datasets(
        cfg,
        Charset(resume["charset"]) if resume else None,
        Charset(init["charset"]) if init else None,
        width_stride(cfg.model), rank, world, say,
    )  # fmt: skip
    model = CRNN(cfg.model, len(charset))
    if init is not None:
        n_new = load_pretrained(model, init, charset, init_path)
        say(f"initialized from {init_path}; {n_new} new labels")
    model = model.to(device)
    say(f"model {cfg.model.name}: {count_parameters(model):,} parameters, {len(charset)} labels, device {device}")

    shares = epoch_shares(cfg.data, [smp.source for smp in train_ds.samples])
    sampler = BucketBatchSampler(
        train_ds.widths, cfg.data.batch_size, shuffle=True, seed=cfg.train.seed, rank=rank, world_size=world,
        bucketing=cfg.data.bucketing, shares=shares,
    )  # fmt: skip
    if shares is not None:
        say("training lines per epoch by source: " + ", ".join(
            f"{train_ds.samples[ix[0]].source or 'other'} {n} of {len(ix)}" for ix, n in shares
        ))  # fmt: skip
    val_sources = {smp.id: smp.source for smp in val_ds.samples} if cfg.data.sources else None
    val_weights = {src.name: src.val_weight for src in cfg.data.sources}
    pin = device.type == "cuda"
    multiple = cfg.data.pad_width_to or (64 if device.type == "cuda" else 1)
    batch_collate = functools.partial(collate, width_multiple=multiple)
    # Each DataLoader draws a worker seed from its generator whenever it starts an epoch; giving it its own
    # keeps that draw off the global torch RNG (dropout's), so a run resumed mid-epoch stays bit-identical.
    train_loader = DataLoader(
        train_ds, batch_sampler=sampler, collate_fn=batch_collate, num_workers=cfg.data.num_workers, pin_memory=pin,
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )  # fmt: skip
    val_sampler = BucketBatchSampler(val_ds.widths, cfg.data.batch_size, shuffle=False)
    val_loader = DataLoader(
        val_ds, batch_sampler=val_sampler, collate_fn=batch_collate, num_workers=cfg.data.num_workers,
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )  # fmt: skip

    optimizer = _make_optimizer(cfg, model)
    steps_per_epoch = len(sampler)
    total_steps = cfg.train.max_steps or cfg.train.max_epochs * steps_per_epoch
    scheduler = _make_scheduler(cfg, optimizer, total_steps)
    amp_dtype = None
    if device.type == "cuda" and cfg.train.amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    # The weights that are validated and saved as "model": an exponential moving average when asked for.
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema_decay), use_buffers=True) if (
        cfg.train.ema_decay > 0
    ) else None  # fmt: skip
    eval_model = ema.module if ema is not None else model

    # "improved": a validation since the last epoch's end lowered best_cer (the epoch does not count as bad).
    state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best_cer": math.inf, "bad_epochs": 0, "nonfinite": 0,
             "improved": False}  # fmt: skip
    if resume is not None:
        model.load_state_dict(resume.get("train_model", resume["model"]))
        if ema is not None:
            ema.module.load_state_dict(resume["model"])
            ema.n_averaged.fill_(int(resume["state"].get("ema_updates", 0)))
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None and resume.get("scheduler"):
            scheduler.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        state.update(resume["state"])
        set_rng_state(resume["rng"])
        say(f"resumed from {cfg.train.resume} at epoch {state['epoch']}, step {state['step']}")
        if is_main:
            _carry_best(resolve_checkpoint(cfg.train.resume), out_dir, state["best_cer"], say)

    net = (
        DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if world > 1
        else model
    )
    decoder = GreedyDecoder(charset.labels)
    logger = TrainLogger(out_dir, cfg, val_ds, enabled=is_main)
    resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    if is_main and train_ds.augmenter is not None:  # what augment=... does, on lines the run starts with
        train_ds.set_epoch(state["epoch"])
        spread = range(0, len(train_ds), max(len(train_ds) // 16, 1))
        logger.augmentation_grid([train_ds[k]["image"] for k in list(spread)[:16]], state["step"])

    def checkpoint(name: str) -> Path:
        path = out_dir / name
        save_checkpoint(
            path,
            {
                "model": eval_model.state_dict(),
                **({"train_model": model.state_dict()} if ema is not None else {}),
                "charset": charset.chars,
                "config": resolved,
                "preprocess": asdict(cfg.data.preprocess),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else {},
                "scaler": scaler.state_dict(),
                "state": {**state, **({"ema_updates": int(ema.n_averaged)} if ema is not None else {})},
                "rng": rng_state(),
            },
        )
        return path

    def validate_and_keep(epoch: int, when: str) -> str | None:
        """Validate, log, keep best.pt and last.pt; return why training should stop, or None. ``when``: "end" of
        an epoch (the plateau schedule steps; early stopping counts the epoch as bad unless a validation in it
        improved), "mid" (train.val_every_steps) or "stopped" (the run stopped part-way)."""
        metrics = (
            validate(eval_model, val_loader, device, decoder, val_sources, val_weights) if is_main else {"cer": 0.0}
        )
        cer = _broadcast(metrics["cer"], device, world)
        if is_main:
            logger.validation(
                state["epoch"] + state["batch_in_epoch"] / max(steps_per_epoch, 1), state["step"], metrics
            )
            note = {"end": "", "mid": " (mid-epoch)", "stopped": " (stopped part-way)"}[when]
            say(
                # Numbered as the progress bar numbers it: the epoch that ran, finished or not.
                f"epoch {epoch + 1}{note} step {state['step']}: val loss {metrics['loss']:.3f} CER "
                f"{metrics['cer']:.4f} WER {metrics['wer']:.4f} lr {optimizer.param_groups[0]['lr']:.2e} "
                f"({time.time() - start_time:.0f} s)"
                + _skipped_note(train_report, val_report, state["nonfinite"])
                + _source_note(metrics)
            )
        reason = None
        if scheduler is not None and cfg.optim.scheduler == "plateau" and when == "end":
            scheduler.step(cer)
        if cfg.train.target_cer is not None and cer <= cfg.train.target_cer:
            reason = f"reached train.target_cer={cfg.train.target_cer}"
        if cer < state["best_cer"]:
            state["best_cer"], state["improved"] = cer, True
            if is_main:
                checkpoint("best.pt")
        if when == "end":
            state["bad_epochs"] = 0 if state["improved"] else state["bad_epochs"] + 1
            state["improved"] = False
            if state["bad_epochs"] >= cfg.train.early_stopping_patience:
                reason = f"no CER improvement in {state['bad_epochs']} epochs (early stopping)"
        if is_main:
            checkpoint("last.pt")
        return reason

    start_time = time.time()
    validated_at = -1  # the step of the last mid-epoch validation
    stop_reason = None
    failed = False  # stopped by repeated non-finite steps
    with _StopFlag() as stop:
        while state["epoch"] < cfg.train.max_epochs and stop_reason is None:
            epoch = state["epoch"]
            sampler.set_epoch(epoch, state["batch_in_epoch"])
            train_ds.set_epoch(epoch)  # augmentations drawn per (seed, epoch, line): resumable, worker-independent
            net.train()
            bar = progress(
                train_loader, desc=f"epoch {epoch + 1}", disable=not (cfg.train.progress and is_main), leave=False
            )
            for batch in bar:
                if (
                    cfg.optim.warmup_steps
                    and cfg.optim.scheduler != "cosine"
                    and state["step"] < cfg.optim.warmup_steps
                ):
                    for g in optimizer.param_groups:
                        g["lr"] = cfg.optim.lr * (state["step"] + 1) / cfg.optim.warmup_steps
                images = batch["images"].to(device, non_blocking=True)  # (N, 1, H, W)
                widths = batch["widths"].to(device, non_blocking=True)
                targets = batch["targets"].to(device, non_blocking=True)
                target_lengths = batch["target_lengths"].to(device, non_blocking=True)
                # BatchNorm statistics, restored if the step is skipped (a bad forward pass must not leave a trace).
                saved_buffers = [b.detach().clone() for b in model.buffers()]
                with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
                    log_probs, lengths, *shortcut = net(images, widths, shortcut=True)  # (T, N, C), (N,)
                loss = ctc_loss(log_probs, targets, lengths, target_lengths)
                if shortcut:  # the CTC shortcut head's loss (model.ctc_shortcut > 0)
                    loss = loss + cfg.model.ctc_shortcut * ctc_loss(shortcut[0], targets, lengths, target_lengths)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip or math.inf)
                if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
                    # A NaN/inf never reaches the weights: skip the step, count it, stop if it keeps happening.
                    state["nonfinite"] += 1
                    optimizer.zero_grad(set_to_none=True)
                    with torch.no_grad():
                        for b, saved in zip(model.buffers(), saved_buffers, strict=True):
                            b.copy_(saved)
                    scaler.update()
                    if state["nonfinite"] > cfg.train.max_nonfinite_steps:
                        failed = True
                        stop_reason = (
                            f"{state['nonfinite']} steps had a non-finite loss or gradient (more than "
                            f"train.max_nonfinite_steps); lower optim.lr or check the data"
                        )
                        break
                else:
                    scaler.step(optimizer)
                    scaler.update()
                    if ema is not None:
                        ema.update_parameters(model)
                if scheduler is not None and cfg.optim.scheduler == "cosine":
                    scheduler.step()
                state["step"] += 1
                state["batch_in_epoch"] += 1
                loss_value = float(loss.detach())
                logger.train_step(
                    state["step"],
                    loss_value,
                    optimizer.param_groups[0]["lr"],
                    len(batch["ids"]) * world,
                    float(grad_norm),
                )
                bar.set_postfix(loss=f"{loss_value:.3f}")
                if cfg.train.max_steps and state["step"] >= cfg.train.max_steps:
                    stop_reason = f"reached train.max_steps={cfg.train.max_steps}"
                elif cfg.train.max_time_s and time.time() - start_time >= cfg.train.max_time_s:
                    stop_reason = f"reached train.max_time_s={cfg.train.max_time_s}"
                if _any_rank(stop.set, device, world):
                    if is_main:
                        path = checkpoint("last.pt")
                        say(f"interrupted: wrote {path}; to continue, run the same command with train.resume={path}")
                    logger.close()
                    return {
                        "interrupted": True, "signal": stop.signal, "last": str(out_dir / "last.pt"),
                        "best_cer": state["best_cer"],
                    }  # fmt: skip
                if (  # an epoch's last step and a stopping run validate below, after the loop
                    cfg.train.val_every_steps
                    and state["step"] % cfg.train.val_every_steps == 0
                    and not stop_reason
                    and state["batch_in_epoch"] < steps_per_epoch
                ):
                    with bar.external_write_mode():
                        stop_reason = validate_and_keep(epoch, "mid")  # writes last.pt
                    validated_at = state["step"]
                    net.train()  # validation left the model in eval mode
                elif (
                    is_main
                    and cfg.train.checkpoint_every_steps
                    and state["step"] % cfg.train.checkpoint_every_steps == 0
                ):
                    checkpoint("last.pt")
                if stop_reason:
                    break
            bar.close()

            epoch_done = stop_reason is None or state["batch_in_epoch"] >= steps_per_epoch
            if epoch_done:
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
            if epoch_done or validated_at != state["step"]:  # (a mid-epoch validation that stopped the run: done)
                stop_reason = validate_and_keep(epoch, "end" if epoch_done else "stopped") or stop_reason
    logger.close()
    reason = stop_reason or "reached train.max_epochs"
    for name, report in (("train", train_report), ("val", val_report)):
        if report.n_skipped:  # listed again at the end: the list printed at the start has long scrolled away
            say(report.summary(name))
    best = out_dir / "best.pt"
    where = best if best.is_file() else f"no best.pt in {out_dir} (no validation beat it in this folder)"
    say(f"{'stopped' if failed else 'done'}: {reason}; best val CER {state['best_cer']:.4f}; {where}")
    if state["best_cer"] >= NOT_LEARNED_CER:
        say(
            f"note: the model has not learned to read yet (best val CER {100 * state['best_cer']:.0f}%); give it "
            "more training (train.max_steps, train.max_epochs, train.max_time_s) or check the data and optim.lr"
        )
    if world > 1:
        dist.destroy_process_group()
    return {
        "best_cer": state["best_cer"],
        "epochs": state["epoch"],
        "steps": state["step"],
        "best": str(best) if best.is_file() else None,
        "last": str(out_dir / "last.pt"),
        "stop_reason": stop_reason,
        "failed": failed,
        "nonfinite_steps": state["nonfinite"],
        "skipped": {"train": train_report.skipped, "val": val_report.skipped},
    }


def _any_rank(flag: bool, device: torch.device, world: int) -> bool:
    if world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def _broadcast(value: float, device: torch.device, world: int) -> float:
    if world == 1:
        return value
    t = torch.tensor([value], device=device, dtype=torch.float64)
    dist.broadcast(t, 0)
    return float(t.item())


def _source_note(metrics: dict[str, Any]) -> str:
    """The per-source CERs of a multi-source validation ("; copiste 0.0812, poilus 0.1900"), else ''."""
    per = metrics.get("per_source")
    if not per:
        return ""
    return "; " + ", ".join(f"{name or 'other'} {v['cer']:.4f}" for name, v in sorted(per.items(), key=str))


def _skipped_note(train_report: SkipReport, val_report: SkipReport, nonfinite: int) -> str:
    """What the epoch line adds about lines left out and steps skipped (empty when there were none)."""
    parts = [f"{r.n_skipped} {name} lines" for name, r in (("train", train_report), ("val", val_report)) if r.n_skipped]
    note = f"; skipped {' and '.join(parts)} (listed at the start)" if parts else ""
    return note + (f"; non-finite steps skipped so far: {nonfinite}" if nonfinite else "")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    """Run :func:`train`; htr's errors become one ``htr: ...`` line (exit 2), a failed run exits 1."""
    try:
        result = train(cfg)
    except HTRError as e:
        print(f"htr: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        last = Path(cfg.train.out_dir) / "last.pt"
        resume = f"; resume with train.resume={last}" if last.is_file() else ""
        print(f"htr: interrupted; the checkpoints already written are intact{resume}", file=sys.stderr)
        sys.exit(130)
    if result.get("interrupted"):  # saved, but not finished: a batch scheduler must not take it as done
        sys.exit(128 + (result.get("signal") or signal.SIGINT))
    if result.get("failed"):
        print(f"htr: training stopped: {result['stop_reason']}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    """``python -m htr.train [overrides]``: Hydra's message for a bad override comes with htr's hint."""
    if {"-h", "--help"} & set(sys.argv[1:]):  # every config key explained (htr.config_help), not Hydra's YAML dump
        from htr.config_help import main as config_help

        sys.exit(config_help(sys.argv[1:]))
    problem = run_dir_problem(sys.argv[1:])
    if problem:
        print(f"htr: {problem}", file=sys.stderr)
        sys.exit(2)
    try:
        _hydra_main()
    except SystemExit as e:
        if e.code == 1:  # Hydra's own failure (htr's errors exit 2)
            hint = config_hint(sys.argv[1:])
            if hint:
                print(f"htr: {hint}", file=sys.stderr)
        raise


if __name__ == "__main__":
    main()
