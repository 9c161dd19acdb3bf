"""On-the-fly augmentation of training lines: conventions kept, reproducible, each transform does what it says."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from htr.charset import Charset
from htr.data.augment import AugmentConfig, LineAugmenter, build_augmenter, item_seed
from htr.data.dataset import build_dataset
from htr.data.lines import LineStore
from htr.data.samples import Sample
from htr.preprocess.pipeline import PreprocessConfig, preprocess_line

from .conftest import compose_config, render_text

H = 32
P_FIELDS = ("p_affine", "p_elastic", "p_morph", "p_blur", "p_noise", "p_contrast")


def _preset(name: str, *overrides: str) -> AugmentConfig:
    """The ``augment=name`` preset as ``python -m htr.train augment=name`` composes it."""
    cfg = OmegaConf.to_object(compose_config([f"augment={name}", *overrides]).data.augment)
    assert isinstance(cfg, AugmentConfig)
    return cfg


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _line(text: str = "Quick brown fox", blank: int = 0) -> torch.Tensor:
    """A preprocessed line (ink high, background 0, ink filling the height), with ``blank`` columns after it."""
    a = preprocess_line(render_text(text), PreprocessConfig(height=H))
    return torch.nn.functional.pad(torch.from_numpy(a).unsqueeze(0), (0, blank))


def _only(cfg: AugmentConfig, p: str) -> AugmentConfig:
    """``cfg`` with every probability 0 except ``p``, which is 1."""
    return replace(cfg, **{q: float(q == p) for q in P_FIELDS})


def _slope(image: torch.Tensor) -> float:
    """Least-squares slope (rows per column, positive: going down to the right) of the ink's centre line."""
    img = image[0]
    cols = torch.nonzero(img.sum(0) > 0.5).flatten()
    rows = torch.arange(img.shape[0], dtype=torch.float32)
    centre = (img[:, cols] * rows[:, None]).sum(0) / img[:, cols].sum(0)
    x = cols.float() - cols.float().mean()
    return float((x * (centre - centre.mean())).sum() / (x * x).sum())


def test_none_is_a_no_op_that_costs_nothing():
    cfg = _preset("none")
    assert cfg == AugmentConfig() and not cfg.active
    assert build_augmenter(cfg) is None
    x = _line()
    assert LineAugmenter(cfg)(x, _gen(0)) is x  # nothing drawn: the very same tensor


def test_presets_compose_with_hydra_and_light_is_lighter():
    light, heavy = _preset("light"), _preset("heavy")
    assert (light.name, heavy.name) == ("light", "heavy")
    assert light.active and heavy.active
    for p in P_FIELDS:
        assert getattr(light, p) <= getattr(heavy, p), p
    assert light.p_elastic <= 0.1 < heavy.p_elastic
    assert compose_config([]).data.augment.name == "none"
    # A preset's values can be overridden from the command line like any key.
    assert _preset("light", "data.augment.p_blur=0.5").p_blur == 0.5


def test_same_seed_same_output_different_seeds_differ():
    aug = LineAugmenter(_preset("light"))
    x = _line()
    outs = [aug(x, _gen(s)) for s in range(8)]
    again = aug(x, _gen(3))
    assert torch.equal(again, outs[3])
    distinct = {o.numpy().tobytes() for o in outs}
    assert len(distinct) >= 6  # a seed may draw no transform at all, but most draw different ones
    assert item_seed(1, 2, 3) == item_seed(1, 2, 3) != item_seed(1, 3, 2)


def test_global_rng_is_left_alone():
    aug = LineAugmenter(_preset("heavy"))
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for s in range(5):
        aug(_line(), _gen(s))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", ["light", "heavy"])
def test_output_keeps_height_dtype_range_and_width(name):
    aug = LineAugmenter(_preset(name))
    x = _line()
    for s in range(20):
        y = aug(x, _gen(s))
        assert y.shape[:2] == (1, H) and y.dtype == torch.float32
        assert y.shape[2] >= x.shape[2]  # never narrower: the line keeps its CTC frames
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_light_leaves_the_background_nearly_black_and_keeps_the_ink():
    aug = LineAugmenter(_preset("light"))
    x = _line(blank=150)
    ink = float(x.sum())
    for s in range(20):
        y = aug(x, _gen(s))
        assert float(y[..., -100:].mean()) < 0.05  # a blank region far from the ink
        assert 0.5 * ink < float(y.sum()) < 2.0 * ink


@pytest.mark.parametrize("p", P_FIELDS)
def test_each_transform_changes_the_line_when_forced(p):
    aug = LineAugmenter(_only(_preset("heavy"), p))
    x = _line()
    for s in range(3):
        y = aug(x, _gen(s))
        assert y.shape[1] == H
        assert y.shape != x.shape or not torch.allclose(y, x, atol=1e-3), (p, s)


def test_positive_rotation_turns_the_line_clockwise_and_shear_leans_right():
    bar = torch.zeros(1, H, 200)
    bar[:, 15:18, 20:180] = 1.0
    assert abs(_slope(bar)) < 1e-6
    down = _slope(LineAugmenter.affine(bar, 4.0, 0.0, 1.0, (0.0, 0.0)))
    up = _slope(LineAugmenter.affine(bar, -4.0, 0.0, 1.0, (0.0, 0.0)))
    assert down == pytest.approx(np.tan(np.radians(4.0)), rel=0.15)
    assert up == pytest.approx(-down, rel=0.05)
    stroke = torch.zeros(1, H, 60)
    stroke[:, 4:28, 29:31] = 1.0
    leaned = LineAugmenter.affine(stroke, 0.0, 15.0, 1.0, (0.0, 0.0))[0]
    cols = torch.arange(60, dtype=torch.float32)

    def x_centre(rows: torch.Tensor) -> float:
        return float((rows * cols).sum() / rows.sum())

    assert x_centre(leaned[4:8]) - x_centre(leaned[24:28]) == pytest.approx(20 * np.tan(np.radians(15.0)), rel=0.2)


def test_random_rotation_turns_both_ways_and_long_lines_less():
    cfg = replace(AugmentConfig(), p_affine=1.0, rotate_deg=3.0, rotate_max_end_shift=0.1)
    aug = LineAugmenter(cfg)
    bar = torch.zeros(1, H, 400)
    bar[:, 15:18, 10:390] = 1.0
    slopes = [_slope(aug(bar, _gen(s))) for s in range(12)]
    assert min(slopes) < -0.002 and max(slopes) > 0.002
    # The ends of a 400-pixel line move by at most 0.1 * H = 3.2 pixels: far less than 3 degrees.
    assert max(abs(s) for s in slopes) <= 1.1 * 3.2 / 200 < np.tan(np.radians(3.0))


def test_warp_keeps_all_the_ink_inside_the_height():
    # Ink from the top row to the bottom row: a larger scale must not cut it, the line is fitted back.
    x = torch.zeros(1, H, 100)
    x[:, 2 : H - 2, 40:60] = 1.0
    cfg = replace(AugmentConfig(), p_affine=1.0, scale_min=1.3, scale_max=1.3)
    y = LineAugmenter(cfg)(x, _gen(0))
    assert y.shape[1] == H
    assert float(y[:, 0].max()) < 0.05 and float(y[:, -1].max()) < 0.05  # background rows kept
    assert float(y.sum()) > 0.9 * float(x.sum())


def test_morphology_blur_contrast_keep_the_background_at_zero():
    x = torch.zeros(1, H, 80)
    x[:, 10:20, 10:30] = 0.8
    dilated, eroded = LineAugmenter.morph(x, (3, 3), True), LineAugmenter.morph(x, (3, 3), False)
    assert float(dilated.sum()) > float(x.sum()) > float(eroded.sum()) > 0
    assert float(dilated[:, 9:21, 9:31].min()) == pytest.approx(0.8)
    for y in (dilated, eroded, LineAugmenter.blur(x, 1.0), LineAugmenter.contrast(x, 0.6, 1.3)):
        assert float(y[..., 50:].abs().max()) == 0.0
    assert float(LineAugmenter.contrast(x, 2.0, 1.0).max()) == 1.0  # clamped


def _store(arrays: list[np.ndarray]) -> LineStore:
    pixels = np.concatenate([np.rint(a * 255).astype(np.uint8) for a in arrays], axis=1)
    offsets = np.cumsum([0] + [a.shape[1] for a in arrays])
    return LineStore(pixels, offsets, {})


def test_dataset_augments_only_when_asked_and_reproducibly():
    texts = ["Quick brown", "lazy dog", "jumps over"]
    arrays = [preprocess_line(render_text(t), PreprocessConfig(height=H)) for t in texts]
    samples = [Sample(f"l{i}", f"l{i}.png", t) for i, t in enumerate(texts)]
    store, cs = _store(arrays), Charset.from_texts(texts)
    plain, _ = build_dataset(samples, store, cs)
    cfg = replace(_preset("light"), p_noise=1.0)  # every item changes

    def augmented(seed: int, epoch: int) -> list[torch.Tensor]:
        ds, _ = build_dataset(samples, store, cs, augmenter=build_augmenter(cfg), seed=seed)
        ds.set_epoch(epoch)
        return [ds[k]["image"] for k in range(len(ds))]

    a, b = augmented(7, 2), augmented(7, 2)  # two instances, same seed and epoch
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not any(torch.equal(u, v) for u, v in zip(a, augmented(7, 3), strict=True))
    assert not any(torch.equal(u, v) for u, v in zip(a, augmented(8, 2), strict=True))
    for k in range(len(plain)):
        assert torch.equal(plain[k]["image"], torch.from_numpy(store[k].astype(np.float32) / 255).unsqueeze(0))
        assert not torch.equal(a[k], plain[k]["image"])


def test_augment_config_is_a_plain_structured_config():
    cfg = OmegaConf.structured(AugmentConfig)
    assert set(OmegaConf.to_container(cfg)) >= {"name", *P_FIELDS, "rotate_deg", "elastic_alpha", "noise_std"}
