"""Running a trained model: build it from a checkpoint, feed it batches of lines, decode the output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from htr.charset import Charset
from htr.checkpoint import load_checkpoint
from htr.config import ModelConfig
from htr.data.dataset import collate
from htr.decode import DecodeConfig, Hypothesis, make_decoder
from htr.errors import CheckpointError
from htr.model import CRNN
from htr.preprocess.pipeline import PreprocessConfig

DEFAULT_MODEL = Path(__file__).parent / "models" / "default.pt"


def structured(schema: type, values: Any) -> Any:
    """Turn a plain dict (e.g. from a checkpoint) into a typed config object of ``schema``."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values or {}))


@dataclass
class LoadedModel:
    """A model ready for inference with everything needed to feed it and read its output."""

    model: CRNN
    charset: Charset
    preprocess: PreprocessConfig
    config: dict[str, Any]
    path: Path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a checkpoint for inference; ``"default"`` names the model shipped with htr."""
    if str(path) == "default":
        path = DEFAULT_MODEL
        if not path.is_file():
            raise CheckpointError(
                "no default model is installed with this copy of htr; train one with `python -m htr.train` "
                "and pass --checkpoint runs/<run>/best.pt"
            )
    ckpt = load_checkpoint(path)
    try:
        config = ckpt["config"]
        model_cfg = structured(ModelConfig, config["model"])
        pre_cfg = structured(PreprocessConfig, ckpt["preprocess"])
        charset = Charset(ckpt["charset"])
        model = CRNN(model_cfg, len(charset))
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(
            f"the checkpoint does not match this htr's model ({str(e).splitlines()[0]})", path
        ) from None
    model.to(device).eval()
    return LoadedModel(model, charset, pre_cfg, config, Path(path))


def lines_to_batch(arrays: Sequence[np.ndarray]) -> dict:
    """Collate preprocessed uint8 (H, W) line arrays into a padded batch (targets empty)."""
    items = [
        {
            "image": torch.from_numpy(a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a).unsqueeze(0),
            "target": torch.zeros(0, dtype=torch.long),
            "text": "",
            "id": str(i),
        }
        for i, a in enumerate(arrays)
    ]
    return collate(items)


@torch.inference_mode()
def forward_log_probs(model: CRNN, images: torch.Tensor, widths: torch.Tensor) -> list[np.ndarray]:
    """Per-line log-probabilities, each (T_i, C) float32 on the CPU, for a padded batch."""
    device = next(model.parameters()).device
    log_probs, lengths = model(images.to(device, non_blocking=True), widths.to(device))  # (T, N, C)
    log_probs = log_probs.float().cpu().numpy()
    return [log_probs[: int(n), i] for i, n in enumerate(lengths.tolist())]


def recognize_lines(
    loaded: LoadedModel,
    arrays: Sequence[np.ndarray],
    decode_cfg: DecodeConfig | None = None,
    batch_size: int = 16,
    decoder: Any = None,
) -> list[Hypothesis]:
    """Recognize preprocessed lines, batched by similar width; results in input order."""
    decoder = decoder or make_decoder(decode_cfg or DecodeConfig(), loaded.charset.labels)
    order = sorted(range(len(arrays)), key=lambda i: arrays[i].shape[1])
    results: list[Hypothesis | None] = [None] * len(arrays)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = lines_to_batch([arrays[i] for i in idx])
        for i, lp in zip(idx, forward_log_probs(loaded.model, batch["images"], batch["widths"]), strict=True):
            results[i] = decoder.decode(lp)
    return results  # type: ignore[return-value]
