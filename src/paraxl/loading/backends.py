"""Inference backends: a model folder (or spec) -> an encoder that runs on one of them.

"backend" means the *inference backend* here and everywhere in paraxl (how vectors are
computed); the vector index structure is an "index type". Adding a backend is this module
(a name in ``INFERENCE_BACKENDS``, a branch in ``open_encoder`` and, if it writes files into the
model folder, their folder in ``EXPORT_DIRS``) plus the module in ``paraxl.inference`` that runs it.
"""

from __future__ import annotations

from pathlib import Path

from paraxl.errors import InputError
from paraxl.inference.onnx_files import ONNX_DIR
from paraxl.loading.specs import DEFAULT_MODEL, resolve_model_folder
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.protocol import SentenceEncoder
from paraxl.paths import cache_dir

# torch: the PyTorch BiEncoder; onnx / onnx-int8: ONNX Runtime, fp32 or int8 dynamic quantization
INFERENCE_BACKENDS = ("torch", "onnx", "onnx-int8")
# folders inside a model folder that hold files derived from its weights (a soup drops them)
EXPORT_DIRS = (ONNX_DIR,)


def check_backend(backend: str) -> None:
    """InputError naming the choices when ``backend`` is not one of ``INFERENCE_BACKENDS``."""
    if backend not in INFERENCE_BACKENDS:
        raise InputError(f"unknown backend {backend!r}; use one of {', '.join(INFERENCE_BACKENDS)}")


def load_bi_encoder(spec: str = DEFAULT_MODEL) -> BiEncoder:
    """The trainable PyTorch model for ``spec``."""
    return BiEncoder.load(resolve_model_folder(spec))


def load_encoder(spec: str = DEFAULT_MODEL, backend: str = "torch") -> SentenceEncoder:
    """Load an encoder for any supported spec (see ``specs``) on ``backend`` (see ``INFERENCE_BACKENDS``)."""
    check_backend(backend)
    return open_encoder(resolve_model_folder(spec), backend)


def open_encoder(folder: Path, backend: str) -> SentenceEncoder:
    """The encoder of the model in ``folder`` on ``backend`` (already checked)."""
    if backend == "torch":
        return BiEncoder.load(folder)
    return _load_onnx(folder, backend)


def _load_onnx(folder: Path, backend: str) -> SentenceEncoder:
    """ONNX Runtime encoder; bundled models (paraxl's own cache) are exported on first use.

    A user's folder is never written to behind their back: without an up-to-date export it
    raises ModelFormatError naming the ``paraxl export-onnx`` command to run.
    """
    from paraxl.inference.onnx_encoder import OnnxEncoder

    _ensure_owned_export(folder, backend)
    return OnnxEncoder.load(folder, backend)


def onnx_encoder_fingerprint(folder: Path, backend: str) -> str:
    """The fingerprint ``open_encoder(folder, backend).fingerprint`` would have, without loading the
    tokenizer or an ONNX Runtime session (a bundled model is exported first, as loading would)."""
    from paraxl.inference.onnx_files import locate_export

    _ensure_owned_export(folder, backend)
    return locate_export(folder, backend).encoder_fingerprint(folder)


def _ensure_owned_export(folder: Path, backend: str) -> None:
    if owned_by_paraxl(folder):
        from paraxl.inference.onnx_export import ensure_export

        ensure_export(folder, backend)


def owned_by_paraxl(folder: Path) -> bool:
    """Whether ``folder`` lies in paraxl's cache (bundled models), where paraxl may write."""
    return folder.resolve().is_relative_to(cache_dir().resolve())
