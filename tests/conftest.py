"""Shared test helpers: tiny configs, the shared-data location, rendered text lines."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from PIL import Image, ImageDraw, ImageFont

import htr.config  # noqa: F401 - registers the schema

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
COPISTE = SHARED / "copiste"


def compose_config(overrides: list[str]):  # noqa: ANN201
    """Compose ``conf/config.yaml`` with overrides, as ``python -m htr.train`` would."""
    with initialize_config_module("htr.conf", version_base="1.3"):
        return compose("config", overrides=overrides)


TINY_MODEL = [
    "model.height=32",
    "model.conv_channels=[8,16,24]",
    "model.conv_kernels=[3,3,3]",
    "model.conv_pools=[[2,2],[2,1],[2,1]]",
    "model.conv_dropout=[0,0,0]",
    "model.lstm_hidden=48",
    "model.lstm_layers=1",
    "model.lstm_dropout=0",
    "model.out_dropout=0",
]


def save_untrained_checkpoint(path: Path, chars: str = " abcdehijmopstuxz") -> Path:
    """A tiny model's checkpoint with seeded random weights: what recognize, evaluate and report need to run
    (its readings are wrong, which tests of error handling and reports want)."""
    from dataclasses import asdict

    import torch
    from omegaconf import OmegaConf

    from htr.charset import Charset
    from htr.checkpoint import save_checkpoint
    from htr.config import Config
    from htr.model import CRNN

    cfg: Config = OmegaConf.to_object(
        OmegaConf.merge(OmegaConf.structured(Config), compose_config([*TINY_MODEL, "train.out_dir=/unused"]))
    )
    charset = Charset(list(chars))
    torch.manual_seed(0)
    save_checkpoint(path, {"model": CRNN(cfg.model, len(charset)).state_dict(), "charset": charset.chars,
                           "config": OmegaConf.to_container(OmegaConf.structured(cfg)),
                           "preprocess": asdict(cfg.data.preprocess)})  # fmt: skip
    return path


def render_text(text: str, height: int = 40) -> Image.Image:
    """Dark text on light paper, rendered with Pillow's built-in scalable font."""
    font = ImageFont.load_default(size=height * 3 // 4)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (right - left + 16, height), 235)
    ImageDraw.Draw(img).text((8 - left, (height - (bottom - top)) // 2 - top), text, fill=20, font=font)
    return img


def write_pairs(folder: Path, texts: list[str]) -> Path:
    """A folder of NAME.png + NAME.gt.txt pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, t in enumerate(texts):
        render_text(t).save(folder / f"line{i:03d}.png")
        (folder / f"line{i:03d}.gt.txt").write_text(t + "\n", encoding="utf-8")
    return folder


def write_tsv_dataset(root: Path, splits: dict[str, list[str]]) -> Path:
    """A Copiste-style lines.tsv with rendered images."""
    (root / "lines").mkdir(parents=True, exist_ok=True)
    rows = ["id\timage\ttext\twriter\tsplit"]
    for split, texts in splits.items():
        for i, t in enumerate(texts):
            name = f"{split}{i:03d}"
            render_text(t).save(root / "lines" / f"{name}.png")
            rows.append(f"{name}\tlines/{name}.png\t{t}\tw{i % 3}\t{split}")
    (root / "lines.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "lines.tsv"


@pytest.fixture(autouse=True)
def _no_leaked_global_state() -> Iterator[None]:
    """Give every test the process as the previous one found it: torch's thread count, the torch, NumPy and
    Python RNG states, the environment and the working directory (a test that sets one of them, or a training
    run with ``train.threads``, must not change what the next test sees)."""
    import torch

    threads, cwd, env = torch.get_num_threads(), os.getcwd(), dict(os.environ)
    torch_rng, np_rng, py_rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
    yield
    torch.set_num_threads(threads)
    torch.set_rng_state(torch_rng)
    np.random.set_state(np_rng)
    random.setstate(py_rng)
    os.chdir(cwd)
    if dict(os.environ) != env:
        os.environ.clear()
        os.environ.update(env)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
