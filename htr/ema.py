"""The exponential moving average of the weights that ``train.ema_decay`` validates and saves.

PyTorch's ``AveragedModel`` keeps the average and ``get_ema_multi_avg_fn`` updates it; this module only chooses the
decay. With a fixed decay d the average starts as the random initial weights and forgets them at a rate d per step
(after n steps they still weigh d**n: 0.998**900 = 0.16), so in a short run it lags far behind the model it
averages. ``train.ema_warmup`` lets the decay grow with the number of updates n, as TensorFlow's
``ExponentialMovingAverage(num_updates=...)`` does: min(d, (1 + n) / (10 + n)), an average over roughly the last n /
9 updates until the decay reaches d.
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from htr.errors import HTRError


def ema_decay_at(decay: float, n_updates: int, warmup: bool) -> float:
    """The decay of an update of an average that has had ``n_updates`` updates (the first, a copy, included)."""
    return min(decay, (1 + n_updates) / (10 + n_updates)) if warmup else decay


def make_ema(model: torch.nn.Module, decay: float, warmup: bool) -> AveragedModel:
    """An ``AveragedModel`` of ``model`` (its batch-norm statistics averaged too) updated with
    :func:`ema_decay_at`; its ``n_averaged`` counts the updates, so a resumed run continues the warm-up."""
    if not 0.0 < decay < 1.0:
        raise HTRError(f"train.ema_decay={decay} must be in (0, 1) (0 turns the average off)")

    if not warmup:
        return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        # torch's own EMA step (float and integer buffers alike), at this update's decay; int(): a host sync on CUDA
        get_ema_multi_avg_fn(ema_decay_at(decay, int(n_averaged), warmup))(averaged, current, n_averaged)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)
