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
