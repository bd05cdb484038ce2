"""Which training config a file holds: ``model.kind`` picks the schema.

``bi_encoder`` (the default, and every config written before cross-encoders were trainable):
:class:`~paraxl.training.config.TrainConfig`, validated and recorded exactly as by
:func:`~paraxl.training.config.load_config` (an explicit ``kind: bi_encoder`` is dropped, so the
record is the same). ``cross_encoder``:
:class:`~paraxl.training.cross_encoder_config.CrossEncoderTrainConfig`. Overrides apply before the
choice (``model.kind=cross_encoder`` switches it), and an unknown kind is an error at its YAML line.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from paraxl.training.config import TrainConfig, read_source
from paraxl.training.config_errors import config_error
from paraxl.training.cross_encoder_config import CROSS_ENCODER, CrossEncoderTrainConfig

BI_ENCODER = "bi_encoder"
MODEL_KINDS = (BI_ENCODER, CROSS_ENCODER)
_Schema = TypeVar("_Schema", bound=BaseModel)


class _ModelKind(BaseModel):
    """``model.kind`` alone; the chosen schema checks the section's other keys."""

    model_config = ConfigDict(extra="allow")

    kind: Any = BI_ENCODER

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: Any) -> Any:
        if kind not in MODEL_KINDS:
            close = difflib.get_close_matches(str(kind), MODEL_KINDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{kind!r} is not a model kind; expected one of {', '.join(MODEL_KINDS)}{hint}")
        return kind


class _KindProbe(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: _ModelKind = Field(default_factory=_ModelKind)


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig | CrossEncoderTrainConfig:
    """Read ``path`` (YAML), apply ``key.path=value`` overrides, validate by ``model.kind``."""
    path = Path(path)
    raw, node = read_source(path, overrides)
    model = raw.get("model")
    kind = model.get("kind", BI_ENCODER) if isinstance(model, dict) else BI_ENCODER
    if kind == CROSS_ENCODER:
        return _validate(CrossEncoderTrainConfig, raw, node, path, overrides)
    if kind != BI_ENCODER:
        _validate(_KindProbe, raw, node, path, overrides)  # refuses the kind at its line
    if isinstance(model, dict):  # TrainConfig has no `kind` key: the record stays what it was without one
        raw = raw | {"model": {key: value for key, value in model.items() if key != "kind"}}
    return _validate(TrainConfig, raw, node, path, overrides)


def _validate(
    schema: type[_Schema], raw: dict[str, Any], node: yaml.Node | None, path: Path, overrides: Sequence[str]
) -> _Schema:
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, schema, node, path, overrides) from None
