"""paraxl: cross-lingual paraphrase identification and multilingual sentence embeddings.

The package root imports nothing heavy: ``import paraxl`` does not load torch. The public names
below are resolved on first use (PEP 562), so ``from paraxl import load_encoder`` still works.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from paraxl.errors import InputError, ModelFormatError, ModelSpecError, ParaxlError
from paraxl.version import __version__

if TYPE_CHECKING:  # for type checkers and IDEs only; at run time see __getattr__
    from paraxl.loading.backends import load_encoder
    from paraxl.loading.model import LoadedModel, load_model
    from paraxl.loading.specs import DEFAULT_MODEL
    from paraxl.modeling.bi_encoder import BiEncoder

# public name -> module that defines it (imported lazily)
_LAZY = {
    "BiEncoder": "paraxl.modeling.bi_encoder",
    "DEFAULT_MODEL": "paraxl.loading.specs",
    "LoadedModel": "paraxl.loading.model",
    "load_encoder": "paraxl.loading.backends",
    "load_model": "paraxl.loading.model",
}

__all__ = [
    "DEFAULT_MODEL",
    "BiEncoder",
    "InputError",
    "LoadedModel",
    "ModelFormatError",
    "ModelSpecError",
    "ParaxlError",
    "__version__",
    "load_encoder",
    "load_model",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paraxl' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
