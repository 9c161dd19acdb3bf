"""Start training from a trained model's weights (``train.init_from``), e.g. the shipped default model.

Unlike ``train.resume`` (which continues one run exactly, optimizer and RNG included), ``init_from`` only takes
the weights, the architecture and the preprocessing settings of a checkpoint; the data, optimizer, schedule and
budget are the new run's. The charset becomes the checkpoint's characters followed by any new ones found in the
new training texts (kraken's ``--resize union``): the output rows of known characters keep their trained weights,
new characters start from the fresh model's random rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from htr.bundle import ModelBundle
from htr.charset import Charset
from htr.errors import CheckpointError
from htr.model import CRNN

OUTPUT_LAYER = ("linear.weight", "linear.bias")


def union_charset(trained: Charset, texts: Iterable[str]) -> Charset:
    """``trained``'s characters in their order, then the characters of ``texts`` it lacks (sorted)."""
    new: set[str] = set()
    for t in texts:
        new.update(c for c in t if c not in trained.index)
    return Charset([*trained.chars, *sorted(new)])


def load_pretrained(model: CRNN, checkpoint: dict[str, Any], charset: Charset, path: str) -> int:
    """Copy ``checkpoint``'s weights into ``model`` (built for ``charset``); return the number of new labels.

    Every weight but the output layer must match in name and shape; output rows are copied label by label
    (blank and each character the checkpoint knows), so characters keep their ids' meaning whatever the order.
    """
    state = checkpoint["model"]
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise CheckpointError(f"its weights do not fit the model (missing {missing[:3]}, unexpected {extra[:3]})", path)
    old_index = {c: i + 1 for i, c in enumerate(ModelBundle.charset_of(checkpoint, path).chars)}
    rows = [0] + [old_index.get(c, -1) for c in charset.chars]  # checkpoint row of each new label, -1 = new
    keep = torch.tensor([i for i, r in enumerate(rows) if r >= 0])
    src = torch.tensor([r for r in rows if r >= 0])
    with torch.no_grad():
        for name, tensor in own.items():
            value = state[name]
            if name in OUTPUT_LAYER:
                tensor[keep] = value[src].to(tensor.dtype)
            elif value.shape != tensor.shape:
                raise CheckpointError(
                    f"its weight {name} has shape {tuple(value.shape)}, not {tuple(tensor.shape)}", path
                )
            else:
                tensor.copy_(value)
    return len(rows) - len(keep)
