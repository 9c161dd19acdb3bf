"""The model bundle: what a model file says about its model besides the weights, read and written in one place.

A trained model travels as a ``.pt`` checkpoint (written by training) or as an ONNX file (written by
``python -m htr.export``). Both carry the same description: the charset (label ``i + 1`` is ``charset[i]``, 0 is
the CTC blank), the model config (the architecture), the preprocessing settings the lines must be prepared with,
the checksum of the weights, and where the file came from (htr version, the source checkpoint of an export).
:class:`ModelBundle` is that description, and the only code that knows the keys it is stored under: in a
checkpoint, plain entries next to ``model`` (the weights); in an ONNX file, ``metadata_props`` entries whose
values are JSON strings. File integrity (the atomic writes, the checksums checked on load) stays with the
containers, :mod:`htr.checkpoint` and :mod:`htr.onnx_file`; this module needs no PyTorch.

The input height has one source of truth, the model config (``model.height``). The preprocessing settings
repeat it (the config interpolates ``data.preprocess.height: ${model.height}``); a file where the two disagree
is refused, since its lines would be prepared at a height the model was not built for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from htr import __version__
from htr.charset import Charset
from htr.config import ModelConfig, structured
from htr.errors import CheckpointError
from htr.preprocess.pipeline import PreprocessConfig

#: Checkpoint keys of the bundle (the weights are ``model``; the training state has its own keys).
_CHARSET, _CONFIG, _PREPROCESS, _WEIGHTS_SHA256, _VERSION = (
    "charset", "config", "preprocess", "weights_sha256", "htr_version",
)  # fmt: skip
#: ONNX metadata keys recording where an export came from (see :func:`htr.export.export_checkpoint`).
_ONNX_PROVENANCE = ("htr_version", "source_sha256", "source_weights_sha256")


@dataclass(frozen=True)
class ModelBundle:
    """A model's charset, architecture, preprocessing, weights checksum and provenance."""

    charset: Charset
    model: ModelConfig
    preprocess: PreprocessConfig
    #: The SHA-256 of the weights recorded in a checkpoint (:func:`htr.checkpoint.weights_sha256`), if any.
    weights_sha256: str | None = None
    #: The resolved config of the run that trained it (in a checkpoint), or ``{"model": ...}`` (in an ONNX file).
    config: dict[str, Any] = field(default_factory=dict)
    #: ``htr_version`` of the file; for an export also ``source_sha256`` and ``source_weights_sha256``.
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def input_height(self) -> int:
        """The height lines are scaled to before the model reads them (the model config's)."""
        return self.model.height

    @classmethod
    def for_training(cls, charset: Charset, resolved: dict[str, Any], preprocess: PreprocessConfig) -> ModelBundle:
        """The bundle of a model trained with the resolved config ``resolved`` (``model`` and all the rest)."""
        return cls(charset, structured(ModelConfig, resolved["model"]), preprocess, config=resolved)

    # ------------------------------------------------------------------------------------------- checkpoints

    def checkpoint_entries(self) -> dict[str, Any]:
        """The entries a checkpoint stores the bundle under (the weights checksum is added by
        :func:`htr.checkpoint.save_checkpoint`, which computes it from the weights it writes)."""
        return {_CHARSET: self.charset.chars, _CONFIG: self.config, _PREPROCESS: asdict(self.preprocess)}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], path: str | Path) -> ModelBundle:
        """The bundle of a loaded checkpoint; :class:`CheckpointError` naming ``path`` if it lacks one."""
        try:
            config = ckpt[_CONFIG]
            bundle = cls(
                Charset(ckpt[_CHARSET]),
                structured(ModelConfig, config["model"]),
                structured(PreprocessConfig, ckpt[_PREPROCESS]),
                ckpt.get(_WEIGHTS_SHA256),
                config,
                {_VERSION: ckpt.get(_VERSION)},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"the checkpoint lacks the model settings ({_first_line(e)})", path) from None
        return bundle.checked(path)

    @staticmethod
    def charset_of(ckpt: dict[str, Any], path: str | Path) -> Charset:
        """Only the charset of a loaded checkpoint (all that reading its labels needs), without the other
        settings; :class:`CheckpointError` naming ``path`` if it has none."""
        try:
            return Charset(ckpt[_CHARSET])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"the checkpoint has no charset ({_first_line(e)})", path) from None

    # ------------------------------------------------------------------------------------------ ONNX files

    def onnx_metadata(self, **provenance: Any) -> dict[str, str]:
        """The ``metadata_props`` of an export of this model by this htr (each value a JSON string), with the
        ``provenance`` entries given (``source_sha256``, ``source_weights_sha256``)."""
        props = {
            _CHARSET: self.charset.chars,
            _PREPROCESS: asdict(self.preprocess),
            _VERSION: __version__,
            "model": asdict(self.model),
            **provenance,
        }
        return {k: json.dumps(v, ensure_ascii=False) for k, v in props.items()}

    @classmethod
    def from_onnx_metadata(cls, meta: dict[str, str], path: str | Path) -> ModelBundle:
        """The bundle in an ONNX file's raw ``metadata_props``; :class:`CheckpointError` if htr did not write it.
        Exports from before the model config was recorded have no ``model`` entry: their height is the
        preprocessing's."""
        try:
            charset = Charset(json.loads(meta[_CHARSET]))
            preprocess = structured(PreprocessConfig, json.loads(meta[_PREPROCESS]))
            model_dict = json.loads(meta.get("model", "{}"))
            model = structured(ModelConfig, model_dict or {"height": preprocess.height})
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"not an ONNX model exported by htr (metadata: {e})", path) from None
        provenance = onnx_provenance(meta)
        return cls(charset, model, preprocess, provenance.get("source_weights_sha256"), {"model": model_dict},
                   provenance).checked(path)  # fmt: skip

    def checked(self, path: str | Path) -> ModelBundle:
        """``self``, after checking that its preprocessing height is the model's input height."""
        if self.preprocess.height != self.model.height:
            raise CheckpointError(
                f"its preprocessing height {self.preprocess.height} differs from its model's input height "
                f"{self.model.height}; the file was edited or written by a broken htr",
                path,
            )
        return self


def onnx_provenance(meta: dict[str, str]) -> dict[str, Any]:
    """``htr_version``, ``source_sha256``, ``source_weights_sha256`` from raw ONNX metadata (None if absent);
    raises ValueError when one is not JSON."""
    return {key: json.loads(meta[key]) if key in meta else None for key in _ONNX_PROVENANCE}


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]
