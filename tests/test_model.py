import pytest
import torch
from omegaconf import OmegaConf

from htr.config import ModelConfig
from htr.model import CRNN

from .conftest import compose_config


def tiny(**kw) -> ModelConfig:
    cfg = ModelConfig(
        height=32, conv_channels=[4, 8], conv_kernels=[3, 3], conv_pools=[[2, 2], [2, 2]], conv_dropout=[0, 0],
        lstm_hidden=8, lstm_layers=2, lstm_dropout=0.0, out_dropout=0.0,
    )  # fmt: skip
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_output_lengths_follow_pooling():
    m = CRNN(tiny(), 5)
    widths = torch.tensor([4, 7, 8, 33, 100])
    assert m.output_lengths(widths).tolist() == [1, 1, 2, 8, 25]
    assert m.width_stride == 4


def test_forward_shapes_and_normalized():
    m = CRNN(tiny(), 6).eval()
    x = torch.rand(3, 1, 32, 40)
    lp, lengths = m(x, torch.tensor([40, 20, 9]))
    assert lp.shape == (10, 3, 6)
    assert lengths.tolist() == [10, 5, 2]
    assert torch.allclose(lp.exp().sum(-1), torch.ones(10, 3), atol=1e-5)


def test_padding_does_not_change_a_lines_output():
    # Background is 0 and conv padding is zeros; the LSTMs run on packed sequences: a line alone and the same
    # line padded inside a batch of wider lines must give the same log-probabilities on its frames.
    torch.manual_seed(0)
    m = CRNN(tiny(), 7).eval()
    line = torch.rand(1, 1, 32, 24)
    alone, n = m(line, torch.tensor([24]))
    batch = torch.zeros(2, 1, 32, 64)
    batch[0, :, :, :24] = line[0]
    batch[1] = torch.rand(1, 32, 64)
    padded, lengths = m(batch, torch.tensor([24, 64]))
    assert lengths[0] == n[0] == 6
    # Only the last frame's receptive field reaches past the line (where the first conv's activations of the
    # zero padding are not exactly zero), so the outputs agree closely, not bit for bit.
    assert torch.allclose(alone[:6, 0], padded[:6, 0], atol=2e-3)
    # Without packing, the backward LSTM would start in the padding and the line's frames would change a lot.
    assert not torch.allclose(
        padded[:6, 0], m(batch[:1].expand(2, -1, -1, -1), torch.tensor([64, 64]))[0][:6, 0], atol=2e-3
    )


def test_bad_model_configs_fail_clearly():
    with pytest.raises(ValueError, match="conv_kernels"):
        CRNN(tiny(conv_kernels=[3]), 5)
    with pytest.raises(ValueError, match="too small"):
        CRNN(tiny(height=2), 5)


@pytest.mark.parametrize("name,params", [("small", (0.5e6, 1.5e6)), ("puigcerver", (8e6, 10e6))])
def test_shipped_model_configs(name, params):
    cfg = compose_config([f"model={name}", "train.out_dir=/tmp/x"])
    mc = OmegaConf.to_object(cfg.model)
    m = CRNN(mc, 100)
    n = sum(p.numel() for p in m.parameters())
    assert params[0] < n < params[1]
    lp, _ = m.eval()(torch.zeros(1, 1, mc.height, 256), torch.tensor([256]))
    assert lp.shape[1:] == (1, 100)


def test_unpacked_cpu_lstm_equals_packed_lstm_outputs_and_gradients():
    """The CPU path (each direction reversed within each line's length) computes what packed sequences do."""
    from htr.model.lstm import packed_bilstm, reverse_within_lengths, reversed_bilstm

    torch.manual_seed(0)
    x = torch.arange(12.0).reshape(4, 3, 1)
    lengths = torch.tensor([4, 2, 1])
    # hand-checked: line 0 fully reversed, line 1's two frames swapped, line 2 unchanged; padding stays put
    assert reverse_within_lengths(x, lengths)[:, :, 0].T.tolist() == [[9, 6, 3, 0], [4, 1, 7, 10], [2, 5, 8, 11]]

    lstm = torch.nn.LSTM(5, 7, num_layers=3, bidirectional=True)
    inputs = torch.randn(9, 4, 5)
    lengths = torch.tensor([9, 4, 7, 1])
    results = []
    for fn in (packed_bilstm, reversed_bilstm):
        lstm.zero_grad()
        xi = inputs.clone().requires_grad_(True)
        y = fn(lstm, xi, lengths)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        results.append((y.detach(), xi.grad, [p.grad.clone() for p in lstm.parameters()]))
    (y1, gx1, gp1), (y2, gx2, gp2) = results
    torch.testing.assert_close(y1, y2, atol=1e-5, rtol=1e-4)
    assert y2[4:, 1].abs().max() == 0  # frames past a line's end are zero, as pad_packed_sequence gives
    torch.testing.assert_close(gx1, gx2, atol=1e-5, rtol=1e-4)
    for a, b in zip(gp1, gp2, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_model_gives_the_same_log_probs_with_either_lstm_path():
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), {"height": 32, "lstm_hidden": 16}))
    model = CRNN(cfg, 6).eval()
    images, widths = torch.rand(3, 1, 32, 90), torch.tensor([90, 41, 64])
    fast, lengths = model(images, widths)
    model.cpu_unpacked_lstm = False
    packed, lengths2 = model(images, widths)
    assert torch.equal(lengths, lengths2)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(fast[:n, i], packed[:n, i], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("settings", "stride"),
    [
        ({"conv_pools": [[2, 2], [2, 2], [2, 1], [2, 1]]}, 4),
        (
            {
                "conv_channels": [8, 8, 8],
                "conv_kernels": [3, 3, 3],
                "conv_dropout": [0, 0, 0],
                "conv_pools": [[2, 2], [2, 3], [1, 2]],
            },
            12,
        ),
        ({"encoder": "flat", "flat_window": 6, "flat_stride": 3}, 3),
    ],
)
def test_width_stride_without_building_a_model(settings, stride):
    from htr.config import ModelConfig, structured
    from htr.model import CRNN, width_stride

    cfg = structured(ModelConfig, settings)
    assert width_stride(cfg) == stride == CRNN(cfg, 3).width_stride
