"""The training configuration: a typed YAML file plus ``key.path=value`` overrides.

Unknown keys are rejected (with a close-match suggestion) and cross-field rules are
checked once, here, so the trainer can trust what it gets. The ``loss`` and ``data``
sections are discriminated by their ``kind``: each kind has only its keys, and a key of
another kind is an error that names the kinds it applies to. Errors name the file and the
YAML line of the offending key (see :mod:`paraxl.training.config_errors`).

A config trains one task (top-level ``data``, ``loss``, ``mining``, ``batch_size``, ...) or
several: a ``tasks:`` list of blocks, each with those keys, a ``name`` and a sampling
``weight`` (see :class:`TaskConfig` and :mod:`paraxl.training.tasks`). A one-task config is
recorded exactly as before ``tasks`` existed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from paraxl.errors import InputError
from paraxl.losses.additive_margin import AdditiveMarginConfig
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.losses.registry import LossConfig, pair_kinds, step_needs
from paraxl.losses.step import SECTION_CONFIG, LossSection, PairSteps
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
SINGLE_TASK = "main"  # the name of a one-task config's task (in messages; not recorded anywhere)


def _default_loss_kind(value: Any) -> Any:
    """A `loss:` section without `kind` is additive_margin (the default loss)."""
    if isinstance(value, Mapping) and "kind" not in value:
        return {"kind": DEFAULT_LOSS_KIND, **value}
    return value


def check_task_rules(
    data: TrainData,
    loss: LossSection,
    mining: HardNegativeConfig,
    distill: DistillConfig | None,
    mini_batches_per_step: int,
) -> None:
    """The rules between one task's data, loss, mining and distillation; ValueError if one is broken."""
    needs = step_needs(loss)
    pairs = isinstance(needs, PairSteps)
    kind = loss.kind
    mismatch = data_loss_mismatch(data, needs, kind)  # scored pairs feed scored losses only
    if mismatch:
        raise ValueError(mismatch)
    if mining.enabled and not pairs:
        raise ValueError(f"mining works with the pair losses ({', '.join(pair_kinds())}), not {kind}")
    if data.translation_positives > 0 and not pairs:
        raise ValueError(f"data.translation_positives works with the pair losses; {kind} groups already mix languages")
    if data.swap_negatives and not (isinstance(needs, PairSteps) and needs.explicit_negatives > 0):
        raise ValueError(
            "data.swap_negatives adds explicit negatives: it needs a pair loss with loss.explicit_negatives >= 1"
        )
    if distill is not None and not pairs:
        raise ValueError("distill scores (anchor, positive / negative) pairs: it needs a pair loss")
    if mining.enabled and mini_batches_per_step < 2:
        raise ValueError("mining needs a mega-batch: set `mini_batches_per_step` >= 2")


class TaskConfig(_Strict):
    """One objective of a multi-task run: its data, loss, hard negatives, distillation and batch shape.

    The keys are those a one-task config has at the top level, with the same defaults and rules.
    ``weight`` scales how often proportional sampling picks the task (see
    :mod:`paraxl.training.tasks`).
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    weight: float = Field(default=1.0, gt=0.0)
    data: TrainData
    loss: LossConfig = Field(default_factory=AdditiveMarginConfig)
    mining: HardNegativeConfig = Field(default_factory=HardNegativeConfig)
    distill: DistillConfig | None = None
    batch_size: int = Field(default=32, ge=2)  # groups per mini-batch, over all processes
    mini_batches_per_step: int = Field(default=1, ge=1)  # the mega-batch size K of this task's steps
    grad_cache: bool | None = None  # None: on when a step holds several mini-batches

    @field_validator("loss", mode="before")
    @classmethod
    def _loss_kind(cls, value: Any) -> Any:
        return _default_loss_kind(value)

    @model_validator(mode="after")
    def _task_rules(self) -> TaskConfig:
        try:
            check_task_rules(self.data, self.loss, self.mining, self.distill, self.mini_batches_per_step)
        except ValueError as exc:
            raise ValueError(f"task {self.name!r}: {exc}") from None
        return self

    @property
    def uses_grad_cache(self) -> bool:
        return self.grad_cache if self.grad_cache is not None else self.mini_batches_per_step > 1


# the keys of one task: at the top level of a one-task config, in each block of `tasks:` otherwise
_TASK_KEYS = ("data", "loss", "mining", "distill", "batch_size", "mini_batches_per_step", "grad_cache")
_MULTI_TASK_KEYS = ("tasks", "task_sampling")


class TrainConfig(_Strict):
    model: ModelConfig = Field(default_factory=ModelConfig)
    # several objectives in one run (None: the one task of the top-level keys below)
    tasks: list[TaskConfig] | None = Field(default=None, min_length=1)
    # which task a step trains: proportional (default) or round_robin; see paraxl.training.tasks
    task_sampling: Literal["proportional", "round_robin"] = "proportional"
    data: TrainData | None = Field(default=None, validate_default=True)  # required without `tasks`
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
    def _loss_kind(cls, value: Any) -> Any:
        return _default_loss_kind(value)

    @field_validator(*_TASK_KEYS, mode="before")
    @classmethod
    def _one_shape(cls, value: Any, info: ValidationInfo) -> Any:
        """A task key at the top level beside `tasks:` is refused (at its line); `data` is required without."""
        if "tasks" not in info.data:
            return value  # `tasks` itself is invalid: its error is the one to report
        if info.data["tasks"] is not None:
            if info.field_name == "data" and value is None:
                return value
            raise ValueError("belongs in each block of `tasks`, not at the top level of a multi-task config")
        if info.field_name == "data" and value is None:
            raise PydanticCustomError("missing", "Field required")
        return value

    @field_validator("task_sampling", mode="before")
    @classmethod
    def _sampling_needs_tasks(cls, value: Any, info: ValidationInfo) -> Any:
        if info.data.get("tasks", ()) is None:
            raise ValueError("picks which of `tasks` a step trains; this config has no `tasks`")
        return value

    # the multi-task rules below are field validators, so that an error names the key's YAML line

    @field_validator("tasks")
    @classmethod
    def _unique_names(cls, tasks: list[TaskConfig] | None) -> list[TaskConfig] | None:
        names = [task.name for task in tasks or ()]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"task names must be unique: {', '.join(map(repr, twice))} used twice")
        return tasks

    @field_validator("task_sampling")
    @classmethod
    def _round_robin_weights(cls, sampling: str, info: ValidationInfo) -> str:
        tasks = info.data.get("tasks") or ()
        if sampling == "round_robin" and any(task.weight != 1.0 for task in tasks):
            raise ValueError("task `weight` is for proportional sampling; round_robin trains each task in turn")
        return sampling

    @field_validator("epochs")
    @classmethod
    def _one_task_epochs(cls, epochs: float | None, info: ValidationInfo) -> float | None:
        if epochs is not None and info.data.get("tasks") is not None:
            # an epoch of which task? tasks of different sizes pass their epochs at different steps
            raise ValueError("a multi-task run is as long as `max_steps`; `epochs` is for one task")
        return epochs

    @model_validator(mode="after")
    def _cross_field_rules(self) -> TrainConfig:
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of `max_steps` and `epochs`")
        if self.tasks is None:
            assert self.data is not None  # _one_shape
            check_task_rules(self.data, self.loss, self.mining, self.distill, self.mini_batches_per_step)
        return self  # a multi-task config: its rules are each block's and the field validators above

    @model_serializer(mode="wrap")
    def _record(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """One shape's keys only: a one-task config is recorded as before `tasks` existed, and a
        multi-task one without the (unused) top-level task keys."""
        dumped: dict[str, Any] = handler(self)
        unused = _MULTI_TASK_KEYS if self.tasks is None else _TASK_KEYS
        return {key: value for key, value in dumped.items() if key not in unused}

    @property
    def uses_grad_cache(self) -> bool:
        return self.grad_cache if self.grad_cache is not None else self.mini_batches_per_step > 1

    @property
    def is_multi_task(self) -> bool:
        return self.tasks is not None

    def task_list(self) -> list[TaskConfig]:
        """The run's tasks; a one-task config gives one task (named ``main``) of its top-level keys."""
        return list(self.tasks) if self.tasks is not None else [self.only_task("the run")]

    def only_task(self, what: str) -> TaskConfig:
        """The one task of a one-task config; InputError naming ``what`` for a multi-task config."""
        if self.tasks is not None:
            raise InputError(f"{what} trains one task; this config has `tasks:`")
        fields = {key: getattr(self, key) for key in _TASK_KEYS}
        return TaskConfig.model_construct(name=SINGLE_TASK, weight=1.0, **fields)  # its rules: checked above


# ---------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read ``path`` (YAML), apply ``key.path=value`` overrides, validate."""
    path = Path(path)
    raw, node = read_source(path, overrides)
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, TrainConfig, node, path, overrides) from None


def read_source(path: Path, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], yaml.Node | None]:
    """A config file's keys with the overrides applied, and its YAML tree (for error lines)."""
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
    return raw, node


def upgrade_record(raw: Any) -> Any:
    """A config as written to ``config.json`` / an experiment record, in today's shape.

    Before the ``loss`` and ``data`` sections had one model per kind, a recorded config held
    every key of every kind; the keys that do not apply to the recorded kind (and that the run
    ignored) are dropped here, so an earlier record validates and compares equal to the same
    run's config today. Anything else is returned as it is.
    """
    if not isinstance(raw, Mapping):
        return raw
    upgraded = _upgrade_sections(raw)
    tasks = upgraded.get("tasks")
    if isinstance(tasks, list):
        upgraded["tasks"] = [_upgrade_sections(task) if isinstance(task, Mapping) else task for task in tasks]
    return upgraded


def _upgrade_sections(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` with its kind sections (``loss``, ``data``) cut to the keys of their kind."""
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
    target: Any = raw
    for part in parts[:-1]:
        # `tasks.1.loss.margin=0.2`: a block of a list, by position
        child = target[_list_index(target, part, override)] if isinstance(target, list) else target.setdefault(part, {})
        if not isinstance(child, dict | list):
            raise InputError(f"override {override!r}: {part!r} is not a section")
        target = child
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        raise InputError(f"override {override!r}: the value is not valid YAML") from None
    if isinstance(target, list):
        target[_list_index(target, parts[-1], override)] = parsed
    else:
        target[parts[-1]] = parsed
    overridden.add(tuple(parts))
    if len(parts) == 1 and parts[0] in _EXCLUSIVE:
        raw.pop(_EXCLUSIVE[parts[0]], None)  # `max_steps=50` on a config with `epochs` replaces it
    if len(parts) >= 2 and parts[-1] == "kind" and isinstance(target, dict):
        _switch_kind(target, tuple(parts[:-1]), overridden)


def _list_index(items: list[Any], part: str, override: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise InputError(f"override {override!r}: {part!r} is not a position in a list of {len(items)}")
    return int(part)


def _switch_kind(section: dict[str, Any], where: tuple[str, ...], overridden: set[tuple[str, ...]]) -> None:
    """``loss.kind=info_nce`` (or ``tasks.0.loss.kind=...``) on a file whose ``loss`` is additive_margin:
    the file's keys that the new kind does not have (``margin``, ...) go; keys set by overrides stay
    (and are refused)."""
    kinds = _kind_sections().get(where[-1])
    model = kinds.get(str(section["kind"])) if kinds is not None else None
    if model is None:
        return  # an unknown kind: validation reports it
    for key in list(section):
        if key not in model.model_fields and (*where, key) not in overridden:
            del section[key]


# the run length is one of these; overriding one drops the other
_EXCLUSIVE = {"max_steps": "epochs", "epochs": "max_steps"}
