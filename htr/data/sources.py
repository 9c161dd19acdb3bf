"""Turn ``cfg.data`` into samples: generate the synthetic demo data when asked, else read the dataset."""

from __future__ import annotations

from pathlib import Path

from htr.data.readers import read_dataset
from htr.data.samples import Sample


def dataset_path(data_cfg) -> Path:  # noqa: ANN001 - DataConfig, imported lazily to avoid a cycle
    """The dataset ``data.root`` names, generating the synthetic lines first when ``data.name=synthetic``."""
    root = Path(data_cfg.root).expanduser()
    if data_cfg.name == "synthetic":
        from htr.data.synthetic import generate_dataset

        s = data_cfg.synthetic
        return generate_dataset(root, s.n_train, s.n_val, s.n_test, seed=s.seed)
    return root


def load_split(data_cfg, split: str, max_lines: int | None = None) -> list[Sample]:  # noqa: ANN001
    """Samples of one split (the first ``max_lines`` when set)."""
    samples = read_dataset(dataset_path(data_cfg), split=split)
    return samples[:max_lines] if max_lines else samples
