"""Load and save a model folder's tokenizer: damage is one ModelFormatError, saving is deterministic.

A fast tokenizer keeps the truncation and padding of its last call in its Rust state, and
transformers saves that state into ``tokenizer.json``; loading such a file then adds
``max_length``, ``stride``, ``truncation_side`` and ``truncation_strategy`` (and the padding
twins) to the tokenizer's init arguments, which are saved into ``tokenizer_config.json``,
together with how it was loaded (``is_local``, ``local_files_only``). So a model that encoded
texts before it was saved (a resumed training run) gained files that differ from an
uninterrupted twin's with the same weights. :func:`save_tokenizer` writes neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from paraxl.modeling.model_files import check_tokenizer_files, loading

# init arguments that record a call's or a load's state, not the tokenizer: never saved
_CALL_STATE_KEYS = ("is_local", "local_files_only", "max_length", "stride", "truncation_strategy")
_PADDING_STATE_KEYS = ("pad_to_multiple_of", "pad_token_type_id")
# saved only when they differ from the tokenizer class's default
_SIDE_KEYS = ("truncation_side", "padding_side")


def load_tokenizer(folder: Path) -> PreTrainedTokenizerBase:
    """``AutoTokenizer.from_pretrained(folder)`` after checking its JSON files; ModelFormatError when damaged."""
    check_tokenizer_files(folder)
    with loading(folder, "tokenizer"):
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(folder)
    return tokenizer


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, folder: Path, max_length: int) -> None:
    """Save ``tokenizer`` into ``folder`` without the state of earlier calls or of how it was loaded."""
    tokenizer.model_max_length = max_length
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # every call sets the state it needs again: clearing it changes no result
        backend.no_truncation()
        backend.no_padding()
    saved_kwargs = tokenizer.init_kwargs
    tokenizer.init_kwargs = _without_state(tokenizer, saved_kwargs)
    try:
        tokenizer.save_pretrained(folder)
    finally:
        tokenizer.init_kwargs = saved_kwargs


def _without_state(tokenizer: PreTrainedTokenizerBase, kwargs: dict[str, Any]) -> dict[str, Any]:
    cleaned = {key: value for key, value in kwargs.items() if key not in _CALL_STATE_KEYS + _PADDING_STATE_KEYS}
    for key in _SIDE_KEYS:
        if key in cleaned and cleaned[key] == getattr(type(tokenizer), key, None):
            del cleaned[key]
    return cleaned
