"""Decoder settings (a Hydra structured config: simple types only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional  # noqa: UP035 - OmegaConf wants typing generics


@dataclass
class DecodeConfig:
    """How CTC output becomes text: greedy, beam, or beam with an n-gram LM."""

    name: str = "greedy"
    backend: str = "flashlight"
    beam_size: int = 16
    beam_threshold: float = 20.0
    lm_path: Optional[str] = None  # noqa: UP045
    lm_weight: float = 0.5
    word_insertion_penalty: float = 0.0
    char_bonus: float = 0.0
    lexicon: Optional[str] = None  # noqa: UP045
