"""The flashlight-text engine of :class:`htr.decode.beam.BeamDecoder`: lexicon-free (no LM or a character LM)
or with a lexicon (word LM)."""

from __future__ import annotations

import math

import numpy as np
from flashlight.lib.text import decoder as fl
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from htr.decode.backends.arpa_bonus import arpa_with_bonuses
from htr.decode.backends.common import LN10, LMSpec, collapse, dedupe, load_lm
from htr.errors import HTRError
from htr.lm.files import read_lexicon
from htr.tokens import UNK, LabelTokens

_NO_FRAME = -1.0e4  # log-prob of impossible labels in the extra frame that closes the last word


class _BonusLM(fl.LM):
    """A flashlight LM: a weighted KenLM score plus per-token bonuses (run with flashlight lm_weight 1)."""

    def __init__(self, base: fl.LM, weight: float, bonus: list[float]) -> None:
        fl.LM.__init__(self)
        self.base, self.weight, self.bonus = base, weight, bonus

    def start(self, start_with_nothing: bool):  # noqa: ANN201
        return self.base.start(start_with_nothing)

    def score(self, state, token_index: int):  # noqa: ANN001, ANN201
        out, s = self.base.score(state, token_index)
        return out, self.weight * s + self.bonus[token_index]

    def finish(self, state):  # noqa: ANN001, ANN201
        out, s = self.base.finish(state)
        return out, self.weight * s


#: Bake bonuses into an ARPA copy where exact (False: always the Python wrapper; benchmarks and tests compare the two).
BAKE_BONUSES = True


def _char_lm(path: str, tokens: LabelTokens, lm_weight: float, penalty: float, char_bonus: float):  # noqa: ANN202
    """The character LM and the weight to give it: the bonuses baked into a copy of the ARPA file where that is
    exact (arpa_bonus), else added by :class:`_BonusLM` (every LM query then goes through Python)."""
    vocab = Dictionary(list(tokens.tokens))
    weight = lm_weight * LN10
    if not (penalty or char_bonus):
        return load_lm(path, KenLM, vocab), weight
    bonus = [0.0 if i == tokens.blank else char_bonus for i in range(len(tokens.labels))]
    if tokens.space is not None:
        bonus[tokens.space] = penalty
    if weight and BAKE_BONUSES:
        log10_bonus = {tokens.tokens[i]: b / weight for i, b in enumerate(bonus) if i != tokens.blank}
        with arpa_with_bonuses(path, log10_bonus) as baked:
            if baked is not None:
                return load_lm(baked, KenLM, vocab), weight
    return _BonusLM(load_lm(path, KenLM, vocab), weight, bonus), 1.0


class FlashlightBackend:
    """flashlight-text: ``LexiconFreeDecoder`` (``ZeroLM`` or a char LM) or ``LexiconDecoder`` (word LM)."""

    def __init__(
        self,
        tokens: LabelTokens,
        beam_size: int,
        beam_threshold: float,
        lm: LMSpec | None,
        lm_weight: float,
        word_insertion_penalty: float,
        char_bonus: float,
    ) -> None:
        self.tokens = tokens
        c = len(tokens.labels)
        self.max_tokens = min(c, beam_size)
        self.threshold = beam_threshold
        self.sil = tokens.space if tokens.space is not None else tokens.blank
        self.word_lm = lm is not None and lm.unit == "word"
        self._decoders: dict[int, object] = {}
        self._trie = None
        if lm is None:
            self._lm = fl.ZeroLM()
            self._args = (beam_size, beam_threshold, 0.0, 0.0, True)  # log-add: sum over alignments
        elif lm.unit == "char":
            self._lm, weight = _char_lm(lm.path, tokens, lm_weight, word_insertion_penalty, char_bonus)
            self._args = (beam_size, beam_threshold, weight, 0.0, False)
        else:
            if tokens.space is None:
                raise HTRError("a word LM needs a model whose labels include the space")
            self._init_lexicon(lm)
            self._args = (beam_size, beam_threshold, lm_weight * LN10, word_insertion_penalty, False)

    def _init_lexicon(self, lm: LMSpec) -> None:
        assert lm.lexicon is not None and self.tokens.space is not None
        known = set(self.tokens.tokens)
        entries = [(w, s) for w, s in read_lexicon(lm.lexicon) if all(t in known for t in s) and w != UNK]
        if not entries:
            raise HTRError("no lexicon word can be spelled with the model's labels", lm.lexicon)
        self._n_words = len(entries)
        self._lm = load_lm(lm.path, KenLM, Dictionary([*(w for w, _ in entries), UNK]))
        self._trie = fl.Trie(len(self.tokens.labels), self.tokens.space)
        start = self._lm.start(False)
        for i, (_, spelled) in enumerate(entries):
            self._trie.insert(self.tokens.ids_of_tokens(spelled), i, self._lm.score(start, i)[1])
        self._trie.smear(fl.SmearingMode.MAX)

    def _decoder(self, n_tokens: int):  # noqa: ANN202
        """The decoder trying ``n_tokens`` labels per frame (cheap to make: the LM and trie are shared)."""
        dec = self._decoders.get(n_tokens)
        if dec is None:
            beam, threshold, weight, word_score, log_add = self._args
            ctc, blank = fl.CriterionType.CTC, self.tokens.blank
            if self._trie is None:
                opts = fl.LexiconFreeDecoderOptions(beam, n_tokens, threshold, weight, 0.0, log_add, ctc)
                dec = fl.LexiconFreeDecoder(opts, self._lm, self.sil, blank, [])
            else:
                opts = fl.LexiconDecoderOptions(
                    beam, n_tokens, threshold, weight, word_score, -math.inf, 0.0, log_add, ctc
                )
                dec = fl.LexiconDecoder(opts, self._trie, self._lm, self.sil, blank, self._n_words, [], False)
            self._decoders[n_tokens] = dec
        return dec

    def nbest(self, log_probs: np.ndarray) -> list[tuple[list[int], np.ndarray | None]]:
        """Candidates, best first, each with its frame path."""
        t, c = log_probs.shape
        em = log_probs
        if self.word_lm:  # spellings end with the word boundary: one certain space frame closes the last word
            extra = np.full((1, c), _NO_FRAME, dtype=np.float32)
            extra[0, self.tokens.space] = 0.0
            em = np.ascontiguousarray(np.concatenate([log_probs, extra]), dtype=np.float32)
        # Labels more than beam_threshold below a frame's best are pruned by the decoder anyway (exactly so
        # without an LM): try only as many per frame as the busiest frame has in that range.
        within = (log_probs >= log_probs.max(axis=1, keepdims=True) - self.threshold).sum(axis=1).max()
        decoder = self._decoder(int(min(self.max_tokens, within)))
        results = decoder.decode(em.ctypes.data, em.shape[0], c)
        cands = []
        for r in results:
            path = np.asarray(r.tokens[1 : t + 1], dtype=np.int64)
            if self.word_lm:
                path = _single_spaces(path, self.tokens.space, self.tokens.blank)
            cands.append((collapse(path, self.tokens.blank), path))
        return dedupe(cands)


def _single_spaces(path: np.ndarray, space: int, blank: int) -> np.ndarray:
    """Blank out spaces that would lead, trail or double up: words of a lexicon are joined by one space."""
    path = path.copy()
    last = None  # last label emitted so far
    runs = np.flatnonzero(np.concatenate(([True], path[1:] != path[:-1])))
    ends = np.concatenate((runs[1:], [len(path)]))
    space_run = None
    for s, e in zip(runs, ends, strict=True):
        k = path[s]
        if k == blank:
            continue
        if k == space:
            if last is None or last == space:
                path[s:e] = blank
                continue
            space_run = (s, e)
        last = k
    if last == space and space_run is not None:
        path[space_run[0] : space_run[1]] = blank
    return path
