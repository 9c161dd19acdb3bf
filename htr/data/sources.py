"""Turn ``cfg.data`` into samples: generate the synthetic or MNIST-digit lines when asked, else read the dataset."""

from __future__ import annotations

from pathlib import Path

from htr.data.readers import read_dataset
from htr.data.samples import Sample


def dataset_path(data_cfg) -> Path:  # noqa: ANN001 - DataConfig, imported lazily to avoid a cycle
    """The dataset ``data.root`` names, generating it first when ``data.name`` is ``synthetic`` or ``mnist_lines``."""
    root = Path(data_cfg.root).expanduser()
    if data_cfg.name == "synthetic":
        from htr.data.synthetic import generate_dataset

        s = data_cfg.synthetic
        return generate_dataset(root, s.n_train, s.n_val, s.n_test, seed=s.seed)
    if data_cfg.name == "mnist_lines":
        from htr.data.mnist import generate_digit_lines

        m = data_cfg.mnist
        return generate_digit_lines(
            root, Path(m.dir).expanduser(), m.n_train, m.n_val, m.n_test, seed=m.seed, train_digits=m.train_digits
        )
    return root


def load_split(data_cfg, split: str, max_lines: int | None = None) -> list[Sample]:  # noqa: ANN001
    """Samples of one split (the first ``max_lines`` when set)."""
    samples = read_dataset(dataset_path(data_cfg), split=split)
    return samples[:max_lines] if max_lines else samples


def load_train_split(data_cfg) -> list[Sample]:  # noqa: ANN001
    """The training samples, with synthetic lines mixed in when ``data.synthetic_fraction`` > 0.

    The synthetic lines (rendered with handwriting fonts, ``data.synthetic`` seed) make up that fraction of the
    training set: ``n_synth = n_real * f / (1 - f)``. They are generated once under ``data.synthetic_mix_root``.
    """
    samples = load_split(data_cfg, data_cfg.train_split, data_cfg.max_train_lines)
    f = data_cfg.synthetic_fraction
    if f <= 0 or data_cfg.name == "synthetic":
        return samples
    if f >= 1:
        from htr.errors import HTRError

        raise HTRError(f"data.synthetic_fraction={f} must be below 1 (it is the synthetic share of the training set)")
    from htr.data.synthetic import generate_dataset

    n = round(len(samples) * f / (1 - f))
    root = Path(data_cfg.synthetic_mix_root).expanduser()
    tsv = generate_dataset(root, n, 0, 0, seed=data_cfg.synthetic.seed)
    return samples + read_dataset(tsv, split="train")
