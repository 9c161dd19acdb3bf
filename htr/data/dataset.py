"""Torch dataset of preprocessed lines, the padding collate, and a width-bucketing batch sampler."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from htr.charset import Charset
from htr.data.augment import item_seed
from htr.data.lines import LineStore
from htr.data.samples import Sample

if TYPE_CHECKING:
    from htr.data.augment import LineAugmenter


def ctc_min_frames(ids: Sequence[int]) -> int:
    """Fewest CTC frames that can emit ``ids``: one per label plus a blank between each repeated pair."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:], strict=False) if a == b)


@dataclass
class SkipReport:
    """Lines left out of a split, by reason, with their ids (nothing is dropped without a trace)."""

    total: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    unknown_chars: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, sample_id: str) -> None:
        """Record that ``sample_id`` was left out for ``reason``."""
        self.skipped.setdefault(reason, []).append(sample_id)

    @property
    def n_skipped(self) -> int:
        """Number of lines left out."""
        return sum(len(v) for v in self.skipped.values())

    def summary(self, name: str) -> str:
        """One line per reason, with the first few ids."""
        lines = [f"{name}: {self.total - self.n_skipped} of {self.total} lines used"]
        for reason, ids in sorted(self.skipped.items()):
            shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
            lines.append(f"  skipped {len(ids)} ({reason}): {shown}")
        if self.unknown_chars:
            chars = " ".join(f"{c!r}x{n}" for c, n in self.unknown_chars.most_common(10))
            lines.append(f"  characters not in the charset: {chars}")
        return "\n".join(lines)


class LineDataset(Dataset):
    """Preprocessed lines with their encoded transcriptions. Items are dicts with ``image`` (1, H, W) float,
    ``target`` (L,) int64, ``text`` and ``id``.

    With an ``augmenter`` (training only), item ``k`` of epoch ``e`` is augmented with a generator seeded from
    ``(seed, e, k)``: the same whatever the DataLoader workers (each gets a copy of the dataset, made when an
    epoch's iterator starts, so call :meth:`set_epoch` before iterating; not with ``persistent_workers``)
    and after resuming. ``widths`` stay those of the stored lines (augmentation may widen a line a little).
    """

    def __init__(
        self,
        store: LineStore,
        indices: list[int],
        samples: Sequence[Sample],
        charset: Charset,
        augmenter: LineAugmenter | None = None,
        seed: int = 0,
    ) -> None:
        self.store = store
        self.indices = indices
        self.samples = [samples[i] for i in indices]
        self.charset = charset
        self.targets = [charset.encode(s.text) for s in self.samples]
        self.widths = [store.width(i) for i in indices]
        self.augmenter = augmenter
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose augmentations :meth:`__getitem__` draws."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict:
        a = self.store[self.indices[k]]  # (H, W) uint8
        image = torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(0)  # (1, H, W)
        if self.augmenter is not None:
            image = self.augmenter(image, torch.Generator().manual_seed(item_seed(self.seed, self.epoch, k)))
        s = self.samples[k]
        return {"image": image, "target": torch.tensor(self.targets[k], dtype=torch.long), "text": s.text, "id": s.id}


def build_dataset(
    samples: Sequence[Sample],
    store: LineStore,
    charset: Charset,
    min_frames_ok: Callable[[int, list[int]], bool] | None = None,
    require_text: bool = True,
    augmenter: LineAugmenter | None = None,
    seed: int = 0,
) -> tuple[LineDataset, SkipReport]:
    """Keep the usable lines of ``samples``: readable images, non-empty texts, and (when ``min_frames_ok`` is
    given) transcriptions that fit in the line's output frames. Everything left out is in the report.
    ``augmenter`` and ``seed`` go to the :class:`LineDataset` (training lines only)."""
    report = SkipReport(total=len(samples))
    keep = []
    for i, s in enumerate(samples):
        if i in store.errors:
            report.skip(f"unusable image: {store.errors[i]}" if len(store.errors) < 4 else "unusable image", s.id)
            continue
        if require_text and not s.text.strip():
            report.skip("empty transcription", s.id)
            continue
        missing = charset.missing(s.text)
        report.unknown_chars.update(missing)
        ids = [charset.index[c] for c in s.text if c in charset.index]
        if min_frames_ok is not None and not min_frames_ok(store.width(i), ids):
            report.skip("transcription longer than the line's output frames", s.id)
            continue
        keep.append(i)
    return LineDataset(store, keep, samples, charset, augmenter, seed), report


def collate(batch: list[dict], width_multiple: int = 1) -> dict:
    """Pad images on the right with background 0 (to a multiple of ``width_multiple`` columns); return widths,
    concatenated targets and their lengths."""
    n, h = len(batch), batch[0]["image"].shape[1]
    widths = torch.tensor([b["image"].shape[2] for b in batch], dtype=torch.long)
    padded = -(-int(widths.max()) // width_multiple) * width_multiple
    images = torch.zeros(n, 1, h, padded)  # (N, 1, H, W)
    for i, b in enumerate(batch):
        images[i, :, :, : b["image"].shape[2]] = b["image"]
    targets = torch.cat([b["target"] for b in batch]) if n else torch.zeros(0, dtype=torch.long)
    return {
        "images": images,
        "widths": widths,
        "targets": targets,
        "target_lengths": torch.tensor([len(b["target"]) for b in batch], dtype=torch.long),
        "texts": [b["text"] for b in batch],
        "ids": [b["id"] for b in batch],
    }


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of lines of similar width, so little of each batch is padding.

    Lines are sorted by width (with a seeded random tie-break), cut into batches, and the batches are shuffled
    per epoch with ``seed + epoch``. Under DDP each rank takes every ``world_size``-th batch (the batch list is
    truncated to a multiple of the world size so ranks step together). ``start_batch`` skips batches already
    done in the epoch, for exact mid-epoch resumption.

    ``shares`` (from :func:`htr.data.sources.epoch_shares`) weights several sources: each epoch draws, per
    source, its count of line indices from an endless sequence of seeded permutations of that source's lines
    (so every line comes up before any comes up twice, and the draw depends only on seed and epoch).
    """

    def __init__(
        self,
        widths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        bucketing: bool = True,
        shares: list[tuple[list[int], int]] | None = None,
    ) -> None:
        self.widths = list(widths)
        self.shares = shares
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.bucketing = bucketing
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch's order (and how many of its batches to skip)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def batches(self) -> list[list[int]]:
        """All batches of this epoch for this rank, before skipping."""
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = list(range(len(self.widths))) if self.shares is None else self._weighted_draw()
        if self.shuffle:
            rng.shuffle(order)
        if self.bucketing:
            order.sort(key=lambda i: self.widths[i])  # stable: ties keep the shuffled order
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        if self.world_size > 1:
            usable = (len(batches) // self.world_size) * self.world_size
            batches = batches[:usable][self.rank :: self.world_size]
        return batches

    def _weighted_draw(self) -> list[int]:
        """This epoch's line indices under ``shares``."""
        out: list[int] = []
        for k, (indices, count) in enumerate(self.shares or []):
            start, n = self.epoch * count, len(indices)
            for cycle in range(start // n, (start + count - 1) // n + 1):
                perm = list(indices)
                random.Random(f"{self.seed}/{k}/{cycle}").shuffle(perm)
                lo, hi = max(start - cycle * n, 0), min(start + count - cycle * n, n)
                out += perm[lo:hi]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()[self.start_batch :]

    def __len__(self) -> int:
        lines = len(self.widths) if self.shares is None else sum(count for _, count in self.shares)
        n = math.ceil(lines / self.batch_size)
        if self.world_size > 1:
            n = n // self.world_size
        return max(n - self.start_batch, 0)


def padding_fraction(widths: Sequence[int], batches: list[list[int]]) -> float:
    """Fraction of the batches' pixels (per row) that is padding."""
    total = sum(max(widths[i] for i in b) * len(b) for b in batches if b)
    used = sum(widths[i] for b in batches for i in b)
    return 1.0 - used / max(total, 1)
