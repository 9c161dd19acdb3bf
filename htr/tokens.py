"""The one mapping between the model's labels and the tokens of htr's n-gram language models.

Both the LM builder (:mod:`htr.lm`) and the beam-search decoders go through this module, so a model's label
space and an LM's vocabulary cannot drift apart.

Character LMs (``--unit char``): every character of a text line is one token, spelled as itself, except

* the space between words, which is the word-boundary token ``|`` (:data:`WORD_BOUNDARY`);
* characters that cannot be an ARPA token or would be ambiguous: other whitespace, the literal ``|`` and
  pyctcdecode's ``▁`` are spelled ``<U+XXXX>`` (their code point), e.g. ``|`` -> ``<U+007C>``.

Word LMs (``--unit word``): a word is a maximal run of non-space characters of the normalized line
(punctuation stays attached: ``"cat,"`` is one word). A word spelled like an ARPA special (``<s>``, ``</s>``,
``<unk>``) gets its ``<`` escaped as ``<U+003C>``. A word's spelling in the lexicon is its character tokens
followed by :data:`WORD_BOUNDARY`.

Label 0 is the CTC blank. Labels whose token the LM never saw keep their own token; the LM scores them as
``<unk>`` (KenLM's behaviour for any unknown string), and the decoders always output the label itself.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from htr.charset import BLANK, normalize_text

WORD_BOUNDARY = "|"
BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
RESERVED = (BOS, EOS, UNK)
_ESCAPED_CHARS = {WORD_BOUNDARY, "\u2581"}  # "▁" marks token starts in pyctcdecode's BPE mode


def _escape(c: str) -> str:
    return f"<U+{ord(c):04X}>"


def char_token(c: str) -> str:
    """LM token of one character: ``" "`` -> ``"|"``, unsafe characters -> ``<U+XXXX>``, others unchanged."""
    if c == " ":
        return WORD_BOUNDARY
    if c.isspace() or not c.isprintable() or c in _ESCAPED_CHARS:
        return _escape(c)
    return c


def token_char(token: str) -> str:
    """Inverse of :func:`char_token`."""
    if token == WORD_BOUNDARY:
        return " "
    if token.startswith("<U+") and token.endswith(">"):  # "<U+>" fails int() below
        try:
            return chr(int(token[3:-1], 16))
        except ValueError:
            return token
    return token


def char_tokens(text: str) -> list[str]:
    """Character-LM tokens of a text line (normalized first), without ``<s>``/``</s>``."""
    return [char_token(c) for c in normalize_text(text)]


def word_token(word: str) -> str:
    """Word-LM token of one word (non-empty, no spaces)."""
    return "<U+003C>" + word[1:] if word in RESERVED else word


def token_word(token: str) -> str:
    """Inverse of :func:`word_token`."""
    if token.startswith("<U+003C>") and "<" + token[8:] in RESERVED:
        return "<" + token[8:]
    return token


def word_tokens(text: str) -> list[str]:
    """Word-LM tokens of a text line (normalized first)."""
    return [word_token(w) for w in normalize_text(text).split(" ") if w]


def spelling(word: str) -> list[str]:
    """Lexicon spelling of a word: its character tokens, then the word boundary."""
    return [char_token(c) for c in token_word(word)] + [WORD_BOUNDARY]


@dataclass(frozen=True)
class LabelTokens:
    """The model's labels as LM tokens.

    ``tokens[i]`` is the LM token of label ``i`` (unique per label; the blank's is ``"<blank>"``, never
    scored). ``space`` is the label of ``" "`` (the word boundary) or ``None`` when the model has none.
    """

    labels: tuple[str, ...]
    tokens: tuple[str, ...]
    blank: int
    space: int | None

    @classmethod
    def from_labels(cls, labels: Sequence[str]) -> LabelTokens:
        """Map ``labels`` (``labels[0]`` is the blank, as in :class:`htr.charset.Charset`)."""
        if not labels:
            raise ValueError("no labels")
        blank = labels.index(BLANK) if BLANK in labels else 0
        tokens = []
        for i, lab in enumerate(labels):
            if i == blank:
                tokens.append(BLANK)
            elif len(lab) == 1:
                tokens.append(char_token(lab))
            else:  # a multi-character label: keep it whole, escaping whitespace inside
                tokens.append("".join(_escape(c) if c.isspace() else c for c in lab) or _escape(" "))
        if len(set(tokens)) != len(tokens):
            raise ValueError("labels map to duplicate LM tokens")
        space = labels.index(" ") if " " in labels else None
        return cls(tuple(labels), tuple(tokens), blank, space)

    def unseen(self, vocab: Container[str]) -> list[str]:
        """Labels (but the blank) whose LM token is not in ``vocab``: the LM scores them as ``<unk>``."""
        pairs = enumerate(zip(self.labels, self.tokens, strict=True))
        return [lab for i, (lab, tok) in pairs if i != self.blank and tok not in vocab]

    def text(self, ids: Iterable[int]) -> str:
        """Text of label ids (blanks skipped, no CTC collapsing)."""
        return "".join(self.labels[i] for i in ids if i != self.blank)

    def ids_of_tokens(self, tokens: Iterable[str]) -> list[int]:
        """Label ids of LM tokens (inverse of ``tokens``); unknown tokens raise ``KeyError``."""
        return [self._index[t] for t in tokens]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}
