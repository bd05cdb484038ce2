"""A sentence-transformers ``CrossEncoder`` as a pair scorer: the sigmoid of one logit per pair.

The cross-encoder reads the raw pair ``<s> sentence1 </s></s> sentence2 </s>`` (no e5 prompt:
that belongs to the bi-encoder's embedding recipe) and scores it with the sigmoid of its single
output. :class:`CrossEncoderScorer` satisfies :class:`paraxl.decision.scorers.PairScorer`, so the
PAWS-X protocol runs on it exactly as on a bi-encoder's cosines. sentence-transformers and torch
are imported only when a model is loaded or run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from paraxl.errors import ModelFormatError
from paraxl.modeling.model_files import check_model_folder

if TYPE_CHECKING:
    from sentence_transformers.cross_encoder import CrossEncoder

PREDICT_BATCH = 32


def synchronize() -> None:
    """Wait for queued GPU work, so that a wall-clock time covers it (no-op on CPU)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def position_limit(folder: Path) -> int | None:
    """``max_position_embeddings`` of the folder's ``config.json`` (None: unreadable or absent)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None


def load_cross_encoder(folder: Path, max_length: int | None) -> CrossEncoder:
    """``CrossEncoder(folder, num_labels=1)`` with a sigmoid on its logit, from local files only.

    ``max_length`` None keeps the folder's own (a saved cross-encoder records it).

    A SentenceTransformer folder (the bi-encoder's backbone) becomes ``...ForSequenceClassification``
    on the same encoder weights with a freshly initialised head (seed it first for a reproducible head).
    """
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    check_model_folder(folder)  # a damaged file: one ModelFormatError naming it, not a library traceback
    model: CrossEncoder = CrossEncoder(
        str(folder), num_labels=1, max_length=max_length, activation_fn=torch.nn.Sigmoid(), local_files_only=True
    )
    return model


def is_cross_encoder(folder: Path) -> bool:
    """Whether ``folder`` holds a cross-encoder rather than a sentence embedder, from its config files alone.

    ``CrossEncoder.save`` writes ``config_sentence_transformers.json`` with ``model_type: CrossEncoder``;
    a plain Hugging Face sequence classifier (a cross-encoder saved without sentence-transformers) has a
    ``config.json`` whose ``architectures`` end in ``ForSequenceClassification`` and no pooling module
    (a sentence-transformers bi-encoder folder always has ``modules.json``, which names one).
    """
    settings = _json_object(folder / "config_sentence_transformers.json")
    if settings.get("model_type") == "CrossEncoder":
        return True
    if settings.get("model_type") is not None or (folder / "modules.json").is_file():
        return False  # a SentenceTransformer (bi-encoder) folder
    architectures = _json_object(folder / "config.json").get("architectures")
    return isinstance(architectures, list) and any(
        isinstance(name, str) and name.endswith("ForSequenceClassification") for name in architectures
    )


def check_one_output(folder: Path) -> None:
    """Refuse a cross-encoder with several outputs (an NLI or multi-class head): a pair scorer needs one."""
    config = _json_object(folder / "config.json")
    labels = config.get("id2label")
    count = config.get("num_labels", len(labels) if isinstance(labels, dict) else 1)
    if count != 1:
        raise ModelFormatError(
            f"{folder}: the cross-encoder has {count} outputs; paraxl scores pairs with a one-output "
            "(num_labels 1) cross-encoder"
        )


def open_cross_encoder_scorer(
    folder: Path, batch_size: int = PREDICT_BATCH, max_length: int | None = None
) -> CrossEncoderScorer:
    """The :class:`CrossEncoderScorer` of a cross-encoder folder (:func:`is_cross_encoder`), torch on CPU/GPU;
    ``max_length`` None: the folder's own."""
    check_one_output(folder)
    model = load_cross_encoder(folder, max_length)
    check_raw_pairs(model)
    return CrossEncoderScorer(model, batch_size)


def _json_object(path: Path) -> dict[str, object]:
    """A JSON file's top-level object; empty when the file is absent, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def check_raw_pairs(model: CrossEncoder) -> None:
    """Refuse a cross-encoder that would put a prompt in front of the pairs it reads."""
    if model.default_prompt_name is not None or any(model.prompts.values()):
        raise RuntimeError(f"the cross-encoder would apply prompts {model.prompts}; it must read raw pairs")


def fresh_parameters(model: CrossEncoder, folder: Path) -> list[str] | None:
    """Parameters of the classification model that the folder's safetensors did not hold (None: unknown)."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    stored: set[str] = set()
    for path in files:
        with safe_open(str(path), "pt") as handle:
            stored |= set(handle.keys())
    hf_model = model.model
    if hf_model is None:
        return None
    prefix = f"{getattr(hf_model, 'base_model_prefix', '')}."
    names = [name for name, _ in hf_model.named_parameters()]
    return [name for name in names if name not in stored and name.removeprefix(prefix) not in stored]


class CrossEncoderScorer:
    """A :class:`~paraxl.decision.scorers.PairScorer`: ``CrossEncoder.predict`` (sigmoid scores) per call.

    Args:
        model: a one-output cross-encoder (:func:`load_cross_encoder`).
        batch_size: pairs per forward pass.
    """

    def __init__(self, model: CrossEncoder, batch_size: int = PREDICT_BATCH) -> None:
        self.model = model
        self.batch_size = batch_size

    @property
    def max_length(self) -> int:
        """Tokens per pair the model reads (both texts, truncated longest first)."""
        return int(self.model.max_length)

    def score(self, pairs: Sequence[tuple[str, str]]) -> npt.NDArray[np.float64]:
        """(n,) float64 sigmoid scores; the GPU is synchronised before and after, so a timer around
        the call measures the forward passes themselves."""
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        synchronize()
        scores = self.model.predict(
            list(pairs), batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        synchronize()
        return np.asarray(scores, dtype=np.float64).reshape(-1)  # (n,)
