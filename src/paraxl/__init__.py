"""paraxl: cross-lingual paraphrase identification and multilingual sentence embeddings."""

from paraxl.errors import InputError, ModelFormatError, ModelSpecError, ParaxlError
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.sources import DEFAULT_MODEL, load_encoder

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "BiEncoder",
    "InputError",
    "ModelFormatError",
    "ModelSpecError",
    "ParaxlError",
    "__version__",
    "load_encoder",
]
