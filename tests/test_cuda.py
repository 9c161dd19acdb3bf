"""GPU checks (marker ``cuda``; skipped without CUDA): mixed-precision training steps, cuDNN's CTC loss, a DDP step.

``python -m pytest -m cuda tests/test_cuda.py`` (scripts/gpu_check.sh runs them on the GPU machine).
"""

from __future__ import annotations

import socket

import pytest
import torch

from htr.config import ModelConfig, structured
from htr.model import CRNN
from htr.train import ctc_loss

from .conftest import TINY_MODEL, compose_config

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _tiny_model(n_labels: int) -> CRNN:
    mcfg = structured(ModelConfig, compose_config([*TINY_MODEL, "train.out_dir=/tmp/x"]).model)
    return CRNN(mcfg, n_labels)


def _batch(n: int = 8, width: int = 160, n_labels: int = 12, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A fixed batch: random line images (N, 1, 32, W) on the GPU, their widths, targets of 3-6 labels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 32, width, generator=g)
    widths = torch.full((n,), width, dtype=torch.long)
    target_lengths = torch.randint(3, 7, (n,), generator=g)
    targets = torch.randint(1, n_labels, (int(target_lengths.sum()),), generator=g)
    return images.cuda(), widths.cuda(), targets.cuda(), target_lengths.cuda()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_mixed_precision_steps_learn_a_batch(dtype: torch.dtype) -> None:
    """The training step as htr.train does it (autocast, float32 CTC, GradScaler for fp16) fits a fixed batch."""
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    torch.manual_seed(0)
    model = _tiny_model(12).cuda().train()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    images, widths, targets, target_lengths = _batch()
    losses = []
    for _ in range(40):
        with torch.autocast("cuda", dtype=dtype):
            log_probs, lengths = model(images, widths)
        assert log_probs.dtype == dtype or log_probs.dtype == torch.float32
        loss = ctc_loss(log_probs, targets, lengths, target_lengths)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0]


def test_cudnn_ctc_loss_matches_the_cpu_reference() -> None:
    """Where cuDNN's CTC applies (int32 targets on the CPU, every input as long as the longest, targets under
    256), its loss and gradient equal the CPU implementation's."""
    if not torch.backends.cudnn.is_available():
        pytest.skip("no cuDNN")
    g = torch.Generator().manual_seed(1)
    t, n, c = 50, 4, 20
    logits = torch.randn(t, n, c, generator=g)
    target_lengths = [7, 12, 3, 20]
    targets = torch.randint(1, c, (sum(target_lengths),), generator=g, dtype=torch.int32)
    input_lengths = [t] * n
    # Gradients are compared on the logits, through log_softmax, as in the model: with respect to the
    # log-probabilities themselves the two implementations follow different conventions (pytorch#52241).
    gpu_logits = logits.cuda().requires_grad_()
    cpu_logits = logits.clone().requires_grad_()
    gpu_in, cpu_in = gpu_logits.log_softmax(2), cpu_logits.log_softmax(2)
    assert torch._use_cudnn_ctc_loss(gpu_in, targets, input_lengths, target_lengths, 0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        gpu_loss = torch.nn.functional.ctc_loss(gpu_in, targets, input_lengths, target_lengths, reduction="sum")
    assert any("cudnn_ctc_loss" in e.key for e in prof.key_averages())  # cuDNN did run
    cpu_loss = torch.nn.functional.ctc_loss(cpu_in, targets.long(), input_lengths, target_lengths, reduction="sum")
    gpu_loss.backward()
    cpu_loss.backward()
    torch.testing.assert_close(gpu_loss.cpu(), cpu_loss, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(gpu_logits.grad.cpu(), cpu_logits.grad, rtol=1e-3, atol=1e-4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_step_over_nccl_in_one_process() -> None:
    """A DistributedDataParallel step over NCCL (world size 1): the gradients are the plain model's."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    if not dist.is_nccl_available():
        pytest.skip("this PyTorch has no NCCL")
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        plain = _tiny_model(12).cuda()
        ddp = DistributedDataParallel(_tiny_model(12).cuda(), device_ids=[torch.cuda.current_device()])
        ddp.module.load_state_dict(plain.state_dict())
        images, widths, targets, target_lengths = _batch(seed=2)
        for net in (plain, ddp):
            log_probs, lengths = net(images, widths)
            ctc_loss(log_probs, targets, lengths, target_lengths).backward()
        # cuDNN's convolution backward sums with atomics, so two identical passes differ in the last bits (on an
        # H200, 1 of 72 weights by 3e-6): a wrong or missing all-reduce would differ by far more than this.
        for p, q in zip(plain.parameters(), ddp.module.parameters(), strict=True):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-3, atol=1e-5)
        t = torch.ones(3, device="cuda")
        dist.all_reduce(t)
        assert t.tolist() == [1.0, 1.0, 1.0]
    finally:
        dist.destroy_process_group()
