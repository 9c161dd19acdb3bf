"""Learning-rate schedules: the shapes ``optim.scheduler`` names, by training step or by the run's clock.

"cosine" decays from the first step after warm-up. "wsd" (warm-up, stable, decay; Hägele et al. 2024, "Scaling
Laws and Compute-Optimal Training Beyond Fixed Training Durations") holds the peak rate and decays only over the
last ``optim.cooldown_share`` of the run, with their 1 - sqrt shape: they found such a cooldown matches a cosine
while the run stays at the peak rate longer, and a run can be extended before its cooldown starts. The ``_time``
forms measure the run by ``train.max_time_s`` instead of steps, so a run with a wall-time budget ends its decay on
time whatever its speed.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from htr.config import Config
from htr.errors import HTRError

#: schedules whose progress is the share of ``train.max_time_s`` spent (``Run.budget_share``), not the step
TIME_SCHEDULES = ("cosine_time", "wsd_time")
#: schedules stepped after every optimizer step (LambdaLR); "plateau" steps once an epoch, after validation
STEPPED_SCHEDULES = ("cosine", "wsd", *TIME_SCHEDULES)
SCHEDULES = ("plateau", *STEPPED_SCHEDULES, "none")


def decay_factor(shape: str, done: float, cooldown_share: float) -> float:
    """The share of the peak rate at ``done`` (0 to 1) of the run after warm-up, for shape "cosine" or "wsd"."""
    done = min(max(done, 0.0), 1.0)
    if shape == "cosine":
        return 0.5 * (1 + math.cos(math.pi * done))
    into_cooldown = (done - (1 - cooldown_share)) / cooldown_share
    return 1.0 if into_cooldown <= 0 else 1 - math.sqrt(min(into_cooldown, 1.0))


def make_scheduler(
    cfg: Config, optimizer: torch.optim.Optimizer, total_steps: int, budget_share: dict[str, float]
) -> Any:
    """The learning-rate schedule ``cfg.optim`` names; ``budget_share["time"]`` (set by the training loop) drives
    the ``_time`` forms. None for "none"."""
    o = cfg.optim
    if o.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=o.plateau_factor, patience=o.plateau_patience
        )
    if o.scheduler == "none":
        return None
    if o.scheduler not in STEPPED_SCHEDULES:
        raise HTRError(f"optim.scheduler={o.scheduler!r} is not one of {', '.join(SCHEDULES)}")
    if o.scheduler in TIME_SCHEDULES and not cfg.train.max_time_s:
        raise HTRError(f"optim.scheduler={o.scheduler} decays over train.max_time_s, which is not set")
    shape = o.scheduler.removesuffix("_time")
    if shape == "wsd" and not 0 < o.cooldown_share <= 1:
        raise HTRError(f"optim.cooldown_share={o.cooldown_share} must be in (0, 1]")
    warm = max(o.warmup_steps, 0)
    timed = o.scheduler in TIME_SCHEDULES

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        done = budget_share["time"] if timed else (step - warm) / max(total_steps - warm, 1)
        return decay_factor(shape, done, o.cooldown_share)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
