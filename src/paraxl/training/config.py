"""The training configuration: a typed YAML file plus ``key.path=value`` overrides.

Unknown keys are rejected (with a close-match suggestion) and cross-field rules are
checked once, here, so the trainer can trust what it gets. Errors name the file and the
YAML line of the offending key.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from paraxl.errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    name: str = "bundled:multilingual-e5-small"
    max_seq_length: int | None = Field(default=128, ge=8)
    freeze_word_embeddings: bool = True  # paper 1 trains everything but the word embeddings
    prompt_name: str | None = None  # None: the model's default prompt (e5: "query: ")


class TrainData(_Strict):
    """Where the training groups come from (see :mod:`paraxl.data.readers`)."""

    kind: Literal["pawsx", "pairs", "parallel", "xnli"]
    split: str = "train"  # pawsx: train/validation/test (resplit) or dev_2k/... (official)
    protocol: Literal["resplit", "official"] = "resplit"
    splits: list[str] = Field(default_factory=lambda: ["dev", "test"])  # xnli
    languages: list[str] | None = None  # None: every language the kind has
    paths: list[str] = Field(default_factory=list)  # pairs: one file per language; parallel: aligned files
    first: str = "sentence1"
    second: str = "sentence2"
    label: str | None = "label"
    on_error: Literal["raise", "skip"] = "raise"
    # pair losses on aligned data: share of pairs whose positive (and explicit negatives) come from
    # a translation of the anchor's unit, i.e. cross-lingual pairs (see training.layout.TranslationPositives)
    translation_positives: float = Field(default=0.0, ge=0.0, le=1.0)
    # pair losses: add a PAWS-style word swap of each unit's source sentence to its explicit
    # negatives (see data.word_swap); give `loss.explicit_negatives` room for it
    swap_negatives: bool = False

    @model_validator(mode="after")
    def _paths_fit_kind(self) -> TrainData:
        if self.kind in ("pairs", "parallel") and not self.paths:
            raise ValueError(f"data kind {self.kind!r} needs `paths`")
        if self.kind == "parallel" and len(self.paths) < 2:
            raise ValueError("data kind 'parallel' needs at least 2 aligned files in `paths`")
        if self.kind in ("pawsx", "xnli") and self.paths:
            raise ValueError(f"data kind {self.kind!r} reads from the data directory; remove `paths`")
        if self.languages is not None and self.paths and len(self.languages) != len(self.paths):
            raise ValueError("`languages` must name one language per file in `paths`")
        return self


class ValidationConfig(_Strict):
    """PAWS-X accuracy at the threshold fitted on these pairs (all languages pooled)."""

    kind: Literal["pawsx"] = "pawsx"
    split: str = "validation"
    protocol: Literal["resplit", "official"] = "resplit"
    languages: list[str] | None = None
    every_steps: int = Field(default=50, ge=1)
    batch_size: int = Field(default=64, ge=1)


class LossConfig(_Strict):
    kind: Literal["additive_margin", "info_nce", "multi_positive"] = "additive_margin"
    margin: float = Field(default=0.3, ge=0.0)
    scale: float = Field(default=20.0, gt=0.0)
    direction: Literal["both", "forward"] = "both"
    temperature: float = Field(default=0.05, gt=0.0)  # info_nce and multi_positive
    variant: Literal["mean_log_prob", "log_sum_prob"] = "mean_log_prob"  # multi_positive
    members_per_group: int | None = Field(default=None, ge=2)  # multi_positive: K texts per group; None: all
    explicit_negatives: int = Field(default=1, ge=0)  # pair losses: per anchor, from the data (PAWS-X label-0)


class DistillConfig(_Strict):
    """A teacher's pair scores as regression targets for the cosines (see training.distillation)."""

    scores: str  # TSV sentence1 / sentence2 / score (cosine scale), e.g. from benchmarks/teacher_scores.py
    weight: float = Field(default=1.0, gt=0.0)  # of the distillation loss, added to the contrastive loss
    # mse: cosine = score, pointwise; cosent: only the teacher's order of the step's scored pairs,
    # across anchors (the order a global decision threshold needs), whatever the scores' scale
    loss: Literal["mse", "cosent"] = "mse"
    scale: float = Field(default=20.0, gt=0.0)  # cosent: multiplies the cosine differences


class MiningConfig(_Strict):
    """Mega-batch hard negatives (paper 1): mined across all mini-batches of a step."""

    enabled: bool = False
    top_k: int = Field(default=1, ge=1)
    ceiling: float | None = None  # drop candidates above this cosine (likely false negatives)
    relative_ceiling: float | None = None  # drop candidates above (positive cosine - this)


class OptimConfig(_Strict):
    lr: float = Field(default=2e-5, gt=0.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    warmup_ratio: float = Field(default=0.1, ge=0.0, lt=1.0)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = Field(default=1.0, gt=0.0)


class TrainConfig(_Strict):
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: TrainData
    validation: ValidationConfig | None = None
    loss: LossConfig = Field(default_factory=LossConfig)
    mining: MiningConfig = Field(default_factory=MiningConfig)
    distill: DistillConfig | None = None
    optim: OptimConfig = Field(default_factory=OptimConfig)
    output_dir: str
    data_dir: str | None = None  # default: --data-dir or $PARAXL_DATA_DIR
    batch_size: int = Field(default=32, ge=2)  # groups per mini-batch, over all processes
    mini_batches_per_step: int = Field(default=1, ge=1)  # the mega-batch size K
    grad_cache: bool | None = None  # None: on when a step holds several mini-batches
    max_steps: int | None = Field(default=None, ge=1)
    epochs: float | None = Field(default=None, gt=0.0)
    seed: int = 42
    precision: Literal["fp32", "bf16"] = "fp32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    log_every: int = Field(default=10, ge=1)
    checkpoint_every: int = Field(default=100, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> TrainConfig:
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of `max_steps` and `epochs`")
        if self.mining.enabled and self.loss.kind == "multi_positive":
            raise ValueError("mining works with the pair losses (additive_margin, info_nce), not multi_positive")
        if self.data.translation_positives > 0 and self.loss.kind == "multi_positive":
            raise ValueError(
                "data.translation_positives works with the pair losses; multi_positive groups already mix languages"
            )
        if self.data.swap_negatives and (self.loss.kind == "multi_positive" or self.loss.explicit_negatives == 0):
            raise ValueError(
                "data.swap_negatives adds explicit negatives: it needs a pair loss with loss.explicit_negatives >= 1"
            )
        if self.distill is not None and self.loss.kind == "multi_positive":
            raise ValueError("distill scores (anchor, positive / negative) pairs: it needs a pair loss")
        if self.mining.enabled and self.mini_batches_per_step < 2:
            raise ValueError("mining needs a mega-batch: set `mini_batches_per_step` >= 2")
        return self

    @property
    def uses_grad_cache(self) -> bool:
        return self.grad_cache if self.grad_cache is not None else self.mini_batches_per_step > 1


# ---------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read ``path`` (YAML), apply ``key.path=value`` overrides, validate."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such config file", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the config ({exc})", path) from None
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"not valid YAML ({getattr(exc, 'problem', exc)})", path, line) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(f"the config must be a mapping of keys, found {type(raw).__name__}", path, 1)
    for override in overrides:
        _apply_override(raw, override)
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = tuple(str(part) for part in first["loc"])
        from_override = _override_for(location, overrides)
        where = f"override {from_override!r}: " if from_override else ""
        line = None if from_override else _yaml_line(node, location)
        raise InputError(where + _describe(first, location), path, line) from None


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, sep, value = override.partition("=")
    if not sep or not key.strip():
        raise InputError(f"override {override!r}: expected key.path=value")
    parts = key.strip().split(".")
    target = raw
    for part in parts[:-1]:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise InputError(f"override {override!r}: {part!r} is not a section")
        target = child
    try:
        target[parts[-1]] = yaml.safe_load(value)
    except yaml.YAMLError:
        raise InputError(f"override {override!r}: the value is not valid YAML") from None
    if len(parts) == 1 and parts[0] in _EXCLUSIVE:
        raw.pop(_EXCLUSIVE[parts[0]], None)  # `max_steps=50` on a config with `epochs` replaces it


# the run length is one of these; overriding one drops the other
_EXCLUSIVE = {"max_steps": "epochs", "epochs": "max_steps"}


def _override_for(location: tuple[str, ...], overrides: Sequence[str]) -> str | None:
    dotted = ".".join(location)
    for override in overrides:
        key = override.partition("=")[0].strip()
        if dotted == key or dotted.startswith(key + ".") or key.startswith(dotted + "."):
            return override
    return None


def _describe(error: Any, location: tuple[str, ...]) -> str:
    dotted = ".".join(location) or "config"
    if error["type"] == "extra_forbidden":
        section = _section_model(location[:-1])
        known = sorted(section.model_fields) if section is not None else []
        close = difflib.get_close_matches(location[-1], known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else (f"; known keys: {', '.join(known)}" if known else "")
        return f"unknown key {dotted!r}{hint}"
    if error["type"] == "missing":
        return f"missing required key {dotted!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{dotted}: {message}" if location else message


def _section_model(location: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = TrainConfig
    for part in location:
        field = model.model_fields.get(part)
        if field is None:
            return None
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _yaml_line(node: yaml.Node | None, location: tuple[str, ...]) -> int | None:
    """The 1-based line of the deepest key of ``location`` present in the YAML tree."""
    line = None
    for part in location:
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if key_node.value == part:
                line = key_node.start_mark.line + 1
                node = value_node
                break
        else:
            break
    return line
