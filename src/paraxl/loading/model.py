"""One model identity: a spec on an inference backend -> its folder, weights fingerprint, encoder, calibration.

Every command that needs a model goes through :func:`load_model` (or :func:`resolve_model` first,
when it wants to check something before the weights load), so the folder, the fingerprint that
calibrations and indexes are checked against, and the encoder always describe the same model.

Example::

    model = load_model("bundled:multilingual-e5-small", backend="onnx")
    model.encoder.encode(["a sentence"])  # (1, 384) float32
    model.weights_fingerprint  # sha256 of the weights and config, the same on every backend
    model.calibration  # the folder's paraxl_calibration.json, or None
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from paraxl.io.hashing import model_folder_fingerprint
from paraxl.loading.backends import check_backend, open_encoder
from paraxl.loading.calibration_file import Calibration, load_calibration
from paraxl.loading.specs import DEFAULT_MODEL, resolve_model_folder
from paraxl.modeling.protocol import SentenceEncoder


@dataclass(frozen=True)
class ResolvedModel:
    """A model spec resolved to its local folder on an inference backend, before any weights load.

    ``spec`` is kept as the user gave it (messages name the model so). ``weights_fingerprint``
    and ``calibration`` are read on first use and then fixed: commands that never decide never
    read (or fail on) the calibration file, and commands that never check never hash the weights.
    """

    spec: str
    folder: Path
    backend: str  # the inference backend: one of ``backends.INFERENCE_BACKENDS``

    @cached_property
    def weights_fingerprint(self) -> str:
        """``model_folder_fingerprint(folder)``: the weights and config alone, whatever the backend.

        (``encoder.fingerprint`` differs: it also names the backend, since vectors differ per backend.)
        """
        return model_folder_fingerprint(self.folder)

    @cached_property
    def calibration(self) -> Calibration | None:
        """The folder's ``paraxl_calibration.json``; None without one; ModelFormatError when damaged."""
        return load_calibration(self.folder)

    def load(self) -> LoadedModel:
        """Load the encoder: the same identity plus the model itself (what was already read is kept)."""
        loaded = LoadedModel(self.spec, self.folder, self.backend, open_encoder(self.folder, self.backend))
        for name in ("weights_fingerprint", "calibration"):  # cached_property values, if computed
            if name in vars(self):
                vars(loaded)[name] = vars(self)[name]
        return loaded


@dataclass(frozen=True)
class LoadedModel(ResolvedModel):
    """A :class:`ResolvedModel` with its encoder loaded (a ``BiEncoder`` or an ONNX encoder)."""

    encoder: SentenceEncoder


def resolve_model(spec: str = DEFAULT_MODEL, backend: str = "torch") -> ResolvedModel:
    """Check ``backend`` and find (build, download) ``spec``'s folder; no weights are loaded."""
    check_backend(backend)
    return ResolvedModel(spec, resolve_model_folder(spec), backend)


def load_model(spec: str = DEFAULT_MODEL, backend: str = "torch") -> LoadedModel:
    """``resolve_model(spec, backend).load()``: the one way to get a model with its identity."""
    return resolve_model(spec, backend).load()
