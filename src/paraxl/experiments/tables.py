"""Experiment tables as YAML: a base training config, variants of it, seeds, what to evaluate.

Example::

    name: pawsx-main
    title: Paper 1 on the PAWS-X resplit
    base: configs/pawsx-infonce.yaml          # relative to the table file's folder's parent
    overrides: [max_steps=60, validation=null]
    seeds: [42, 43, 44]
    eval: {tasks: "pawsx,align", protocol: resplit}   # or tasks: profile (records carry the profile columns)
    variants:
      - {name: off-the-shelf, trainer: none}
      - {name: st-mnrl, trainer: sentence-transformers, overrides: [loss.explicit_negatives=0]}
      - {name: am-m0.3, overrides: [loss.kind=additive_margin, loss.margin=0.3]}
      - {name: am-m0.3-soup, trainer: soup, soup_of: am-m0.3, soup_seeds: [42, 43, 44]}
    paired: [{variant: am-m0.3, against: st-mnrl}]   # optional: differences seed by seed

A ``soup`` variant trains nothing: it averages the weights of another variant's runs at
``soup_seeds`` (kept with ``--keep-models``) and evaluates that one model.
A variant's config is the base config, then the table's overrides, then the variant's, then
``seed=S``: every variant of a table shares everything it does not name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from paraxl.errors import InputError
from paraxl.evaluation.runner import parse_task_list
from paraxl.training.config import TrainConfig, load_config

Trainer = Literal["paraxl", "sentence-transformers", "none", "soup"]
# the trainers that train a model per seed; "none" and "soup" make one model from existing weights
TRAINING: frozenset[str] = frozenset({"paraxl", "sentence-transformers"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalSpec(_Strict):
    tasks: str = "pawsx,align"
    protocol: Literal["resplit", "official"] = "resplit"
    batch_size: int = Field(default=64, ge=1)

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: str) -> str:
        # a typo in a task name would otherwise surface after the first run has trained
        try:
            parse_task_list(tasks)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return tasks


class Variant(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._+-]+$")
    trainer: Trainer = "paraxl"
    overrides: list[str] = Field(default_factory=list)
    seeds: list[int] | None = None  # None: the table's seeds ("none" and "soup" variants run once)
    soup_of: str | None = None  # trainer "soup": the variant whose runs are averaged ...
    soup_seeds: list[int] | None = None  # ... at these seeds (2 or more)

    @model_validator(mode="after")
    def _soup_fields(self) -> Variant:
        if self.trainer != "soup":
            if self.soup_of is not None or self.soup_seeds is not None:
                raise ValueError(f"{self.name}: soup_of and soup_seeds belong to variants with trainer: soup")
        elif self.soup_of is None or len(set(self.soup_seeds or [])) < 2:
            raise ValueError(f"{self.name}: a soup needs soup_of (a variant) and 2 or more distinct soup_seeds")
        return self


class PairedSpec(_Strict):
    """Compare ``variant`` with ``against`` seed by seed (differences, t-interval, paired t-test)."""

    variant: str
    against: str


class TableSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._+-]+$")
    title: str = ""
    base: str
    overrides: list[str] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [42], min_length=1)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    variants: list[Variant] = Field(min_length=1)
    paired: list[PairedSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> TableSpec:
        names = [variant.name for variant in self.variants]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(duplicated)}")
        trained = {variant.name for variant in self.variants if variant.trainer in TRAINING}
        for variant in self.variants:
            if variant.soup_of is not None and variant.soup_of not in trained:
                raise ValueError(f"{variant.name}: soup_of {variant.soup_of!r} is not a trained variant of this table")
        for pair in self.paired:
            unknown = [name for name in (pair.variant, pair.against) if name not in names]
            untrained = [name for name in (pair.variant, pair.against) if name not in unknown and name not in trained]
            if unknown:
                problem = f"{unknown[0]!r} is not a variant of this table"
            elif pair.variant == pair.against:
                problem = "a variant against itself"
            elif untrained:  # "none" and "soup" run once, under the first seed: no seed to pair with
                problem = f"{untrained[0]!r} is not trained per seed (trainer none or soup)"
            else:
                continue
            raise ValueError(f"paired {pair.variant} against {pair.against}: {problem}")
        return self


class Table:
    """A loaded table: its spec and where its base config lives."""

    def __init__(self, spec: TableSpec, path: Path) -> None:
        self.spec = spec
        self.path = path
        self.base_config = (path.parent.parent / spec.base).resolve()

    def seeds(self, variant: Variant) -> list[int]:
        if variant.seeds is not None:
            return variant.seeds
        return self.spec.seeds if variant.trainer in TRAINING else self.spec.seeds[:1]

    def variant(self, name: str) -> Variant:
        return next(variant for variant in self.spec.variants if variant.name == name)

    def config(self, variant: Variant, seed: int, output_dir: Path) -> TrainConfig:
        """The training config of ``variant`` at ``seed``, writing into ``output_dir``.

        A soup's config is that of the variant it averages (what its ingredients trained with).
        """
        source = self.variant(variant.soup_of) if variant.soup_of is not None else variant
        overrides = [*self.spec.overrides, *source.overrides, f"seed={seed}", f"output_dir={output_dir}"]
        return load_config(self.base_config, overrides)


def load_table(path: str | Path) -> Table:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such experiment table", path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"not valid YAML ({problem})", path, mark.line + 1 if mark else None) from None
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else f"a {type(raw).__name__}"
        raise InputError(
            f"an experiment table must be a mapping of keys (name, base, variants, ...); this one is {kind}", path
        )
    try:
        spec = TableSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise InputError(f"{where}: {message}" if where else message, path) from None
    table = Table(spec, path)
    if not table.base_config.is_file():
        raise InputError(f"base config {spec.base!r} not found (looked at {table.base_config})", path)
    return table
