"""Preprocess every line once and keep the results as uint8 arrays, cached on disk.

Epochs after the first (and later runs with the same data and settings) do no image decoding, deskewing or
deslanting: the normalized lines sit in one memory-mapped ``(H, total_width)`` uint8 array keyed by a hash of
the preprocessing settings, the pipeline's version and the image files' paths, sizes and modification times.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from htr.data.samples import Sample
from htr.errors import HTRError
from htr.imageio import load_image
from htr.preprocess.pipeline import PIPELINE_VERSION, PreprocessConfig, preprocess_line
from htr.progress import progress

#: Narrower lines (a tall sliver of an image) are padded on the right with background to this width, so the
#: model's pooling (up to 8 columns per output frame) never meets an empty input.
MIN_WIDTH = 16


def preprocess_file(path: Path, cfg: PreprocessConfig) -> np.ndarray:
    """Load and preprocess one line image into a uint8 array (height, W >= MIN_WIDTH), ink high, background 0."""
    return preprocess_image(load_image(path), cfg)


def preprocess_image(img: Image.Image | np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Preprocess one line image (e.g. a crop of a page) like :func:`preprocess_file`."""
    a = preprocess_line(img, cfg)
    a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    if a.shape[1] < MIN_WIDTH:
        a = np.pad(a, ((0, 0), (0, MIN_WIDTH - a.shape[1])))
    return a


def _work(args: tuple[str, PreprocessConfig]) -> np.ndarray | str:
    path, cfg = args
    try:
        return preprocess_file(Path(path), cfg)
    except HTRError as e:
        return str(e)


def _usable_cpus() -> int:
    """The CPUs this process may run on (a container or ``taskset`` may allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cache_key(samples: Sequence[Sample], cfg: PreprocessConfig) -> str:
    settings = {**dataclasses.asdict(cfg), "pipeline_version": PIPELINE_VERSION}
    h = hashlib.sha1(json.dumps(settings, sort_keys=True).encode())
    for s in samples:
        try:
            st = os.stat(s.image)
            h.update(f"{s.image}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{s.image}\0missing\n".encode())
    return h.hexdigest()[:20]


class LineStore:
    """Preprocessed line images by index; ``errors`` maps the index of each unusable image to why."""

    def __init__(self, pixels: np.ndarray, offsets: np.ndarray, errors: dict[int, str]) -> None:
        self.pixels = pixels  # (H, total_width) uint8
        self.offsets = offsets  # (n + 1,) column offsets
        self.errors = errors

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def width(self, i: int) -> int:
        """Width of line ``i`` (0 for a line that failed)."""
        return int(self.offsets[i + 1] - self.offsets[i])

    def __getitem__(self, i: int) -> np.ndarray:
        return np.asarray(self.pixels[:, self.offsets[i] : self.offsets[i + 1]])

    @classmethod
    def build(
        cls,
        samples: Sequence[Sample],
        cfg: PreprocessConfig,
        cache_dir: str | Path | None = None,
        workers: int | None = None,
    ) -> LineStore:
        """Preprocess ``samples`` (in parallel when there are many), reusing the disk cache when it matches.

        ``workers``: processes for the first preprocessing (default: the usable CPUs, at most 8); the lines come
        back in order, so the result is the same as in one process.
        """
        key = _cache_key(samples, cfg)
        if cache_dir is not None:
            base = Path(cache_dir) / f"lines-{key}"
            if base.with_suffix(".json").exists() and base.with_suffix(".npy").exists():
                try:
                    meta = json.loads(base.with_suffix(".json").read_text())
                    pixels = np.load(base.with_suffix(".npy"), mmap_mode="r")
                    errors = {int(k): v for k, v in meta["errors"].items()}
                    offsets = np.asarray(meta["offsets"], dtype=np.int64)
                    if len(offsets) == len(samples) + 1 and pixels.shape == (cfg.height, offsets[-1]):
                        return cls(pixels, offsets, errors)
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    pass  # a damaged cache entry is rebuilt (and rewritten) below
        jobs = [(str(s.image), cfg) for s in samples]
        workers = workers if workers is not None else min(_usable_cpus(), 8)
        # A bar (lines/s) for the minute or so a large dataset's first preprocessing takes; only on a terminal.
        bar = {"total": len(jobs), "desc": "preprocessing lines", "unit": "line", "leave": False,
               "disable": len(jobs) < 256 or not sys.stderr.isatty()}  # fmt: skip
        if workers > 1 and len(jobs) >= 64:
            with ProcessPoolExecutor(workers) as pool:
                results = list(progress(pool.map(_work, jobs, chunksize=16), **bar))
        else:
            results = [_work(j) for j in progress(jobs, **bar)]
        arrays, errors = [], {}
        for i, r in enumerate(results):
            if isinstance(r, str):
                errors[i] = r
                arrays.append(np.zeros((cfg.height, 0), np.uint8))
            else:
                arrays.append(r)
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum([a.shape[1] for a in arrays], out=offsets[1:])
        pixels = np.concatenate(arrays, axis=1) if arrays else np.zeros((cfg.height, 0), np.uint8)
        if cache_dir is not None:
            try:
                _write_cache(Path(cache_dir) / f"lines-{key}", pixels, offsets, errors)
            except OSError as e:  # a full disk or a read-only folder costs the cache, not the run
                print(
                    f"htr: warning: {cache_dir}: could not write the preprocessing cache ({e.strerror or e}); "
                    "continuing without it",
                    file=sys.stderr,
                )
        return cls(pixels, offsets, errors)


def _write_cache(base: Path, pixels: np.ndarray, offsets: np.ndarray, errors: dict[int, str]) -> None:
    """Write the cache atomically: temporary files first, then rename (the .json last, it marks completeness)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    tmp_npy = base.with_name(f".{base.name}.tmp{os.getpid()}.npy")
    tmp_json = base.with_name(f".{base.name}.tmp{os.getpid()}.json")
    try:
        with open(tmp_npy, "wb") as f:
            np.save(f, pixels)
        os.replace(tmp_npy, base.with_suffix(".npy"))
        meta = {"offsets": offsets.tolist(), "errors": {str(k): v for k, v in errors.items()}}
        tmp_json.write_text(json.dumps(meta))
        os.replace(tmp_json, base.with_suffix(".json"))
    finally:
        for leftover in (tmp_npy, tmp_json):
            leftover.unlink(missing_ok=True)
