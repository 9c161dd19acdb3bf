"""n-gram language models for decoding: ``python -m htr.lm build`` estimates them (modified Kneser-Ney).

See :mod:`htr.lm.ngram` (estimation, ARPA output), :mod:`htr.lm.corpus` (input text) and
:mod:`htr.lm.files` (the ``PATH.json`` / ``PATH.lexicon`` files next to a model).
"""

from htr.lm.files import lexicon_path, meta_path, read_meta, update_meta
from htr.lm.ngram import DEFAULT_ORDER, build_lm

__all__ = ["DEFAULT_ORDER", "build_lm", "lexicon_path", "meta_path", "read_meta", "update_meta"]
