"""Evaluation tasks: a declarative record (``TaskSpec``) plus one ``run`` over an ``Embedder``.

A task reads its data, embeds through the embedder it is given, and scores with the functions
in ``paraxl.evaluation.metrics``; it never writes files. The results layer turns a
``TaskResult`` into a JSON document with provenance, the report layer into tables and plots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from paraxl.evaluation.embeddings import Embedder
from paraxl.evaluation.readers import read_scores
from paraxl.evaluation.scores import TaskScores
from paraxl.retrieval import unit_rows as unit_rows  # float64 unit rows; tasks import it from here

TaskType = Literal["pair_classification", "geometry", "bitext_mining", "retrieval", "sts", "classification"]
PawsxProtocol = Literal["resplit", "official"]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TaskSpec:
    """What a task measures, in one record: the result file repeats it."""

    name: str
    task_type: TaskType
    description: str
    main_score: str  # what the headline number is, in words
    languages: tuple[str, ...]
    reference: str
    higher_is_better: bool = True


@dataclass(frozen=True)
class EvalContext:
    """Everything every task may depend on besides the embedder (a task's own options, such as the
    PAWS-X protocol, are arguments of the task)."""

    data_dir: Path
    seed: int = 0
    progress: Progress = field(default=lambda message: None)


@dataclass
class TaskResult:
    """Scores of one task run. ``scores`` and ``details`` hold JSON-ready values only.

    ``scores``: the numbers a reader compares (per language / pair / track, means, baselines).
    ``details``: larger material kept for plots and audits (threshold sweeps, per-pair scores).
    """

    task: str
    main_score: float
    scores: dict[str, Any]
    files: list[Path]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def record(self) -> TaskScores:
        """The typed score record of ``scores`` (headline, per language, per subset, extras)."""
        return read_scores(self.task, self.scores, self.main_score)


class Task(Protocol):
    spec: TaskSpec

    def run(self, embedder: Embedder, context: EvalContext) -> TaskResult: ...


def rounded(values: Sequence[float] | np.ndarray, digits: int = 5) -> list[float]:
    """A JSON-friendly list of floats, rounded so result files stay readable and small."""
    return [round(float(value), digits) for value in np.asarray(values, dtype=np.float64).reshape(-1)]


def mean(values: Sequence[float]) -> float:
    """Plain mean; NaN for no values (JSON writes it as null)."""
    return float(np.mean(values)) if len(values) else float("nan")
