"""Run records and table files of experiment tables, written and read through typed score records.

A run record keeps, per task, a small summary of its result document (the full document stays
in the run's ``eval/`` folder). The summary layouts are those of the committed tables:

- a pair-classification task (PAWS-X): ``validation_accuracy``, ``test_accuracy`` (the headline),
  ``threshold``, ``per_language`` and, with a cross-lingual matrix, ``cross_lingual_accuracy``,
  ``en_to_xx_accuracy``, ``en_to_xx_own_threshold_accuracy``;
- a retrieval task (Tatoeba): ``main_score``, the means over paper 2's transfer-split language
  groups (``mean_<group>``), ``n_outside_xnli`` and ``per_language``;
- any other task: ``main_score`` and ``scores`` (the scalars of its JSON scores, two levels deep).

:func:`summarize_task` writes a summary from a :class:`ResultDocument`'s typed record and
:func:`summary_scores` reads one back into a :class:`TaskScores`, so the table code reads
attributes only and never a task's JSON layout.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paraxl.evaluation.loaders.tatoeba import XNLI_TO_TATOEBA
from paraxl.evaluation.readers import read_scores
from paraxl.evaluation.results import ResultDocument
from paraxl.evaluation.scores import TaskScores, number, numbers

# the extras of a pair-classification record that its summary keeps (the cross-lingual ones if measured)
_CROSS_EXTRAS = ("cross_lingual_accuracy", "en_to_xx_accuracy", "en_to_xx_own_threshold_accuracy")


def summarize_task(document: ResultDocument) -> dict[str, Any]:
    """The numbers a table row needs from one task's result document (layouts: module docstring)."""
    record = document.scores
    if document.task.task_type == "pair_classification":
        summary: dict[str, Any] = {
            "validation_accuracy": record.extras.get("validation_accuracy"),
            "test_accuracy": record.headline,
            "threshold": record.extras.get("threshold"),
            "per_language": dict(record.per_language),
        }
        if "cross_lingual_accuracy" in record.extras:
            summary |= {key: record.extras.get(key) for key in _CROSS_EXTRAS}
        return summary
    if document.task.task_type == "retrieval":
        return {"main_score": record.headline, **tatoeba_groups(record.per_language)}
    return {"main_score": record.headline, "scores": _numbers(document.raw_scores)}


# Paper 2's transfer split (experiments/xnli-unseen.yaml trains on these 8 XNLI languages): Tatoeba
# means over the 7 non-English ones, over the other 7 XNLI languages and over everything outside XNLI.
XNLI_TRAINED_IN_TRANSFER = ("ar", "de", "es", "fr", "hi", "ru", "zh")


def tatoeba_groups(accuracy: Mapping[str, float]) -> dict[str, Any]:
    """Mean Tatoeba accuracy (both directions; ``accuracy`` maps language -> it) per transfer-split group."""
    trained = {XNLI_TO_TATOEBA[code] for code in XNLI_TRAINED_IN_TRANSFER}
    xnli = set(XNLI_TO_TATOEBA.values())
    groups = {
        "xnli_trained_in_transfer": [lang for lang in accuracy if lang in trained],
        "xnli_held_out_in_transfer": [lang for lang in accuracy if lang in xnli - trained],
        "outside_xnli": [lang for lang in accuracy if lang not in xnli],
    }
    summary: dict[str, Any] = {
        f"mean_{group}": statistics.fmean(accuracy[lang] for lang in members) if members else None
        for group, members in groups.items()
    }
    summary["n_outside_xnli"] = len(groups["outside_xnli"])
    summary["per_language"] = dict(accuracy)
    return summary


def _numbers(node: Any, depth: int = 0) -> Any:
    """Scalars of a score tree, two levels deep (per-item lists are left in the eval JSON)."""
    if isinstance(node, Mapping) and depth < 2:
        return {key: _numbers(value, depth + 1) for key, value in node.items() if not isinstance(value, list)}
    return node if isinstance(node, int | float | str) or node is None else None


def summary_scores(task: str, summary: Mapping[str, Any]) -> TaskScores:
    """The typed record of one task's summary in a run record (any of the layouts above)."""
    if "scores" in summary:  # the task's own reader, over the scalars kept
        return read_scores(task, summary["scores"], summary.get("main_score"))
    headline = summary["main_score"] if "main_score" in summary else summary.get("test_accuracy")
    groups = {key.removeprefix("mean_"): value for key, value in summary.items() if key.startswith("mean_")}
    kept = {"main_score", "test_accuracy", "per_language"}
    extras = {
        key: value
        for key, value in summary.items()
        if key not in kept and not key.startswith("mean_") and (value is None or isinstance(value, int | float | str))
    }
    return TaskScores(number(headline), numbers(summary.get("per_language")), numbers(groups), extras)


def run_scores(run: Mapping[str, Any]) -> dict[str, TaskScores]:
    """A run record's typed scores per task."""
    return {task: summary_scores(task, summary) for task, summary in (run.get("scores") or {}).items()}


@dataclass(frozen=True)
class RunRecord:
    """One (variant, seed) run of a table: what trained, and its typed scores per task."""

    variant: str
    seed: int
    trainer: str
    scores: Mapping[str, TaskScores]
    config: Mapping[str, Any] | None = None  # the TrainConfig as JSON
    training: Mapping[str, Any] | None = None  # steps, train_seconds, examples_per_second, data files
    table: str | None = None
    # the evaluation profile's columns (key -> points), when the run's eval ran the profile's tasks
    profile: Mapping[str, float | None] | None = None

    @classmethod
    def from_json(cls, run: Mapping[str, Any]) -> RunRecord:
        return cls(
            variant=run["variant"],
            seed=run["seed"],
            trainer=run.get("trainer", "paraxl"),
            scores=run_scores(run),
            config=run.get("config"),
            training=run.get("training"),
            table=run.get("table"),
            profile=run_profile(run),
        )


def run_profile(run: Mapping[str, Any]) -> dict[str, float | None] | None:
    """A run record's profile columns (key -> points or None); None when its eval did not run the profile."""
    profile = run.get("profile")
    if not isinstance(profile, Mapping):
        return None
    return {str(key): number(value) for key, value in profile.items()}


@dataclass(frozen=True)
class Stats:
    """Mean and sample std of one number over a variant's seeds (std None for one seed)."""

    mean: float
    std: float | None = None
    n: int = 1
    values: tuple[float, ...] = ()

    @classmethod
    def from_json(cls, node: Any) -> Stats | None:
        if not isinstance(node, Mapping) or number(node.get("mean")) is None:
            return None
        return cls(float(node["mean"]), number(node.get("std")), int(node.get("n", 1)), tuple(node.get("values", ())))


_ROW_KEYS = {"seeds", "trainer", "per_language", "steps", "profile"}


@dataclass(frozen=True)
class VariantRow:
    """A table row as its JSON holds it: the statistics of every column over the variant's seeds."""

    columns: Mapping[str, Stats | None]  # column title (and uniformity, train_seconds, ...) -> stats
    per_language: Mapping[str, Stats] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    trainer: str | None = None
    steps: int = 0
    profile: Mapping[str, Stats | None] = field(default_factory=dict)  # profile column key -> stats

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> VariantRow:
        per_language = {lang: Stats.from_json(node) for lang, node in (row.get("per_language") or {}).items()}
        return cls(
            columns={key: Stats.from_json(node) for key, node in row.items() if key not in _ROW_KEYS},
            per_language={lang: stats for lang, stats in per_language.items() if stats is not None},
            seeds=tuple(row.get("seeds", ())),
            trainer=row.get("trainer"),
            steps=row.get("steps") or 0,
            profile={key: Stats.from_json(node) for key, node in (row.get("profile") or {}).items()},
        )


@dataclass(frozen=True)
class TableDocument:
    """An experiment table's JSON (``benchmarks/results/experiments/<table>.json``), typed."""

    table: str | None
    variants: Mapping[str, VariantRow]
    runs: tuple[RunRecord, ...]

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> TableDocument:
        return cls(
            table=document.get("table"),
            variants={name: VariantRow.from_json(row) for name, row in (document.get("variants") or {}).items()},
            runs=tuple(RunRecord.from_json(run) for run in document.get("runs") or ()),
        )
