"""CTC decoding: greedy, and beam search with an optional n-gram language model."""

from htr.decode.config import DecodeConfig
from htr.decode.greedy import GreedyDecoder, Hypothesis


def make_decoder(cfg: DecodeConfig, labels: list[str]):  # noqa: ANN201
    """A decoder for ``cfg`` over the model's ``labels`` (index 0 = blank).

    For ``beam_lm``, tuned values saved next to the LM in ``lm_path.json`` replace config values left at their
    defaults (the rule is in :func:`htr.decode.beam.resolve_config`).
    """
    if cfg.name == "greedy":
        return GreedyDecoder(labels)
    from htr.decode.beam import make_beam_decoder  # written with the LM support

    return make_beam_decoder(cfg, labels)


__all__ = ["DecodeConfig", "GreedyDecoder", "Hypothesis", "make_decoder"]
