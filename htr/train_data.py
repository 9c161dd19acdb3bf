"""Training data: the train and validation splits as datasets (lines that cannot be learned left out and
reported), the charset, the batch sampler and the loaders. Used by :func:`htr.train_setup.setup_run`."""

from __future__ import annotations

import functools
import time
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from htr.charset import Charset
from htr.config import Config
from htr.data.augment import build_augmenter
from htr.data.dataset import BucketBatchSampler, LineDataset, build_dataset, collate, ctc_min_frames
from htr.data.lines import LineStore
from htr.data.sources import epoch_shares, load_split, load_train_split
from htr.errors import DataError
from htr.finetune import union_charset


def datasets(
    cfg: Config, charset: Charset | None, base: Charset | None, model_stride: int, rank: int, world: int, say: Any
) -> tuple:
    """Train and validation datasets and the charset: ``charset`` as given (resume), or ``base``'s characters plus
    the training texts' new ones (init_from), or the training texts' characters."""
    train_samples = load_train_split(cfg.data)
    val_samples = load_split(cfg.data, cfg.data.val_split, cfg.data.max_val_lines)
    if not train_samples:
        raise DataError(f"the training split {cfg.data.train_split!r} is empty", cfg.data.root)
    if not val_samples:
        raise DataError(f"the validation split {cfg.data.val_split!r} is empty", cfg.data.root)
    if charset is None:
        texts = (s.text for s in train_samples)
        charset = union_charset(base, texts) if base is not None else Charset.from_texts(texts)
    if world > 1 and rank != 0:
        dist.barrier()  # rank 0 fills the preprocessing cache first
    t0 = time.time()
    train_store = LineStore.build(train_samples, cfg.data.preprocess, cfg.data.cache_dir)
    val_store = LineStore.build(val_samples, cfg.data.preprocess, cfg.data.cache_dir)
    if world > 1 and rank == 0:
        dist.barrier()
    say(f"preprocessed {len(train_samples) + len(val_samples)} lines in {time.time() - t0:.1f} s")

    def fits(width: int, ids: list[int]) -> bool:
        return width // model_stride >= max(ctc_min_frames(ids), 1)

    train_ds, train_report = build_dataset(
        train_samples, train_store, charset, fits, augmenter=build_augmenter(cfg.data.augment), seed=cfg.train.seed
    )
    val_ds, val_report = build_dataset(val_samples, val_store, charset, fits)
    say(train_report.summary("train"))
    say(val_report.summary("val"))
    for name, rep in (("training", train_report), ("validation", val_report)):
        if rep.n_skipped > cfg.train.max_bad_fraction * rep.total or rep.n_skipped == rep.total:
            raise DataError(
                f"{rep.n_skipped} of {rep.total} {name} lines are unusable, more than "
                f"train.max_bad_fraction={cfg.train.max_bad_fraction} (reasons above); fix the data or raise it",
                cfg.data.root,
            )
    return charset, train_ds, val_ds, train_report, val_report


def loaders(
    cfg: Config, train_ds: LineDataset, val_ds: LineDataset, device: torch.device, rank: int, world: int, say: Any
) -> tuple[BucketBatchSampler, DataLoader, DataLoader]:
    """The training batch sampler (width buckets, source shares, DDP shard) and the two data loaders."""
    shares = epoch_shares(cfg.data, [smp.source for smp in train_ds.samples])
    sampler = BucketBatchSampler(
        train_ds.widths, cfg.data.batch_size, shuffle=True, seed=cfg.train.seed, rank=rank, world_size=world,
        bucketing=cfg.data.bucketing, shares=shares,
    )  # fmt: skip
    if shares is not None:
        say("training lines per epoch by source: " + ", ".join(
            f"{train_ds.samples[ix[0]].source or 'other'} {n} of {len(ix)}" for ix, n in shares
        ))  # fmt: skip
    multiple = cfg.data.pad_width_to or (64 if device.type == "cuda" else 1)
    batch_collate = functools.partial(collate, width_multiple=multiple)
    # Each DataLoader draws a worker seed from its generator whenever it starts an epoch; giving it its own
    # keeps that draw off the global torch RNG (dropout's), so a run resumed mid-epoch stays bit-identical.
    train_loader = DataLoader(
        train_ds, batch_sampler=sampler, collate_fn=batch_collate, num_workers=cfg.data.num_workers,
        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(cfg.train.seed),
    )  # fmt: skip
    val_sampler = BucketBatchSampler(val_ds.widths, cfg.data.batch_size, shuffle=False)
    val_loader = DataLoader(
        val_ds, batch_sampler=val_sampler, collate_fn=batch_collate, num_workers=cfg.data.num_workers,
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )  # fmt: skip
    return sampler, train_loader, val_loader
