"""CTC beam search with an optional n-gram LM, through flashlight-text or pyctcdecode.

:class:`BeamDecoder` has the interface of :class:`htr.decode.greedy.GreedyDecoder` (``decode``,
``decode_batch`` -> :class:`Hypothesis`). Scores are natural logs in both backends:

* ``lm_weight`` multiplies the LM's natural-log probability (KenLM's log10 scores are converted);
* ``word_insertion_penalty`` is added once per word: per word-boundary token ``|`` with a character LM, per
  lexicon word with a word LM (flashlight's ``word_score``, pyctcdecode's ``beta``); positive favours words;
* ``char_bonus`` is added once per character token (character LMs only).

Character LMs: flashlight's ``LexiconFreeDecoder`` (the LM scores every token) or pyctcdecode with each label
as its own "word" (so its LM is queried per character, with the full KenLM state). Labels the LM never saw
are scored as ``<unk>`` and are output like any other. Word LMs: flashlight's ``LexiconDecoder`` (closed
vocabulary: only lexicon words can be output) or pyctcdecode (open vocabulary: an unknown word gets the ARPA's
``<unk>`` probability plus pyctcdecode's default ``unk_score_offset`` of -10 (log10), so it needs strong
optical evidence). Without an LM, flashlight runs with ``ZeroLM`` and the probabilities of a prefix's
alignments are summed (log-add); with an LM the best alignment counts (max).

Tokens tried per frame (flashlight): at most ``beam_size``, and no more than the busiest frame has within
``beam_threshold`` of its best label. pyctcdecode tries the labels with log-probability >= -8 at each frame
(and each frame's best); ``beam_threshold`` is its ``beam_prune_logp``.

Without an LM the result is never less probable than greedy decoding: the two best of the n-best list and the
greedy labeling are rescored with the exact CTC probability (sum over alignments) and the most probable wins.
``char_confidences`` are, as for the greedy decoder, the geometric mean posterior of the frames aligned to each
character (the returned alignment; for greedy the best path), and ``confidence`` their mean
(:func:`htr.decode.greedy.line_confidence`: 0 for an empty text).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from htr.decode.backends import LN10, FlashlightBackend, LMSpec, PyctcdecodeBackend
from htr.decode.config import DEFAULT_BEAM_THRESHOLD, UNTUNED_DEFAULTS, DecodeConfig, require_lm_path
from htr.decode.greedy import Hypothesis, greedy_path, line_confidence
from htr.errors import HTRError
from htr.lm.files import TUNED_KEYS, lexicon_path, read_meta
from htr.tokens import LabelTokens

log = logging.getLogger(__name__)
BACKENDS = ("flashlight", "pyctcdecode")
_NBEST_RESCORED = 2

__all__ = ["LN10", "BeamDecoder", "LMSpec", "ctc_log_likelihood", "describe", "make_beam_decoder", "resolve_config"]


def ctc_log_likelihood(log_probs: np.ndarray, labelings: list[list[int]], blank: int = 0) -> np.ndarray:
    """``log P(labeling | x)`` under CTC for each labeling: the sum over all its alignments (-inf if none).

    The forward algorithm for all labelings at once, in probability space with periodic rescaling.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    t_len = lp.shape[0]
    exts, starts = [], []
    total = 0
    for lab in labelings:
        ext = np.full(2 * len(lab) + 1, blank, dtype=np.int64)
        ext[1::2] = lab
        exts.append(ext)
        starts.append(total)
        total += len(ext)
    ext_all = np.concatenate(exts)
    first = np.asarray(starts)
    seg = np.repeat(np.arange(len(exts)), [len(e) for e in exts])
    step1 = np.ones(total)
    step1[first] = 0.0
    step2 = np.zeros(total)
    for s0, ext in zip(starts, exts, strict=True):
        skip = np.zeros(len(ext), dtype=bool)
        skip[3::2] = ext[3::2] != ext[1:-2:2]
        step2[s0 : s0 + len(ext)] = skip
    shift = lp.max(axis=1)
    probs = np.exp(lp[:, ext_all] - shift[:, None])
    alpha = np.zeros(total)
    alpha[first] = probs[0, first]
    second = first[[len(e) > 1 for e in exts]] + 1
    alpha[second] = probs[0, second]
    log_scale = np.zeros(len(exts))
    for t in range(1, t_len):
        nxt = alpha.copy()
        nxt[1:] += alpha[:-1] * step1[1:]
        nxt[2:] += alpha[:-2] * step2[2:]
        alpha = nxt * probs[t]
        if t % 4 == 0 or t == t_len - 1:
            peak = np.maximum.reduceat(alpha, first)
            peak[peak == 0] = 1.0
            alpha /= peak[seg]
            log_scale += np.log(peak)
    last = first + np.asarray([len(e) for e in exts]) - 1
    end = alpha[last] + np.where(last > first, alpha[np.maximum(last - 1, 0)], 0.0)
    with np.errstate(divide="ignore"):
        return np.log(end) + log_scale + shift.sum()


def path_confidences(log_probs: np.ndarray, path: np.ndarray | list[int], blank: int) -> tuple[list[int], list[float]]:
    """Collapse a frame path (one label per frame) into label ids and per-label mean posteriors."""
    ids: list[int] = []
    confs: list[float] = []
    run: list[float] = []
    prev = blank
    for t, k in enumerate(path):
        if k != prev:
            if prev != blank and run:
                confs.append(float(np.exp(np.mean(run))))
            run = []
            if k != blank:
                ids.append(int(k))
        if k != blank:
            run.append(float(log_probs[t, k]))
        prev = k
    if prev != blank and run:
        confs.append(float(np.exp(np.mean(run))))
    return ids, confs


def viterbi_path(log_probs: np.ndarray, ids: list[int], blank: int) -> np.ndarray:
    """The most probable frame path (labels per frame) that collapses to ``ids``."""
    t_len = log_probs.shape[0]
    if not ids:  # only blanks (the recursion below needs at least one label)
        return np.full(t_len, blank, dtype=np.int64)
    ext = np.full(2 * len(ids) + 1, blank, dtype=np.int64)
    ext[1::2] = ids
    s_len = len(ext)
    emit = log_probs[:, ext].astype(np.float64)
    skip = np.zeros(s_len, dtype=bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    delta = np.full(s_len, -np.inf)
    delta[:2] = emit[0, :2]
    back = np.zeros((t_len, s_len), dtype=np.int8)
    for t in range(1, t_len):
        one = np.concatenate(([-np.inf], delta[:-1]))
        two = np.where(skip, np.concatenate(([-np.inf, -np.inf], delta[:-2])), -np.inf)
        cand = np.stack([delta, one, two])
        back[t] = cand.argmax(axis=0)
        delta = cand.max(axis=0) + emit[t]
    s = s_len - 1 if delta[-1] >= delta[-2] else s_len - 2  # end on the last blank or the last label
    path = np.empty(t_len, dtype=np.int64)
    for t in range(t_len - 1, -1, -1):
        path[t] = ext[s]
        s -= back[t, s]
    return path


class BeamDecoder:
    """CTC beam search over the model's ``labels``, optionally with an n-gram LM.

    The blank is the ``"<blank>"`` label (``labels[0]`` in htr's charsets, but any index works), else label 0.
    """

    def __init__(
        self,
        labels: list[str],
        backend: str = "flashlight",
        beam_size: int = 16,
        beam_threshold: float = DEFAULT_BEAM_THRESHOLD,
        lm: LMSpec | None = None,
        lm_weight: float = 0.5,
        word_insertion_penalty: float = 0.0,
        char_bonus: float = 0.0,
    ) -> None:
        if backend not in BACKENDS:
            raise HTRError(f"unknown decoder backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        if beam_size < 1:
            raise HTRError(f"beam_size must be at least 1, not {beam_size}")
        self.labels = list(labels)
        self.tokens = LabelTokens.from_labels(labels)
        self.lm = lm
        cls = FlashlightBackend if backend == "flashlight" else PyctcdecodeBackend
        self.backend = cls(self.tokens, beam_size, beam_threshold, lm, lm_weight, word_insertion_penalty, char_bonus)

    def decode(self, log_probs: np.ndarray) -> Hypothesis:
        """Decode one line's log-probabilities (T, C)."""
        lp = np.ascontiguousarray(log_probs, dtype=np.float32)
        if lp.ndim != 2 or lp.shape[1] != len(self.labels):
            raise ValueError(f"expected log-probs of shape (T, {len(self.labels)}), got {lp.shape}")
        t_len = lp.shape[0]
        if t_len == 0:
            return Hypothesis(text="", confidence=0.0, char_confidences=[])
        cands = self.backend.nbest(lp)
        if self.lm is None:
            greedy = greedy_path(lp, self.tokens.blank)[0]
            cands = cands[:_NBEST_RESCORED]
            if all(c[0] != greedy for c in cands):
                cands.append((greedy, None))
            if len(cands) > 1:
                ll = ctc_log_likelihood(lp, [c[0] for c in cands], self.tokens.blank)
                cands = [cands[int(np.argmax(ll))]]  # first of equals: the beam's own order wins ties
        ids, path = cands[0] if cands else ([], None)
        confs = None
        if path is not None:
            path_ids, confs = path_confidences(lp, path, self.tokens.blank)
            if path_ids != list(ids):  # the backend's alignment does not spell the text: realign
                confs = None
        if confs is None:
            path = viterbi_path(lp, ids, self.tokens.blank)
            confs = path_confidences(lp, path, self.tokens.blank)[1]
        return Hypothesis(text=self.tokens.text(ids), confidence=line_confidence(confs), char_confidences=confs)

    def decode_batch(self, batch: list[np.ndarray]) -> list[Hypothesis]:
        """Decode several lines, each (T_i, C)."""
        return [self.decode(lp) for lp in batch]


def resolve_config(cfg: DecodeConfig, apply_tuned: bool = True) -> tuple[DecodeConfig, LMSpec | None]:
    """The effective settings of ``cfg`` and its LM, after applying tuned values from ``lm_path.json``.

    Rule: a tuned value stored in ``PATH.json`` (``lm_weight``, ``word_insertion_penalty``, ``char_bonus``,
    ``beam_threshold``) is used where the config holds null (not given); a value given, the untuned default's
    value included, is kept. What neither gives is ``UNTUNED_DEFAULTS``. The stored ``backend`` replaces a default
    backend; when the config names another backend explicitly the tuned values (which belong to the stored
    backend) are not used. ``apply_tuned=False`` takes the config as it is (``htr.lm tune``, which sets every
    value).
    """
    # a plain copy: cfg may also be an OmegaConf structured config
    cfg = DecodeConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(DecodeConfig)})
    require_lm_path(cfg)
    if cfg.name == "beam" or cfg.lm_path is None:
        return _with_untuned_defaults(cfg), None
    lm_path = Path(cfg.lm_path)
    if not lm_path.is_file():
        raise HTRError("language model file does not exist", lm_path)
    meta = read_meta(lm_path)
    default = DecodeConfig()
    eff = dataclasses.replace(cfg)
    if apply_tuned and "backend" in meta and cfg.backend == default.backend:
        eff.backend = str(meta["backend"])
    if apply_tuned and meta.get("backend", eff.backend) == eff.backend:
        for key in TUNED_KEYS:
            if key != "backend" and key in meta and getattr(cfg, key) is None:
                setattr(eff, key, float(meta[key]))
    lexicon = _find_lexicon(cfg, lm_path, meta)
    unit = str(meta.get("unit") or ("word" if lexicon else "char"))
    if unit not in ("char", "word"):
        raise HTRError(f"unknown LM unit {unit!r} in {lm_path}.json")
    if unit == "word" and lexicon is None:
        raise HTRError(f"word LM without a lexicon: expected {lexicon_path(lm_path)} or decode.lexicon", lm_path)
    spec = LMSpec(path=str(lm_path), unit=unit, lexicon=str(lexicon) if unit == "word" else None)
    return _with_untuned_defaults(eff), spec


def describe(cfg: DecodeConfig) -> str:
    """One line of the settings a beam decoder for ``cfg`` runs with, tuned values applied: what was measured."""
    eff, lm = resolve_config(cfg)
    text = f"{eff.name} ({eff.backend}): beam {eff.beam_size}, threshold {eff.beam_threshold:g}"
    if lm is not None:
        text += (f", {lm.unit} LM {lm.path} at weight {eff.lm_weight:g}, word insertion penalty "
                 f"{eff.word_insertion_penalty:g}")  # fmt: skip
        if eff.char_bonus:
            text += f", char bonus {eff.char_bonus:g}"
    return text


def _with_untuned_defaults(cfg: DecodeConfig) -> DecodeConfig:
    """``cfg`` with each null tunable setting (neither given nor tuned) set to its ``UNTUNED_DEFAULTS`` value."""
    for key, value in UNTUNED_DEFAULTS.items():
        if getattr(cfg, key) is None:
            setattr(cfg, key, value)
    return cfg


def _find_lexicon(cfg: DecodeConfig, lm_path: Path, meta: dict) -> Path | None:
    if cfg.lexicon:
        p = Path(cfg.lexicon)
        if not p.is_file():
            raise HTRError("lexicon file does not exist", p)
        return p
    if meta.get("lexicon"):
        p = lm_path.parent / str(meta["lexicon"])
        if not p.is_file():
            raise HTRError(f"lexicon named in {lm_path}.json does not exist", p)
        return p
    p = lexicon_path(lm_path)
    return p if p.is_file() else None


def make_beam_decoder(cfg: DecodeConfig, labels: list[str], apply_tuned: bool = True) -> BeamDecoder:
    """A :class:`BeamDecoder` for ``cfg`` (``name`` beam or beam_lm); tuned values: :func:`resolve_config`."""
    if cfg.name not in ("beam", "beam_lm"):
        raise HTRError(f"unknown decoder {cfg.name!r}; expected greedy, beam or beam_lm")
    if cfg.name == "beam" and cfg.lm_path:
        log.info("decode.name=beam ignores decode.lm_path; use beam_lm to decode with the LM")
    eff, lm = resolve_config(cfg, apply_tuned)
    return BeamDecoder(
        labels,
        backend=eff.backend,
        beam_size=eff.beam_size,
        beam_threshold=eff.beam_threshold,
        lm=lm,
        lm_weight=eff.lm_weight,
        word_insertion_penalty=eff.word_insertion_penalty,
        char_bonus=eff.char_bonus,
    )
