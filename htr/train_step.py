"""What training does with one batch: the CTC loss, one optimizer step guarded against non-finite values, and the
validation pass; plus the two collectives DDP needs. :mod:`htr.train` runs them in its loop."""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from htr.decode import GreedyDecoder
from htr.lr_schedule import STEPPED_SCHEDULES
from htr.metrics import ErrorRates
from htr.model import CRNN

if TYPE_CHECKING:
    from htr.train_setup import Run


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


def warmup_lr(run: Run) -> None:
    """Ramp the learning rate linearly over ``optim.warmup_steps`` (the per-step schedules, cosine, wsd and their
    ``_time`` forms, have their own)."""
    o, step = run.cfg.optim, run.state["step"]
    if o.warmup_steps and o.scheduler not in STEPPED_SCHEDULES and step < o.warmup_steps:
        for g in run.optimizer.param_groups:
            g["lr"] = o.lr * (step + 1) / o.warmup_steps


def train_step(run: Run, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Forward, loss, backward, clipped optimizer step; return the loss, the gradient norm and whether both were
    finite. A non-finite step never reaches the weights: it is skipped (BatchNorm statistics restored too, a bad
    forward pass must not leave a trace) and counted in ``run.state["nonfinite"]``."""
    warmup_lr(run)
    cfg, device, model, optimizer, scaler = run.cfg, run.device, run.model, run.optimizer, run.scaler
    images = batch["images"].to(device, non_blocking=True)  # (N, 1, H, W)
    widths = batch["widths"].to(device, non_blocking=True)
    targets = batch["targets"].to(device, non_blocking=True)
    target_lengths = batch["target_lengths"].to(device, non_blocking=True)
    saved_buffers = [b.detach().clone() for b in model.buffers()]
    with torch.autocast(device.type, dtype=run.amp_dtype) if run.amp_dtype else nullcontext():
        log_probs, lengths, *shortcut = run.net(images, widths, shortcut=True)  # (T, N, C), (N,)
    loss = ctc_loss(log_probs, targets, lengths, target_lengths)
    if shortcut:  # the CTC shortcut head's loss (model.ctc_shortcut > 0)
        loss = loss + cfg.model.ctc_shortcut * ctc_loss(shortcut[0], targets, lengths, target_lengths)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip or math.inf)
    finite = bool(torch.isfinite(loss) and torch.isfinite(grad_norm))
    if not finite:
        run.state["nonfinite"] += 1
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for b, saved in zip(model.buffers(), saved_buffers, strict=True):
                b.copy_(saved)
        scaler.update()
        return loss, grad_norm, False
    scaler.step(optimizer)
    scaler.update()
    if run.ema is not None:
        run.ema.update_parameters(model)
    return loss, grad_norm, True


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


def any_rank(flag: bool, device: torch.device, world: int) -> bool:
    """Whether ``flag`` is set on any DDP rank (a collective: every rank must call it)."""
    if world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def broadcast(value: float, device: torch.device, world: int) -> float:
    """Rank 0's ``value`` on every rank (a collective: every rank must call it)."""
    if world == 1:
        return value
    t = torch.tensor([value], device=device, dtype=torch.float64)
    dist.broadcast(t, 0)
    return float(t.item())
