"""Config checks with a hint: unknown keys (with a "did you mean"), values of the wrong type.

Hydra checks plain overrides against the schema in :mod:`htr.config`, but ``+key=value`` adds keys past it;
:func:`typed_config` refuses those, and :func:`config_hint` explains a bad override after Hydra's own message.
"""

from __future__ import annotations

import contextlib
from typing import Any

from omegaconf import DictConfig, OmegaConf

from htr.config import Config
from htr.errors import HTRError

_KEYS_HINT = "see `python -m htr.train --cfg job` for the valid keys and their values"
_GROUPS = ("data", "model", "optim", "decode", "augment", "experiment", "debug")


def _schema() -> dict[str, Any]:
    """The config schema as nested plain dicts (defaults as values)."""
    return OmegaConf.to_container(OmegaConf.structured(Config), resolve=False)  # type: ignore[return-value]


def _flat_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """Every dotted key of a nested dict, sections included."""
    keys = []
    for k, v in tree.items():
        keys.append(prefix + k)
        if isinstance(v, dict):
            keys += _flat_keys(v, f"{prefix}{k}.")
    return keys


def _unknown_keys(tree: Any, schema: Any, prefix: str = "") -> list[str]:
    """Dotted keys of ``tree`` that the schema lacks (below an empty schema dict anything goes)."""
    if not isinstance(tree, dict) or not isinstance(schema, dict) or not schema:
        return []
    out = []
    for k, v in tree.items():
        if k not in schema:
            out.append(f"{prefix}{k}")
        else:
            out += _unknown_keys(v, schema[k], f"{prefix}{k}.")
    return out


def unknown_key_message(key: str) -> str:
    """``unknown config key 'train.max_epoch' (did you mean 'train.max_epochs'?); see ...``."""
    import difflib

    close = difflib.get_close_matches(key, _flat_keys(_schema()), n=1, cutoff=0.6)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown config key {key!r}{guess}; {_KEYS_HINT}"


def typed_config(cfg: DictConfig) -> Config:
    """``cfg`` as a :class:`Config`; a key the schema lacks or a value of the wrong type is an :class:`HTRError`.

    Hydra checks plain overrides against the schema, but ``+key=value`` adds keys past it; they are refused here.
    """
    from omegaconf.errors import ValidationError

    tree = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    unknown = _unknown_keys(tree, _schema())
    if unknown:
        raise HTRError(unknown_key_message(unknown[0]))
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), cfg))  # type: ignore[return-value]
    except ValidationError as e:
        raise HTRError(f"config key {e.full_key}: {str(e.msg).splitlines()[0]}; {_KEYS_HINT}") from None


def config_hint(overrides: list[str]) -> str | None:
    """htr's hint for the first command-line override that names an unknown key or gives a value of the wrong
    type (printed after Hydra's own message); None when no override is at fault."""
    import json

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import ListConfig
    from omegaconf.errors import OmegaConfBaseException

    parser, parsed = OverridesParser.create(), []
    for arg in overrides:
        # Flags (--cfg job) and overrides Hydra cannot parse (its message says why) get no hint.
        with contextlib.suppress(HydraException):
            parsed += parser.parse_overrides([arg]) if not arg.startswith("-") else []
    schema = OmegaConf.structured(Config)
    for o in parsed:
        key = o.key_or_group
        # Config groups (data=copiste) name files; Hydra's message already lists the choices.
        if o.is_delete() or key in _GROUPS or key.split(".")[0] in ("hydra", "experiment", "debug"):
            continue
        try:
            known = OmegaConf.select(schema, key, default=_ABSENT) is not _ABSENT
        except OmegaConfBaseException:
            known = False
        if not known:
            return unknown_key_message(key)
        try:
            OmegaConf.update(schema, key, o.value(), merge=True)
        except OmegaConfBaseException as e:
            default = OmegaConf.select(OmegaConf.structured(Config), key)
            if isinstance(default, (DictConfig, ListConfig)):
                default = OmegaConf.to_container(default)
            return (
                f"{key}={o.get_value_element_as_str()} is not a valid value ({str(e).splitlines()[0]}); "
                f"it takes a value like {key}={json.dumps(default, separators=(',', ':'))}"
            )
    return None


_ABSENT = object()

#: Flags that make ``python -m htr.train`` print something instead of running (no run folder is created).
_NO_RUN_FLAGS = {"--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc"}
_DEFAULT_RUN_DIR = "runs/${now:%Y-%m-%d_%H-%M-%S}"  # conf/config.yaml: under the working folder


def run_dir_problem(argv: list[str]) -> str | None:
    """Why the run folder (``hydra.run.dir``) cannot be created, as one sentence, or None.

    Checked before Hydra starts: Hydra creates that folder (and its log file there) before htr's code runs, and
    reports a failure there with a traceback. Only the part of the path before any ``${...}`` is looked at: the
    nearest folder of it that exists must take a new file.
    """
    import tempfile
    from pathlib import Path

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if any(a.split("=")[0] in _NO_RUN_FLAGS or a in ("-m", "--multirun") for a in argv):
        return None
    run_dir, parser = _DEFAULT_RUN_DIR, OverridesParser.create()
    for arg in argv:
        with contextlib.suppress(HydraException):
            for o in parser.parse_overrides([arg]) if not arg.startswith("-") else []:
                if o.key_or_group == "hydra.run.dir" and not o.is_delete():
                    run_dir = str(o.value())
    folder = Path(run_dir.split("${")[0] or ".")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        why = f"{folder} is a file"
    else:
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".htr-", suffix=".trial"):
                return None
        except OSError as e:
            why = f"{folder.resolve()} takes no new files ({e.strerror})"
    return f"cannot create the run folder {run_dir}: {why}; run from a writable folder or set hydra.run.dir=FOLDER"
