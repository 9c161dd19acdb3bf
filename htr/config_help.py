"""``python -m htr.train --help``: every config key with its type, default and meaning, and the config groups.

One source of truth: the descriptions are the ``Attributes:`` sections of the schema's dataclass docstrings
(:mod:`htr.config` and the sections it nests), read here at run time; the types come from the dataclass
fields, the defaults from composing ``conf/config.yaml`` as a run would (so ``optim.lr`` shows the ``adam``
preset's value, not the dataclass's), and the groups and their one-line descriptions from ``conf/*/*.yaml``.
Hand-written rather than through a docstring library: the format is ours (one entry may name several fields,
``scale_min, scale_max: ...``), the parser is a dozen lines, and ``--help`` should not need another dependency.

``--help TERM ...`` keeps the keys (and groups) that match a term at a word start (``--help augment``,
``--help patience``); ``KEY=VALUE`` and ``GROUP=OPTION`` arguments show the defaults that config would have.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import shutil
import sys
import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from htr.config import Config

CONF = Path(__file__).parent / "conf"
#: One field's entry in an ``Attributes:`` section: ``name: text`` or ``name_a, name_b: text``.
_ENTRY = re.compile(r"^    (\w+(?:, \w+)*):(?: (.*))?$")

USAGE = """\
usage: python -m htr.train [GROUP=OPTION ...] [KEY=VALUE ...]      train (Hydra overrides, below)
       python -m htr.train --help [TERM ...] [overrides]            this help; TERM keeps matching keys only
       python -m htr.train [overrides] --cfg job                    print the resolved config as YAML, run nothing
       python -m htr.train --info | --hydra-help                    Hydra's own information and options

Trains a CNN-BiLSTM-CTC text-line recognizer; checkpoints (best.pt, last.pt), train.log and TensorBoard events
go to the run folder (hydra.run.dir, by default runs/DATE_TIME)."""

EXAMPLES = """\
Examples:
  python -m htr.train hydra.run.dir=runs/demo                          the demo: synthetic lines, 2,000 steps
  python -m htr.train data=copiste data.root=../shared/data/copiste    a lines.tsv dataset
  python -m htr.train data=folder data.root=my/pairs augment=light     folders of image + .gt.txt pairs
  python -m htr.train data=copiste data.root=my/lines.tsv train.init_from=default    fine-tune the shipped model
  python -m htr.train experiment=french_medium hydra.run.dir=$HOME/runs/fr   a recipe (conf/experiment)
  python -m htr.train experiment=french_medium train.resume=$HOME/runs/fr/last.pt hydra.run.dir=$HOME/runs/fr
  python -m htr.train debug=fast train.device=cpu                      a few steps: does everything run?"""


def field_docs(cls: type) -> dict[str, str]:
    """The descriptions in ``cls``'s ``Attributes:`` docstring section, by field name (whitespace collapsed)."""
    lines = (inspect.getdoc(cls) or "").splitlines()
    if "Attributes:" not in lines:
        return {}
    docs: dict[str, list[str]] = {}
    names: list[str] = []
    for line in lines[lines.index("Attributes:") + 1 :]:
        entry = _ENTRY.match(line)
        if entry:
            names = entry.group(1).split(", ")
            for name in names:
                docs[name] = [entry.group(2) or ""]
        elif line.startswith("        ") and names:  # a continuation of the entry above
            for name in names:
                docs[name].append(line.strip())
        elif line.strip():  # the next section (or text that is not an entry) ends this one
            break
    return {name: " ".join(" ".join(parts).split()) for name, parts in docs.items()}


@dataclass(frozen=True)
class KeyDoc:
    """One leaf key of the schema: dotted name, type as written in a config, its section (the name without
    the last part), the field's description and the dataclass's default (the composed config's may differ)."""

    key: str
    type: str
    section: str
    doc: str
    schema_default: Any


def _nested(tp: Any) -> tuple[type | None, bool]:
    """The dataclass a field holds (and whether it holds a list of them), else (None, False)."""
    if dataclasses.is_dataclass(tp):
        return tp, False
    if typing.get_origin(tp) is list and typing.get_args(tp) and dataclasses.is_dataclass(typing.get_args(tp)[0]):
        return typing.get_args(tp)[0], True
    return None, False


def type_name(tp: Any) -> str:
    """``int``, ``list[list[int]]``, ``float | null``: a field type as a config user reads it."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("null" if a is type(None) else type_name(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def sections(schema: type = Config, prefix: str = "") -> list[tuple[str, type]]:
    """``(dotted section, dataclass)`` for every section of the schema, parents before their children."""
    out = [(prefix, schema)] if prefix else []
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        cls, is_list = _nested(hints[f.name])
        if cls is not None:
            out += sections(cls, f"{prefix}{f.name}{'[]' if is_list else ''}.")
    return out


def schema_keys(schema: type = Config) -> list[KeyDoc]:
    """Every leaf key of the schema (items of a list of sections as ``data.sources[].name``), section by
    section; a field without an ``Attributes:`` entry gets an empty ``doc``."""
    keys = []
    for prefix, cls in [("", schema), *sections(schema)]:
        docs, hints = field_docs(cls), typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if _nested(hints[f.name])[0] is None:
                keys.append(KeyDoc(prefix + f.name, type_name(hints[f.name]), prefix[:-1], docs.get(f.name, ""),
                                   _default(f)))  # fmt: skip
    return keys


def groups() -> dict[str, list[tuple[str, str]]]:
    """Each config group (a folder of ``conf/``) with its options and the first sentence of their comments."""
    out = {}
    for folder in sorted(p for p in CONF.iterdir() if p.is_dir() and not p.name.startswith("_")):
        out[folder.name] = [(yaml.stem, _first_sentence(yaml)) for yaml in sorted(folder.glob("*.yaml"))]
    return out


def _first_sentence(yaml: Path) -> str:
    """The first sentence of the comment that opens a group option's YAML (``@package`` lines and example
    command lines left out)."""
    comments = []
    for line in yaml.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].strip()
        if not text.startswith(("@package", "python ")):
            comments.append(text)
    # a sentence ends at . ! or ? and a space, but not in "e.g. the" or "et al. 2022"
    return re.split(r"(?<=[a-z0-9)][.!?])(?<!e\.g\.)(?<!i\.e\.)(?<! al\.)\s+", " ".join(comments), maxsplit=1)[0]


def default_choices() -> dict[str, str | None]:
    """The option each group takes when the command line names none (``conf/config.yaml``'s defaults)."""
    from omegaconf import OmegaConf

    listed = OmegaConf.to_container(OmegaConf.load(CONF / "config.yaml"))["defaults"]  # type: ignore[index]
    return {k: v for item in listed if isinstance(item, dict) for k, v in item.items()}


def composed_values(overrides: list[str]) -> dict[str, Any]:
    """The config a run with ``overrides`` starts from, unresolved (``${model.height}`` stays as written)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module("htr.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def _lookup(tree: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            raise KeyError(key)
        tree = tree[part]
    return tree


def show_value(value: Any) -> str:
    """A value as it is written on the command line: null, true, [16, 32], "" for the empty string."""
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, ensure_ascii=False)


def _matches(name: str, terms: list[str]) -> bool:
    """Whether a term starts a word of ``name`` (words split at ``.``, ``_`` and ``[]``); no terms: all."""
    return not terms or any(re.search(r"(^|[._\[\]])" + re.escape(t.lower()), name.lower()) for t in terms)


def _plain(text: str) -> str:
    """Docstring markup for a terminal: ``:func:`x``` and ````x```` become ```x```."""
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")


def _group_lines(terms: list[str], wrap: textwrap.TextWrapper) -> list[str]:
    """One line per group option (matching ``terms``), the default marked with ``*``."""
    chosen = default_choices()
    return [
        wrap.fill(f"{group}={option}{'*' if chosen.get(group) == option else ''}  {_plain(about)}")
        for group, options in groups().items()
        for option, about in options
        if _matches(group, terms) or _matches(option, terms)
    ]


def _key_lines(terms: list[str], values: dict[str, Any], wrap: textwrap.TextWrapper) -> list[str]:
    """``key (type, default): description`` for each key matching ``terms``, under a line per section."""
    summaries = {prefix[:-1]: _plain(inspect.getdoc(cls) or "").split("\n\n")[0] for prefix, cls in sections()}
    out: list[str] = []
    section = None
    for k in schema_keys():
        if not _matches(k.key, terms):
            continue
        if k.section != section:
            section = k.section
            out += ["", textwrap.fill(f"{section}: {' '.join(summaries[section].split())}", wrap.width)]
        try:
            default = show_value(_lookup(values, k.key))
        except KeyError:  # an item of a list of sections: the dataclass's default
            default = show_value(k.schema_default)
        out.append(wrap.fill(f"{k.key} ({k.type}, {default}): {_plain(k.doc)}"))
    return out


def render(terms: list[str], overrides: list[str], width: int = 100) -> str:
    """The help text: usage, examples, groups and keys (only the groups and keys matching ``terms`` when given).

    Raises:
        LookupError: nothing matches ``terms``.
    """
    wrap = textwrap.TextWrapper(width=width, initial_indent="  ", subsequent_indent="      ")
    group_lines = _group_lines(terms, wrap)
    key_lines = _key_lines(terms, composed_values(overrides), wrap)
    if not group_lines and not key_lines:
        raise LookupError(f"no config key or group matches {' or '.join(terms)}")
    out = [] if terms else [USAGE, "", EXAMPLES, ""]
    if group_lines:
        out += ["Config groups (GROUP=OPTION loads conf/GROUP/OPTION.yaml; * marks the default):", *group_lines]
    if key_lines:
        out += ["", "Config keys (KEY=VALUE; the defaults shown are those of the groups chosen):", *key_lines]
    return "\n".join(out).lstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    """``python -m htr.train --help [TERM ...] [KEY=VALUE ...]``: print the help; 2 when nothing matches or an
    override does not compose (one ``htr:`` line)."""
    args = [a for a in argv if a not in ("-h", "--help")]
    overrides = [a for a in args if "=" in a]
    terms = [a for a in args if "=" not in a and not a.startswith("-")]
    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    try:
        text = render(terms, overrides, width)
    except LookupError as e:
        print(f"htr: {e}; try `python -m htr.train --help` for them all", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - Hydra's composition errors (a bad override) have no common type
        from htr.config_check import config_hint

        print(f"htr: {config_hint(overrides) or str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
