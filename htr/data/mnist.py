"""Lines of handwritten digits built from MNIST, to compare encoders on real handwriting cheaply.

Only the MNIST *test* set is available here (``t10k-*``, 10,000 digits, see ``../shared/data/mnist``); its
digits are split by index into three disjoint pools:

=========  ============  ==========================================================
split      MNIST index   lines
=========  ============  ==========================================================
``train``  0 - 7,999     1-10 digits (``train_digits``: only the first N of the pool)
``val``    8,000 - 8,999 1-10 digits
``test``   9,000 - 9,999 1-10 digits
``digits`` 9,000 - 9,999 each test digit alone, in index order (single-digit accuracy)
=========  ============  ==========================================================

(The first 5,000 MNIST test digits come from NIST SD-3 and are cleaner than the last 5,000, from SD-1: ``val``,
``test`` and ``digits`` are from the harder half, and ``train_digits=1000`` uses easy digits only.)

A line is its digits side by side, separated by random gaps of 0-12 px and each moved up or down by up to
3 px, with a 4 px margin left and right: 34 px high (28 + 2 x 3), dark digits on light paper (255 - MNIST), so
the usual preprocessing applies. Its text is the digit string without spaces.

Command line::

    python -m htr.data.mnist OUT_DIR [--mnist DIR] --train 4000 --val 500 --test 1000 --seed 0 [--train-digits N]

writes ``OUT_DIR/lines/*.png``, ``OUT_DIR/lines.tsv`` (columns ``id image text writer split``, writer empty) and
``OUT_DIR/params.json``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from htr.data.atomic_dir import replace_dir_atomically
from htr.errors import DataError, HTRError

#: Bumped whenever a change to this module changes the images or texts it makes (invalidates reuse).
GENERATOR_VERSION = 1

IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"
#: MNIST index ranges [start, stop) of each split's digit pool.
SPLITS: dict[str, tuple[int, int]] = {"train": (0, 8000), "val": (8000, 9000), "test": (9000, 10000)}
#: The split of single-digit lines: every digit of the test pool alone.
DIGITS_SPLIT = "digits"
MIN_DIGITS, MAX_DIGITS = 1, 10
MAX_GAP = 12  # px between two digits' 28 px frames (MNIST digits already have about 4 px of blank each side)
JITTER = 3  # px up or down
MARGIN = 4  # px left and right of the line
TSV_HEADER = ("id", "image", "text", "writer", "split")

# idx type codes (third byte of the magic number) -> numpy big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# ------------------------------------------------------------------------------------------------- reading


def read_idx(path: str | Path, expected_magic: int | None = None) -> np.ndarray:
    """Read an idx file (gzip-compressed when its name ends in ``.gz``) into an array of its shape.

    The header is a big-endian magic number ``0x0000TTDD`` (T: element type, D: number of dimensions), then one
    big-endian uint32 per dimension, then the data. ``expected_magic`` (e.g. 2051 for MNIST images, 2049 for
    labels) is checked when given. Raises :class:`DataError` for a missing, unreadable or malformed file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except OSError as e:  # gzip.BadGzipFile is an OSError too
        why = e.strerror or str(e)
        raise DataError(f"cannot read idx file ({why})", path) from e
    except EOFError as e:
        raise DataError("idx file is truncated (compressed stream ends early)", path) from e
    if len(raw) < 4:
        raise DataError(f"not an idx file: {len(raw)} bytes, too short for the header", path)
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DataError(f"not the expected idx file: magic number 0x{magic:08x}, expected 0x{expected_magic:08x}", path)
    zero, code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"not an idx file: bad magic number 0x{magic:08x}", path)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"idx file is truncated: header needs {header} bytes, file has {len(raw)}", path)
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != size:
        raise DataError(
            f"idx file size does not match its header: shape {shape} needs {size} bytes of data, "
            f"found {len(raw) - header}",
            path,
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(mnist_dir: Path, name: str) -> Path:
    """``mnist_dir/name``, or the same file uncompressed (``name`` without ``.gz``)."""
    for p in (mnist_dir / name, mnist_dir / name.removesuffix(".gz")):
        if p.is_file():
            return p
    raise DataError(f"MNIST file {name} not found (nor uncompressed)", mnist_dir)


def load_mnist(mnist_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images ``(N, 28, 28)`` uint8 (ink high, background 0) and labels ``(N,)`` uint8 from ``mnist_dir``
    (``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``)."""
    mnist_dir = Path(mnist_dir)
    if not mnist_dir.is_dir():
        raise DataError("MNIST folder not found", mnist_dir)
    images = read_idx(_find(mnist_dir, IMAGES_FILE), expected_magic=2051)
    labels = read_idx(_find(mnist_dir, LABELS_FILE), expected_magic=2049)
    if images.ndim != 3 or labels.ndim != 1 or images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DataError(
            f"unexpected MNIST arrays: images {images.shape} {images.dtype}, labels {labels.shape} {labels.dtype}",
            mnist_dir,
        )
    if len(images) != len(labels):
        raise DataError(f"{len(images)} MNIST images but {len(labels)} labels", mnist_dir)
    if labels.size and labels.max() > 9:
        raise DataError(f"MNIST labels must be digits 0-9, found {int(labels.max())}", mnist_dir)
    return images, labels


def digit_pools(n_digits: int, train_digits: int | None = None) -> dict[str, np.ndarray]:
    """MNIST indices of each split's digits (see :data:`SPLITS`); ``train`` limited to its first ``train_digits``."""
    stop = SPLITS["test"][1]
    if n_digits < stop:
        raise DataError(f"MNIST has {n_digits} digits; the splits need {stop}")
    pools = {split: np.arange(a, b) for split, (a, b) in SPLITS.items()}
    if train_digits is not None:
        if not 1 <= train_digits <= len(pools["train"]):
            raise HTRError(f"train_digits must be between 1 and {len(pools['train'])}, got {train_digits}")
        pools["train"] = pools["train"][:train_digits]
    pools[DIGITS_SPLIT] = pools["test"]
    return pools


# -------------------------------------------------------------------------------------------------- lines


def compose_line(
    digits: list[np.ndarray], gaps: list[int], shifts: list[int], margin: int = MARGIN, jitter: int = JITTER
) -> np.ndarray:
    """Dark-on-light uint8 line image of ``digits`` (ink-high 28x28 arrays) with ``gaps[i]`` blank columns after
    digit ``i`` (one fewer than the digits) and digit ``i`` moved down by ``shifts[i]`` (within ``+-jitter``)."""
    if len(gaps) != len(digits) - 1 or len(shifts) != len(digits):
        raise ValueError("compose_line needs one gap between two digits and one shift per digit")
    h, w = digits[0].shape
    width = 2 * margin + len(digits) * w + sum(gaps)
    ink = np.zeros((h + 2 * jitter, width), dtype=np.uint8)
    x = margin
    for i, d in enumerate(digits):
        y = jitter + shifts[i]
        ink[y : y + h, x : x + w] = np.maximum(ink[y : y + h, x : x + w], d)
        x += w + (gaps[i] if i < len(gaps) else 0)
    return 255 - ink


def draw_line(rng: random.Random, pool: np.ndarray) -> tuple[list[int], list[int], list[int]]:
    """MNIST indices (1-10, drawn with replacement from ``pool``), gaps and vertical shifts of one random line."""
    n = rng.randint(MIN_DIGITS, MAX_DIGITS)
    idx = [int(pool[rng.randrange(len(pool))]) for _ in range(n)]
    gaps = [rng.randint(0, MAX_GAP) for _ in range(n - 1)]
    shifts = [rng.randint(-JITTER, JITTER) for _ in range(n)]
    return idx, gaps, shifts


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _params(mnist_dir: Path, counts: dict[str, int], seed: int, train_digits: int | None) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "counts": counts,
        "seed": seed,
        "train_digits": train_digits,
        "splits": {k: list(v) for k, v in SPLITS.items()},
        "images_sha256": _sha256_file(_find(mnist_dir, IMAGES_FILE)),
        "labels_sha256": _sha256_file(_find(mnist_dir, LABELS_FILE)),
    }


def _is_complete(out_dir: Path, params: dict) -> bool:
    try:
        stored = json.loads((out_dir / "params.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stored == params and (out_dir / "lines.tsv").is_file()


def generate_digit_lines(
    out_dir: str | Path,
    mnist_dir: str | Path,
    n_train_lines: int,
    n_val_lines: int,
    n_test_lines: int,
    seed: int = 0,
    train_digits: int | None = None,
) -> Path:
    """Write MNIST digit lines to ``out_dir`` and return the path of its ``lines.tsv``.

    Splits ``train``, ``val`` and ``test`` hold the given numbers of random lines of 1-10 digits, each line's
    digits drawn from its split's pool only (see the module docstring); split ``digits`` holds every test digit
    alone. Output is a pure function of the parameters and the MNIST files: the same seed gives byte-identical
    files, and a folder already holding a dataset made with the same parameters (``params.json``) is reused as is.
    The dataset is built in a temporary sibling folder and renamed into place.

    Args:
        out_dir: folder to create (or reuse); if it exists it must be empty or a previous dataset.
        mnist_dir: folder with ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``.
        n_train_lines, n_val_lines, n_test_lines: number of lines per split.
        seed: random seed.
        train_digits: use only the first N digits of the training pool (None: all 8,000).
    """
    out_dir, mnist_dir = Path(out_dir), Path(mnist_dir)
    counts = {"train": n_train_lines, "val": n_val_lines, "test": n_test_lines}
    for split, n in counts.items():
        if n < 0:
            raise HTRError(f"number of {split} lines must be >= 0, got {n}")
    images, labels = load_mnist(mnist_dir)
    pools = digit_pools(len(images), train_digits)
    params = _params(mnist_dir, counts, seed, train_digits)
    tsv = out_dir / "lines.tsv"
    if _is_complete(out_dir, params):
        return tsv
    if out_dir.exists() and (
        not out_dir.is_dir() or not {p.name for p in out_dir.iterdir()} <= {"lines", "lines.tsv", "params.json"}
    ):
        raise HTRError("is not empty and is not an MNIST lines dataset; choose another output folder", out_dir)
    replace_dir_atomically(
        out_dir,
        lambda tmp: _write_dataset(tmp, images, labels, pools, counts, seed, params),
        lambda: _is_complete(out_dir, params),
    )
    return tsv


def _write_dataset(
    root: Path,
    images: np.ndarray,
    labels: np.ndarray,
    pools: dict[str, np.ndarray],
    counts: dict[str, int],
    seed: int,
    params: dict,
) -> None:
    (root / "lines").mkdir()
    rows: list[tuple[str, str, str, str, str]] = []

    def write(split: str, i: int, idx: list[int], gaps: list[int], shifts: list[int]) -> None:
        line_id = f"{split}-{i:06d}"
        rel = f"lines/{line_id}.png"
        buf = io.BytesIO()
        Image.fromarray(compose_line([images[k] for k in idx], gaps, shifts)).save(buf, format="PNG")
        (root / rel).write_bytes(buf.getvalue())
        rows.append((line_id, rel, "".join(str(int(labels[k])) for k in idx), "", split))

    for split, n in counts.items():
        for i in range(n):
            # One rng per line, seeded by a string (hashed with SHA-512, independent of PYTHONHASHSEED).
            write(split, i, *draw_line(random.Random(f"htr-mnist:{seed}:{split}:{i}"), pools[split]))
    for i, k in enumerate(pools[DIGITS_SPLIT].tolist()):
        write(DIGITS_SPLIT, i, [k], [], [0])
    with open(root / "lines.tsv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(TSV_HEADER)
        writer.writerows(rows)
    (root / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m htr.data.mnist OUT_DIR [--mnist DIR] --train N --val N --test N --seed S [--train-digits N]``."""
    ap = argparse.ArgumentParser(prog="python -m htr.data.mnist", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, help="output folder (created; reused if already generated)")
    ap.add_argument("--mnist", type=Path, default=Path("../shared/data/mnist"), help="folder of the MNIST idx files")
    ap.add_argument("--train", type=int, default=4000, help="number of training lines (default 4000)")
    ap.add_argument("--val", type=int, default=500, help="number of validation lines (default 500)")
    ap.add_argument("--test", type=int, default=1000, help="number of test lines (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--train-digits", type=int, default=None, help="use only the first N training digits")
    args = ap.parse_args(argv)
    try:
        tsv = generate_digit_lines(
            args.out_dir, args.mnist, args.train, args.val, args.test, args.seed, args.train_digits
        )
    except HTRError as e:
        print(f"htr: {e}", file=sys.stderr)
        return 2
    print(tsv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
