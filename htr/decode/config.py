"""Decoder settings (a Hydra structured config: simple types only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional  # noqa: UP035 - OmegaConf wants typing generics

from htr.errors import HTRError

#: The beam threshold when neither the config nor the LM's tuned values give one.
DEFAULT_BEAM_THRESHOLD = 20.0
#: Each setting ``python -m htr.lm tune`` saves next to an LM, and its value when neither the config nor the LM's
#: tuned values give one (the config holds null for "not given", so that an explicit default value is kept).
UNTUNED_DEFAULTS = {
    "lm_weight": 0.5,
    "word_insertion_penalty": 0.0,
    "char_bonus": 0.0,
    "beam_threshold": DEFAULT_BEAM_THRESHOLD,
}


@dataclass
class DecodeConfig:
    """How CTC output becomes text: greedy, beam, or beam with an n-gram LM.

    Attributes:
        name: "greedy" (the most probable label per frame), "beam" (CTC beam search) or "beam_lm" (beam
            search with the n-gram LM ``lm_path``).
        backend: the beam-search engine: "flashlight" (flashlight-text) or "pyctcdecode".
        beam_size: hypotheses kept at each frame.
        beam_threshold: hypotheses and labels scoring more than this below a frame's best are pruned (labels
            by flashlight only); null: the value ``python -m htr.lm tune`` saved with the LM, else
            ``DEFAULT_BEAM_THRESHOLD``. Null rather than 20 so that an explicit 20 is kept.
        lm_path: the ARPA language model (from ``python -m htr.lm build``) for ``beam_lm``; tuned values
            saved next to it (``LM.json``) are used for the three below (and ``beam_threshold``) where those are
            null, else ``UNTUNED_DEFAULTS``.
        lm_weight: weight of the LM's log-probability against the model's (untuned: 0.5).
        word_insertion_penalty: score added at each word (each space for a character LM; untuned: 0).
        char_bonus: score added at each character (character LMs only; untuned: 0).
        lexicon: the word list of a word LM; null: the one found next to the LM.
    """

    name: str = "greedy"
    backend: str = "flashlight"
    beam_size: int = 16
    beam_threshold: Optional[float] = None  # noqa: UP045
    lm_path: Optional[str] = None  # noqa: UP045
    lm_weight: Optional[float] = None  # noqa: UP045
    word_insertion_penalty: Optional[float] = None  # noqa: UP045
    char_bonus: Optional[float] = None  # noqa: UP045
    lexicon: Optional[str] = None  # noqa: UP045


def require_lm_path(cfg: DecodeConfig) -> None:
    """Refuse a ``beam_lm`` decoder without ``lm_path`` in one sentence naming the key.

    ``decode/beam_lm.yaml`` cannot mark ``lm_path`` required with ``???``: a ``???`` merged over the schema's
    default (null) leaves the null (as for ``data.root``, see :mod:`htr.data.sources`), so the check is here,
    called wherever a decode config is read: :func:`htr.decode.beam.resolve_config` and ``htr.train``'s start.
    """
    if cfg.name == "beam_lm" and not cfg.lm_path:
        raise HTRError("decode=beam_lm needs decode.lm_path=PATH (an ARPA file from python -m htr.lm build)")
