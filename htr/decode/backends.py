"""The two beam-search engines behind :class:`htr.decode.beam.BeamDecoder`: flashlight-text and pyctcdecode.

Each backend's ``nbest(log_probs)`` returns candidates best first, as ``(label ids, frame path or None)``;
the frame path (one label per frame) is the alignment used for per-character confidences.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import kenlm
import numpy as np
from flashlight.lib.text import decoder as fl
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary
from pyctcdecode.alphabet import BPE_TOKEN, Alphabet
from pyctcdecode.decoder import BeamSearchDecoderCTC
from pyctcdecode.language_model import AbstractLanguageModel, LanguageModel

from htr.errors import HTRError
from htr.lm.files import read_lexicon
from htr.tokens import EOS, UNK, WORD_BOUNDARY, LabelTokens, token_word

LN10 = math.log(10.0)
_TOKEN_MIN_LOGP = -8.0  # pyctcdecode: tokens below this log-prob are tried only when they are a frame's best
_NO_FRAME = -1.0e4  # log-prob of impossible labels in the extra frame that closes the last word


@dataclass(frozen=True)
class LMSpec:
    """An n-gram LM to decode with: ARPA ``path``, ``unit`` ("char" or "word") and, for words, ``lexicon``."""

    path: str
    unit: str = "char"
    lexicon: str | None = None


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence KenLM's loading chatter (it writes progress bars straight to file descriptor 2)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _load(path: str, loader, *args):  # noqa: ANN001, ANN202
    try:
        with _quiet_stderr():
            return loader(path, *args)
    except (RuntimeError, OSError, ValueError) as e:
        m = re.search(r"model has order (\d+) but KenLM was compiled to support up to (\d+)", str(e))
        if m:
            raise HTRError(
                f"this is a {m[1]}-gram model but this KenLM build loads at most {m[2]}-grams; rebuild it "
                f"with `python -m htr.lm build ... --order {m[2]}`",
                path,
            ) from e
        raise HTRError(f"KenLM cannot load this language model ({str(e).splitlines()[0]})", path) from e


def _collapse(path: np.ndarray, blank: int) -> list[int]:
    keep = np.ones(len(path), dtype=bool)
    keep[1:] = path[1:] != path[:-1]
    return [int(k) for k in path[keep] if k != blank]


def _dedupe(cands: list[tuple[list[int], np.ndarray | None]]) -> list[tuple[list[int], np.ndarray | None]]:
    seen: set[tuple[int, ...]] = set()
    out = []
    for ids, path in cands:
        if tuple(ids) not in seen:
            seen.add(tuple(ids))
            out.append((ids, path))
    return out


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
            base = _load(lm.path, KenLM, Dictionary(list(tokens.tokens)))
            weight = lm_weight * LN10
            if word_insertion_penalty or char_bonus:
                bonus = [0.0 if i == tokens.blank else char_bonus for i in range(c)]
                if tokens.space is not None:
                    bonus[tokens.space] = word_insertion_penalty
                self._lm, weight = _BonusLM(base, weight, bonus), 1.0
            else:
                self._lm = base
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
        self._lm = _load(lm.path, KenLM, Dictionary([*(w for w, _ in entries), UNK]))
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
            cands.append((_collapse(path, self.tokens.blank), path))
        return _dedupe(cands)


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
                model = _load(lm.path, kenlm.Model)
                language_model = _CharLM(model, lm_weight, char_bonus, word_insertion_penalty)
        else:
            if tokens.space is None:
                raise HTRError("a word LM needs a model whose labels include the space")
            assert lm is not None and lm.lexicon is not None
            alphabet = Alphabet(["" if i == tokens.blank else lab for i, lab in enumerate(tokens.labels)], False)
            unigrams = [token_word(w) for w, _ in read_lexicon(lm.lexicon)]
            model = _load(lm.path, kenlm.Model)
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
        return _dedupe(cands)
