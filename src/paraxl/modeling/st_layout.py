"""Read and write the sentence-transformers folder layout around a Hugging Face backbone.

We write the long-standing layout (``modules.json`` + ``sentence_bert_config.json`` +
``1_Pooling/config.json`` [+ ``2_Normalize``] + ``config_sentence_transformers.json``), which
every sentence-transformers release from 2.x to 6.x loads, and we read both it and the
newer 6.x pooling config (``pooling_mode`` as one string).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paraxl.errors import InputError, ModelFormatError
from paraxl.modeling.pooling import POOLING_MODES, PoolingMode

PARAXL_CONFIG = "paraxl_config.json"
_POOLING_DIR = "1_Pooling"
_NORMALIZE_DIR = "2_Normalize"


@dataclass(frozen=True)
class EncoderSettings:
    """How a backbone's token states become a sentence embedding.

    ``prompts`` maps prompt names to prefixes (e5: ``{"query": "query: ", "passage": "passage: "}``);
    ``default_prompt_name`` is applied when a caller names none.
    """

    pooling: PoolingMode = "mean"
    normalize: bool = True
    max_seq_length: int = 512
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    freeze_word_embeddings: bool = False

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ModelFormatError(f"unknown pooling {self.pooling!r}; expected one of {POOLING_MODES}")
        if self.max_seq_length < 2:
            raise ModelFormatError(f"max_seq_length must be >= 2, got {self.max_seq_length}")
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ModelFormatError(
                f"default prompt {self.default_prompt_name!r} is not among prompts {sorted(self.prompts)}"
            )

    def prompt_prefix(self, prompt_name: str | None = None) -> str:
        """The prefix for ``prompt_name`` (default: the default prompt; ``""`` for none)."""
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None or name == "":
            return ""
        if name not in self.prompts:
            raise InputError(f"unknown prompt name {name!r}; this model has {sorted(self.prompts) or 'none'}")
        return self.prompts[name]


def write_st_files(folder: Path, settings: EncoderSettings, dimension: int) -> None:
    """Write the sentence-transformers module files (the backbone and tokenizer are saved apart)."""
    modules: list[dict[str, Any]] = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": _POOLING_DIR, "type": "sentence_transformers.models.Pooling"},
    ]
    if settings.normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": _NORMALIZE_DIR, "type": "sentence_transformers.models.Normalize"}
        )
        (folder / _NORMALIZE_DIR).mkdir(exist_ok=True)
    _dump(folder / "modules.json", modules)
    _dump(folder / "sentence_bert_config.json", {"max_seq_length": settings.max_seq_length, "do_lower_case": False})
    (folder / _POOLING_DIR).mkdir(exist_ok=True)
    _dump(
        folder / _POOLING_DIR / "config.json",
        {
            "word_embedding_dimension": dimension,
            "pooling_mode_cls_token": settings.pooling == "cls",
            "pooling_mode_mean_tokens": settings.pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    _dump(
        folder / "config_sentence_transformers.json",
        {
            "prompts": dict(settings.prompts),
            "default_prompt_name": settings.default_prompt_name,
            "similarity_fn_name": "cosine",
        },
    )
    _dump(folder / PARAXL_CONFIG, {"format_version": 1, "freeze_word_embeddings": settings.freeze_word_embeddings})


def read_settings(folder: Path, fallback_max_length: int) -> EncoderSettings:
    """Settings of a saved model folder; a plain HF folder gets mean pooling + normalisation."""
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return EncoderSettings(max_seq_length=fallback_max_length)
    modules = _load(modules_file)
    if not isinstance(modules, list):
        raise ModelFormatError(f"{modules_file}: expected a JSON list of modules")
    pooling: PoolingMode = "mean"
    normalize = False
    for module in modules:
        kind = str(module.get("type", ""))
        path = folder / str(module.get("path", ""))
        if kind.endswith("Pooling"):
            pooling = _read_pooling(path / "config.json")
        elif kind.endswith("Normalize"):
            normalize = True
    max_length = fallback_max_length
    bert_config = folder / "sentence_bert_config.json"
    if bert_config.is_file():
        max_length = int(_load(bert_config).get("max_seq_length") or fallback_max_length)
    prompts: dict[str, str] = {}
    default_prompt: str | None = None
    st_config = folder / "config_sentence_transformers.json"
    if st_config.is_file():
        loaded = _load(st_config)
        prompts = {str(k): str(v) for k, v in (loaded.get("prompts") or {}).items()}
        default_prompt = loaded.get("default_prompt_name")
    freeze = False
    if (folder / PARAXL_CONFIG).is_file():
        freeze = bool(_load(folder / PARAXL_CONFIG).get("freeze_word_embeddings", False))
    return EncoderSettings(pooling, normalize, max_length, prompts, default_prompt, freeze)


def _read_pooling(path: Path) -> PoolingMode:
    config = _load(path)
    mode = config.get("pooling_mode")  # sentence-transformers >= 6
    if mode is None:
        chosen = [key for key, value in config.items() if key.startswith("pooling_mode_") and value]
        names = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean"}
        if len(chosen) != 1 or chosen[0] not in names:
            raise ModelFormatError(f"{path}: unsupported pooling {chosen}; paraxl supports {POOLING_MODES}")
        mode = names[chosen[0]]
    if mode not in POOLING_MODES:
        raise ModelFormatError(f"{path}: unsupported pooling {mode!r}; paraxl supports {POOLING_MODES}")
    return mode  # type: ignore[no-any-return]


def _dump(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: unreadable model config ({exc})") from exc
