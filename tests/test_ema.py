"""The weight average of train.ema_decay / train.ema_warmup (htr.ema)."""

import pytest
import torch

from htr.ema import ema_decay_at, make_ema
from htr.errors import HTRError


def test_the_warmup_decay_grows_with_the_updates_up_to_the_set_decay():
    assert [ema_decay_at(0.998, n, warmup=True) for n in (0, 10, 90)] == pytest.approx([0.1, 0.55, 0.91])
    assert ema_decay_at(0.998, 4490, warmup=True) == pytest.approx(4491 / 4500)
    assert ema_decay_at(0.998, 10_000, warmup=True) == 0.998
    assert ema_decay_at(0.998, 0, warmup=False) == 0.998


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))


def _train_a_step(net: torch.nn.Module, seed: int) -> None:
    """Move the weights and the batch-norm statistics (num_batches_tracked is an integer buffer)."""
    torch.manual_seed(seed)
    net.train()
    net(torch.randn(4, 3)).sum().backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.1 * p.grad
            p.grad = None


@pytest.mark.parametrize("warmup", [False, True])
def test_each_update_moves_the_average_by_its_decay_and_a_resumed_average_goes_on_alike(warmup):
    net = _net()
    ema = make_ema(net, 0.9, warmup)
    ema.update_parameters(net)  # the first update copies
    for step in range(1, 4):
        before = {k: v.clone() for k, v in ema.module.state_dict().items()}
        _train_a_step(net, step)
        ema.update_parameters(net)
        d = 0.9 if not warmup else min(0.9, (1 + step) / (10 + step))  # after `step` updates (the copy first)
        for k, v in ema.module.state_dict().items():
            expected = d * before[k].double() + (1 - d) * net.state_dict()[k].double()
            if v.is_floating_point():
                assert torch.allclose(v.double(), expected, atol=1e-6), (step, k)
            else:
                assert v == expected.to(v.dtype), (step, k)
        if step == 2:  # what training saves: the averaged weights and the update count
            saved, updates = {k: v.clone() for k, v in ema.module.state_dict().items()}, int(ema.n_averaged)
            raw = {k: v.clone() for k, v in net.state_dict().items()}
    resumed_net = _net()
    resumed_net.load_state_dict(raw)
    resumed = make_ema(resumed_net, 0.9, warmup)
    resumed.module.load_state_dict(saved)
    resumed.n_averaged.fill_(updates)
    _train_a_step(resumed_net, 3)
    resumed.update_parameters(resumed_net)
    for k, v in ema.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[k], v), k


@pytest.mark.parametrize("decay", [1.0, 1.5, -0.1])
def test_a_decay_outside_zero_to_one_is_one_clear_error(decay):
    with pytest.raises(HTRError, match=f"train.ema_decay={decay} must be in"):
        make_ema(_net(), decay, warmup=False)
