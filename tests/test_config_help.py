"""``python -m htr.train --help``: every config key documented once (the schema's docstrings), printed with its
type and composed default; groups listed; filtering by term; Hydra's own flags untouched."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from htr.config import Config
from htr.config_help import field_docs, main, schema_keys, sections

from .conftest import REPO


def test_every_schema_field_has_a_description():
    """Fails when someone adds a config field without an ``Attributes:`` entry (or leaves one for a field that
    is gone)."""
    undocumented, stale = [], []
    for prefix, cls in [("", Config), *sections()]:
        docs = field_docs(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        undocumented += [f"{prefix}{n} ({cls.__name__})" for n in sorted(names) if not docs.get(n, "").strip()]
        stale += [f"{prefix}{n} ({cls.__name__})" for n in sorted(set(docs) - names)]
    assert undocumented == [], f"config fields without a description in their class's Attributes: {undocumented}"
    assert stale == [], f"Attributes entries naming no field: {stale}"
    leaves = schema_keys()
    assert {"train.val_every_steps", "data.augment.p_affine", "data.sources[].weight"} <= {k.key for k in leaves}
    assert all(k.doc for k in leaves)


@dataclass
class _Inner:
    """Inner.

    Attributes:
        a, b: shared by two fields,
            continued here.
        documented: yes.

    Example:
        c: not an attribute (another section).
    """

    a: int = 1
    b: float | None = None
    documented: list[int] = field(default_factory=list)
    c: str = "x"


@dataclass
class _Outer:
    """Outer (no Attributes section)."""

    inner: _Inner = field(default_factory=_Inner)
    items: list[_Inner] = field(default_factory=list)
    flag: bool = True


def test_the_docstring_parser_and_the_schema_walk():
    assert field_docs(_Inner) == {"a": "shared by two fields, continued here.", "b": "shared by two fields, "
                                  "continued here.", "documented": "yes."}  # fmt: skip
    keys = {k.key: k for k in schema_keys(_Outer)}
    assert list(keys) == ["flag", "inner.a", "inner.b", "inner.documented", "inner.c", "items[].a", "items[].b",
                          "items[].documented", "items[].c"]  # fmt: skip
    assert (keys["inner.b"].type, keys["inner.documented"].type, keys["flag"].type) == ("float | null", "list[int]",
                                                                                        "bool")  # fmt: skip
    assert keys["flag"].doc == "" and keys["inner.c"].doc == ""  # what the test above catches
    assert keys["items[].a"].section == "items[]" and keys["items[].a"].schema_default == 1


def test_help_filters_by_term_and_shows_the_composed_defaults(capsys):
    assert main(["--help", "patience", "experiment=french_medium"]) == 0
    out = capsys.readouterr().out
    # experiment=french_medium sets early stopping to 40 epochs; optim=adamw keeps the schema's plateau patience
    assert "train.early_stopping_patience (int, 40): stop after" in out
    assert "optim.plateau_patience (int, 3): " in out
    assert "data.root" not in out and "usage:" not in out
    assert main(["--help", "augment"]) == 0
    out = capsys.readouterr().out
    assert "augment=light " in out and "augment=none* " in out and "data.augment.p_affine (float, 0.0): " in out


def test_help_errors_are_one_line(capsys):
    assert main(["--help", "nosuchkey"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "htr: no config key or group matches nosuchkey; try `python -m htr.train --help` for them all"
    ]
    assert main(["--help", "train.max_epoch=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'train.max_epochs'" in err[0]


def test_train_help_from_the_command_line():
    p = subprocess.run([sys.executable, "-m", "htr.train", "--help"], cwd=REPO, capture_output=True, text=True,
                       timeout=600)  # fmt: skip
    assert p.returncode == 0 and p.stderr == ""
    assert "  train.val_every_steps (int, 0): > 0: also validate every" in p.stdout
    assert "--cfg job" in p.stdout and "data=folder " in p.stdout and "Examples:" in p.stdout
    missing = [k.key for k in schema_keys() if f"  {k.key} (" not in p.stdout]
    assert missing == []


def test_only_help_is_taken_from_hydra(monkeypatch):
    import htr.train

    reached_hydra = []
    monkeypatch.setattr(htr.train, "_hydra_main", lambda: reached_hydra.append(list(sys.argv[1:])))
    for flags in (["--cfg", "job"], ["--info"], ["--hydra-help"], ["data=copiste", "--cfg", "job"]):
        monkeypatch.setattr(sys, "argv", ["htr.train", *flags])
        htr.train.main()
    assert reached_hydra == [["--cfg", "job"], ["--info"], ["--hydra-help"], ["data=copiste", "--cfg", "job"]]
    for flags in (["--help"], ["-h", "optim.lr"]):
        monkeypatch.setattr(sys, "argv", ["htr.train", *flags])
        with pytest.raises(SystemExit) as stop:
            htr.train.main()
        assert stop.value.code == 0
    assert len(reached_hydra) == 4


def test_the_examples_compose():
    from htr.config_help import EXAMPLES, composed_values

    commands = [line.split() for line in EXAMPLES.splitlines() if "python -m htr.train" in line]
    assert len(commands) >= 5
    for words in commands:
        overrides = [w for w in words if "=" in w and not w.startswith("hydra.")]
        assert "train" in composed_values(overrides), words  # it composes: no typo in a key or a group
