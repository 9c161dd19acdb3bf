"""Turn ``cfg.data`` into samples: generate the synthetic or MNIST-digit lines when asked, else read the dataset;
with ``data.sources``, read each source and tag its lines with the source's name."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from htr.data.formats import read_dataset
from htr.data.samples import Sample
from htr.errors import DataError, HTRError

GENERATORS = ("synthetic",)


#: What ``data.root`` must name, for the data groups whose root has no default (``root: ""`` in their YAML).
ROOT_NEEDED = {
    "folder": "FOLDER, the folder whose train/ and val/ sub-folders hold image + .gt.txt pairs",
    "iam": "FOLDER, the IAM folder with ascii/lines.txt (or lines.txt), lines/ and splits/",
}


def dataset_path(data_cfg) -> Path:  # noqa: ANN001 - DataConfig, imported lazily to avoid a cycle
    """The dataset ``data.root`` names, generating it first when ``data.name`` is ``synthetic`` or ``mnist_lines``.

    An empty root is refused here with what to set: the data groups without a sensible default (``data=folder``,
    ``data=iam``) leave it empty, since a ``???`` in a group's YAML would not override the schema's default root
    and the run would read the synthetic demo's folder instead.
    """
    if not str(data_cfg.root).strip():
        what = ROOT_NEEDED.get(data_cfg.name, "PATH, a lines.tsv, an IAM folder, a page folder or a folder of pairs")
        raise HTRError(f"data={data_cfg.name} needs data.root={what}")
    root = Path(data_cfg.root).expanduser()
    if data_cfg.name == "synthetic":
        return _synthetic(data_cfg, root)
    if data_cfg.name == "mnist_lines":
        from htr.data.mnist import generate_digit_lines

        m = data_cfg.mnist
        return generate_digit_lines(
            root, Path(m.dir).expanduser(), m.n_train, m.n_val, m.n_test, seed=m.seed, train_digits=m.train_digits
        )
    return root


def _synthetic(data_cfg, root: Path) -> Path:  # noqa: ANN001
    from htr.data.synthetic import generate_dataset

    s = data_cfg.synthetic
    return generate_dataset(root, s.n_train, s.n_val, s.n_test, seed=s.seed)


def source_path(data_cfg, source) -> Path:  # noqa: ANN001 - DataConfig, SourceConfig
    """The dataset one ``data.sources`` entry names, generated first for ``generate: synthetic``."""
    if source.generate is None:
        return Path(source.root).expanduser()
    if source.generate not in GENERATORS:
        raise HTRError(f"data.sources {source.name!r}: generate={source.generate!r} is not one of {GENERATORS}")
    return _synthetic(data_cfg, Path(source.root).expanduser())


def check_sources(data_cfg) -> None:  # noqa: ANN001
    """Refuse sources without a name or root, repeated names, and weights below 0 or all 0."""
    names = [s.name for s in data_cfg.sources]
    for s in data_cfg.sources:
        if not s.name or not s.root:
            raise HTRError(f"data.sources: every source needs a name and a root (got name={s.name!r}, root={s.root!r})")
        if (s.weight is not None and s.weight < 0) or s.val_weight < 0:
            raise HTRError(f"data.sources {s.name!r}: weight and val_weight must be >= 0")
    set_weights = [s.weight is not None for s in data_cfg.sources]
    if any(set_weights) and not all(set_weights):
        raise HTRError("data.sources: give every source a weight, or none (none: each line once per epoch)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise HTRError(f"data.sources: the name {repeated[0]!r} is used twice")
    if any(set_weights) and not any(s.weight for s in data_cfg.sources):
        raise HTRError("data.sources: the weights are all 0, so an epoch would draw no line")
    if data_cfg.sources and not any(s.val_weight > 0 for s in data_cfg.sources):
        raise HTRError("data.sources: at least one source needs val_weight > 0 (it picks the best checkpoint)")


def load_split(data_cfg, split: str, max_lines: int | None = None) -> list[Sample]:  # noqa: ANN001
    """Samples of one split (the first ``max_lines`` when set; per source with ``data.sources``)."""
    if not data_cfg.sources:
        samples = read_dataset(dataset_path(data_cfg), split=split)
        return samples[:max_lines] if max_lines else samples
    check_sources(data_cfg)
    out: list[Sample] = []
    seen: dict[str, str] = {}
    for src in data_cfg.sources:
        path = source_path(data_cfg, src)
        samples = read_dataset(path, split=split)
        for s in samples[:max_lines] if max_lines else samples:
            if s.id in seen:
                raise DataError(
                    f"line id {s.id!r} is in sources {seen[s.id]!r} and {src.name!r}; ids must differ", path
                )
            seen[s.id] = src.name
            out.append(dataclasses.replace(s, source=src.name))
    return out


def load_train_split(data_cfg) -> list[Sample]:  # noqa: ANN001
    """The training samples, with synthetic lines mixed in when ``data.synthetic_fraction`` > 0.

    The synthetic lines (rendered with handwriting fonts, ``data.synthetic`` seed) make up that fraction of the
    training set: ``n_synth = n_real * f / (1 - f)``. They are generated once under ``data.synthetic_mix_root``.
    (With ``data.sources``, a ``generate: synthetic`` source with a ``weight`` does this per source instead.)
    """
    samples = load_split(data_cfg, data_cfg.train_split, data_cfg.max_train_lines)
    f = data_cfg.synthetic_fraction
    if f <= 0 or data_cfg.name == "synthetic":
        return samples
    if f >= 1:
        raise HTRError(f"data.synthetic_fraction={f} must be below 1 (it is the synthetic share of the training set)")
    from htr.data.synthetic import generate_dataset

    n = round(len(samples) * f / (1 - f))
    root = Path(data_cfg.synthetic_mix_root).expanduser()
    tsv = generate_dataset(root, n, 0, 0, seed=data_cfg.synthetic.seed)
    return samples + read_dataset(tsv, split="train")


def epoch_shares(data_cfg, sources_of_lines: list[str | None]) -> list[tuple[list[int], int]] | None:  # noqa: ANN001
    """Per source with a ``weight``: (the indices of its lines in ``sources_of_lines``, lines per epoch).

    None when the sources set no weights (every line once per epoch). An epoch keeps the total line count;
    each source gets ``total * weight / sum of weights`` lines, rounded so that the counts add up; lines of
    no source (the synthetic lines of ``data.synthetic_fraction``) keep their own count, taken off the total
    first.
    """
    if not data_cfg.sources or all(s.weight is None for s in data_cfg.sources):
        return None
    by_source: dict[str | None, list[int]] = {}
    for i, name in enumerate(sources_of_lines):
        by_source.setdefault(name, []).append(i)
    weights = {s.name: float(s.weight or 0.0) for s in data_cfg.sources if by_source.get(s.name)}
    untagged = [(ix, len(ix)) for name, ix in by_source.items() if name not in weights]
    total = len(sources_of_lines) - sum(n for _, n in untagged)
    norm = sum(weights.values()) or 1.0
    exact = {name: total * w / norm for name, w in weights.items()}
    counts = {name: math.floor(x) for name, x in exact.items()}
    # Largest remainders first, so the counts add up to the total exactly.
    for name in sorted(exact, key=lambda n: counts[n] - exact[n])[: total - sum(counts.values())]:
        counts[name] += 1
    return [(by_source[name], counts[name]) for name in weights] + untagged
