"""The two beam-search engines behind :class:`htr.decode.beam.BeamDecoder`: flashlight-text and pyctcdecode.

Each backend's ``nbest(log_probs)`` returns candidates best first, as ``(label ids, frame path or None)``;
the frame path (one label per frame) is the alignment used for per-character confidences.

Modules: :mod:`htr.decode.backends.flashlight`, :mod:`htr.decode.backends.pyctc` (the engines) and
:mod:`htr.decode.backends.common` (the LM spec, KenLM loading, candidate lists).
"""

from htr.decode.backends.common import LN10, LMSpec
from htr.decode.backends.flashlight import FlashlightBackend
from htr.decode.backends.pyctc import PyctcdecodeBackend

__all__ = ["LN10", "FlashlightBackend", "LMSpec", "PyctcdecodeBackend"]
