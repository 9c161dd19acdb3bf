"""Greedy (best-path) CTC decoding."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Hypothesis:
    """A decoded line.

    ``confidence`` is the line's score in [0, 1]: the mean of ``char_confidences`` (:func:`line_confidence`),
    0 for an empty text. ``char_confidences`` has one value per character of ``text``: the geometric mean
    posterior of the frames that emitted it.
    """

    text: str
    confidence: float
    char_confidences: list[float] = field(default_factory=list)


def line_confidence(char_confidences: list[float]) -> float:
    """A line's confidence: the mean of its characters' confidences, 0 when nothing was read.

    Why not the best path's per-frame probability: a line read as blanks only (an empty text) would then score
    high, since blank frames are confident; an empty or near-empty reading must not look like a sure one."""
    return float(np.mean(char_confidences)) if char_confidences else 0.0


def greedy_path(log_probs: np.ndarray, blank: int = 0) -> tuple[list[int], list[float]]:
    """Collapse the best path of ``log_probs`` (T, C) into label ids (repeats merged, ``blank`` dropped).

    ``blank`` is 0 for htr's models (:class:`htr.charset.Charset`); the beam decoder passes the blank of its
    labels (:class:`htr.tokens.LabelTokens`), which may be elsewhere. Returns the ids and, for each, the mean
    posterior probability of the frames that emitted it.
    """
    best = log_probs.argmax(axis=1)  # (T,)
    best_lp = log_probs[np.arange(len(best)), best]  # (T,)
    ids: list[int] = []
    confs: list[float] = []
    prev = blank
    run: list[float] = []
    for t, k in enumerate(best.tolist()):
        if k != prev:
            if prev != blank and run:
                confs.append(float(np.exp(np.mean(run))))
            run = []
            if k != blank:
                ids.append(k)
        if k != blank:
            run.append(float(best_lp[t]))
        prev = k
    if prev != blank and run:
        confs.append(float(np.exp(np.mean(run))))
    return ids, confs


class GreedyDecoder:
    """Best-path decoding: the most probable label per frame, repeats merged, blanks removed."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels

    def decode(self, log_probs: np.ndarray) -> Hypothesis:
        """Decode one line's log-probabilities (T, C)."""
        ids, confs = greedy_path(log_probs)
        text = "".join(self.labels[i] for i in ids)
        return Hypothesis(text=text, confidence=line_confidence(confs), char_confidences=confs)

    def decode_batch(self, batch: list[np.ndarray]) -> list[Hypothesis]:
        """Decode several lines, each (T_i, C)."""
        return [self.decode(lp) for lp in batch]
