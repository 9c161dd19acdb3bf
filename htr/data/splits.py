"""Writer-aware splits for ``python -m htr.data convert --split-by-writer``: whole groups (writers, else pages or
IAM forms) go to train, val or test, so no writer is in two splits."""

from __future__ import annotations

import random
from collections import Counter

from htr.errors import HTRError


def assign_splits(sizes: dict[str, int], val_fraction: float, test_fraction: float, seed: int = 0) -> dict[str, str]:
    """Map each group to ``train``, ``val`` or ``test`` so that about the given fractions of lines (``sizes``
    counts each group's lines) go to val and test, never splitting a group.

    Groups are shuffled with ``seed`` (from sorted order, so the result is deterministic) and each goes to the
    split furthest below its target number of lines. Each split with a positive fraction gets at least one
    group, and train always keeps one.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise HTRError(f"split fractions val={val_fraction}, test={test_fraction} must be >= 0 with a sum below 1")
    wanted = ["train"] + [name for name, f in (("val", val_fraction), ("test", test_fraction)) if f > 0]
    if len(sizes) < len(wanted):
        raise HTRError(f"only {len(sizes)} writer/page group(s), too few to fill the {', '.join(wanted)} splits")
    total = sum(sizes.values())
    target = {"val": val_fraction * total, "test": test_fraction * total}
    target["train"] = total - target["val"] - target["test"]
    groups = sorted(sizes)
    random.Random(seed).shuffle(groups)
    count = Counter({name: 0 for name in wanted})
    members: dict[str, list[str]] = {name: [] for name in wanted}
    for g in groups:
        name = max(wanted, key=lambda n: (target[n] - count[n], -wanted.index(n)))
        members[name].append(g)
        count[name] += sizes[g]
    for name in wanted[1:]:  # a requested split left empty takes train's smallest group
        if not members[name]:
            smallest = min(members["train"], key=lambda g: (sizes[g], g))
            members["train"].remove(smallest)
            members[name].append(smallest)
    return {g: name for name, gs in members.items() for g in gs}
