"""The training configuration: a typed YAML file plus ``key.path=value`` overrides.

Unknown keys are rejected (with a close-match suggestion) and cross-field rules are
checked once, here, so the trainer can trust what it gets. The ``loss`` and ``data``
sections are discriminated by their ``kind``: each kind has only its keys, and a key of
another kind is an error that names the kinds it applies to. Errors name the file and the
YAML line of the offending key (see :mod:`paraxl.training.config_errors`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from paraxl.errors import InputError
from paraxl.losses.additive_margin import AdditiveMarginConfig
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.losses.registry import LossConfig, pair_kinds, step_needs
from paraxl.losses.step import SECTION_CONFIG, PairSteps
from paraxl.training.config_errors import config_error, union_kinds
from paraxl.training.data_config import TrainData, data_loss_mismatch


class _Strict(BaseModel):
    model_config = SECTION_CONFIG  # unknown keys refused, numbers finite


class ModelConfig(_Strict):
    name: str = "bundled:multilingual-e5-small"
    max_seq_length: int | None = Field(default=128, ge=8)
    freeze_word_embeddings: bool = True  # paper 1 trains everything but the word embeddings
    prompt_name: str | None = None  # None: the model's default prompt (e5: "query: ")


class ValidationConfig(_Strict):
    """PAWS-X accuracy at the threshold fitted on these pairs (all languages pooled)."""

    kind: Literal["pawsx"] = "pawsx"
    split: str = "validation"
    protocol: Literal["resplit", "official"] = "resplit"
    languages: list[str] | None = None
    every_steps: int = Field(default=50, ge=1)
    batch_size: int = Field(default=64, ge=1)


class DistillConfig(_Strict):
    """A teacher's pair scores as regression targets for the cosines (see training.distillation)."""

    scores: str  # TSV sentence1 / sentence2 / score (cosine scale), e.g. from benchmarks/teacher_scores.py
    weight: float = Field(default=1.0, gt=0.0)  # of the distillation loss, added to the contrastive loss
    # mse: cosine = score, pointwise; cosent: only the teacher's order of the step's scored pairs,
    # across anchors (the order a global decision threshold needs), whatever the scores' scale
    loss: Literal["mse", "cosent"] = "mse"
    scale: float = Field(default=20.0, gt=0.0)  # cosent: multiplies the cosine differences


class OptimConfig(_Strict):
    lr: float = Field(default=2e-5, gt=0.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    warmup_ratio: float = Field(default=0.1, ge=0.0, lt=1.0)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = Field(default=1.0, gt=0.0)


MAX_EPOCHS = 1e6
DEFAULT_LOSS_KIND = "additive_margin"  # of a `loss:` section that names no kind (AdditiveMarginConfig)


class TrainConfig(_Strict):
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: TrainData
    validation: ValidationConfig | None = None
    loss: LossConfig = Field(default_factory=AdditiveMarginConfig)
    mining: HardNegativeConfig = Field(default_factory=HardNegativeConfig)  # hard negatives (YAML: `mining:`)
    distill: DistillConfig | None = None
    optim: OptimConfig = Field(default_factory=OptimConfig)
    output_dir: str
    data_dir: str | None = None  # default: --data-dir or $PARAXL_DATA_DIR
    batch_size: int = Field(default=32, ge=2)  # groups per mini-batch, over all processes
    mini_batches_per_step: int = Field(default=1, ge=1)  # the mega-batch size K
    grad_cache: bool | None = None  # None: on when a step holds several mini-batches
    max_steps: int | None = Field(default=None, ge=1)
    # bounded so that epochs x steps per epoch stays a countable number of steps
    epochs: float | None = Field(default=None, gt=0.0, le=MAX_EPOCHS)
    seed: int = Field(default=42, ge=0, lt=2**63)  # numpy refuses negative seeds, torch takes 64 bits
    # auto: bf16 autocast where the hardware has native bf16 (CPU: AVX-512-BF16 / AMX), else fp32;
    # the precision a run used is in its summary.json (see paraxl.training.precision)
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    log_every: int = Field(default=10, ge=1)
    checkpoint_every: int = Field(default=100, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)

    @field_validator("loss", mode="before")
    @classmethod
    def _default_loss_kind(cls, value: Any) -> Any:
        """A `loss:` section without `kind` is additive_margin (the default loss)."""
        if isinstance(value, Mapping) and "kind" not in value:
            return {"kind": DEFAULT_LOSS_KIND, **value}
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self) -> TrainConfig:
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of `max_steps` and `epochs`")
        needs = step_needs(self.loss)
        pairs = isinstance(needs, PairSteps)
        kind = self.loss.kind
        mismatch = data_loss_mismatch(self.data, needs, kind)  # scored pairs feed scored losses only
        if mismatch:
            raise ValueError(mismatch)
        if self.mining.enabled and not pairs:
            raise ValueError(f"mining works with the pair losses ({', '.join(pair_kinds())}), not {kind}")
        if self.data.translation_positives > 0 and not pairs:
            raise ValueError(
                f"data.translation_positives works with the pair losses; {kind} groups already mix languages"
            )
        if self.data.swap_negatives and not (isinstance(needs, PairSteps) and needs.explicit_negatives > 0):
            raise ValueError(
                "data.swap_negatives adds explicit negatives: it needs a pair loss with loss.explicit_negatives >= 1"
            )
        if self.distill is not None and not pairs:
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
    overridden: set[tuple[str, ...]] = set()
    for override in overrides:
        _apply_override(raw, override, overridden)
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, TrainConfig, node, path, overrides) from None


def upgrade_record(raw: Any) -> Any:
    """A config as written to ``config.json`` / an experiment record, in today's shape.

    Before the ``loss`` and ``data`` sections had one model per kind, a recorded config held
    every key of every kind; the keys that do not apply to the recorded kind (and that the run
    ignored) are dropped here, so an earlier record validates and compares equal to the same
    run's config today. Anything else is returned as it is.
    """
    if not isinstance(raw, Mapping):
        return raw
    upgraded = dict(raw)
    for name, kinds in _kind_sections().items():
        section = upgraded.get(name)
        if isinstance(section, Mapping) and section.get("kind") in kinds:
            fields = kinds[str(section["kind"])].model_fields
            upgraded[name] = {key: value for key, value in section.items() if key in fields}
    return upgraded


def _kind_sections() -> dict[str, dict[str, type[BaseModel]]]:
    """``{"loss": {kind: model}, "data": {...}}``: the top-level sections that have kinds."""
    found = {name: union_kinds(field) for name, field in TrainConfig.model_fields.items()}
    return {name: kinds for name, kinds in found.items() if kinds is not None}


def _apply_override(raw: dict[str, Any], override: str, overridden: set[tuple[str, ...]]) -> None:
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
    overridden.add(tuple(parts))
    if len(parts) == 1 and parts[0] in _EXCLUSIVE:
        raw.pop(_EXCLUSIVE[parts[0]], None)  # `max_steps=50` on a config with `epochs` replaces it
    if len(parts) == 2 and parts[1] == "kind":
        _switch_kind(target, parts[0], overridden)


def _switch_kind(section: dict[str, Any], name: str, overridden: set[tuple[str, ...]]) -> None:
    """``loss.kind=info_nce`` on a file whose ``loss`` is additive_margin: the file's keys that the
    new kind does not have (``margin``, ...) go; keys set by overrides stay (and are refused)."""
    kinds = _kind_sections().get(name)
    model = kinds.get(str(section["kind"])) if kinds is not None else None
    if model is None:
        return  # an unknown kind: validation reports it
    for key in list(section):
        if key not in model.model_fields and (name, key) not in overridden:
            del section[key]


# the run length is one of these; overriding one drops the other
_EXCLUSIVE = {"max_steps": "epochs", "epochs": "max_steps"}
