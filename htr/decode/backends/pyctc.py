"""The pyctcdecode engine of :class:`htr.decode.beam.BeamDecoder`: labels as one-character "words" (no LM or a
character LM) or as characters (word LM)."""

from __future__ import annotations

import kenlm
import numpy as np
from pyctcdecode.alphabet import BPE_TOKEN, Alphabet
from pyctcdecode.decoder import BeamSearchDecoderCTC
from pyctcdecode.language_model import AbstractLanguageModel, LanguageModel

from htr.decode.backends.common import LN10, LMSpec, dedupe, load_lm
from htr.errors import HTRError
from htr.lm.files import read_lexicon
from htr.tokens import EOS, WORD_BOUNDARY, LabelTokens, token_word

_TOKEN_MIN_LOGP = -8.0  # pyctcdecode: tokens below this log-prob are tried only when they are a frame's best


class _CharLM(AbstractLanguageModel):
    """pyctcdecode LM over character tokens: each "word" pyctcdecode completes is one label's LM token."""

    def __init__(self, model: kenlm.Model, weight: float, char_bonus: float, boundary_bonus: float) -> None:
        self.model, self.weight = model, weight * LN10
        self.char_bonus, self.boundary_bonus = char_bonus, boundary_bonus

    @property
    def order(self) -> int:
        return int(self.model.order)

    def get_start_state(self) -> kenlm.State:
        state = kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def score_partial_token(self, partial_token: str) -> float:
        return 0.0

    def score(self, prev_state: kenlm.State, word: str, is_last_word: bool = False) -> tuple[float, kenlm.State]:
        raw, bonus, state = 0.0, 0.0, prev_state
        if word:
            state = kenlm.State()
            raw += self.model.BaseScore(prev_state, word, state)
            bonus = self.boundary_bonus if word == WORD_BOUNDARY else self.char_bonus
        if is_last_word:
            raw += self.model.BaseScore(state, EOS, kenlm.State())
        return self.weight * raw + bonus, state


class PyctcdecodeBackend:
    """pyctcdecode: labels as one-character "words" (no LM, char LM) or as characters (word LM)."""

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
        self.tokens, self.beam_size, self.threshold, self.lm = tokens, beam_size, beam_threshold, lm
        self.char_mode = lm is None or lm.unit == "char"
        language_model: AbstractLanguageModel | None = None
        if self.char_mode:
            labels = ["" if i == tokens.blank else BPE_TOKEN + tok for i, tok in enumerate(tokens.tokens)]
            alphabet = Alphabet(labels, True)
            if lm is not None:
                model = load_lm(lm.path, kenlm.Model)
                language_model = _CharLM(model, lm_weight, char_bonus, word_insertion_penalty)
        else:
            if tokens.space is None:
                raise HTRError("a word LM needs a model whose labels include the space")
            assert lm is not None and lm.lexicon is not None
            alphabet = Alphabet(["" if i == tokens.blank else lab for i, lab in enumerate(tokens.labels)], False)
            unigrams = [token_word(w) for w, _ in read_lexicon(lm.lexicon)]
            model = load_lm(lm.path, kenlm.Model)
            # pyctcdecode's unk_score_offset (default -10, log10) adds to the ARPA's <unk> probability.
            # It also penalizes unknown partial words, which keeps beams from dropping spaces to merge words.
            language_model = LanguageModel(model, unigrams, alpha=lm_weight, beta=word_insertion_penalty)
            self._label_index = {lab: i for i, lab in enumerate(tokens.labels) if i != tokens.blank}
        self.decoder = BeamSearchDecoderCTC(alphabet, language_model)

    def __del__(self) -> None:
        decoder = getattr(self, "decoder", None)
        if decoder is not None:
            decoder.cleanup()  # pyctcdecode keeps LMs in a class-level registry

    def nbest(self, log_probs: np.ndarray) -> list[tuple[list[int], np.ndarray | None]]:
        """Candidates, best first (without frame paths)."""
        beams = self.decoder.decode_beams(
            log_probs,
            beam_width=self.beam_size,
            beam_prune_logp=-self.threshold,
            token_min_logp=_TOKEN_MIN_LOGP,
            prune_history=self.lm is not None,
        )
        # pyctcdecode's frame spans follow whichever merged beam came first, not the best alignment: the
        # decoder realigns (Viterbi) for the confidences.
        cands: list[tuple[list[int], np.ndarray | None]] = []
        for text, *_ in beams:
            if self.char_mode:
                cands.append((self.tokens.ids_of_tokens(text.split()), None))
            else:
                cands.append(([self._label_index[ch] for ch in text], None))
        return dedupe(cands)
