"""The evaluation profile: one fixed set of columns for every model, and a before/after of two models.

Fine-tuning for paraphrase identification can cost a model what made it useful for search and
mining. The profile puts the numbers that show it side by side: PAWS-X (monolingual and en -> xx),
translation retrieval (Tatoeba), bitext mining (BUCC), STS in one language and across two, KorSTS,
and topic classification in-language and zero-shot (SIB-200).

A column is one line of :data:`PROFILE`: a key (for JSON), a title, a unit, and where its number
lives: ``(task, path, ...)`` where each path walks the task's JSON ``scores`` (the object a result
file holds under ``"scores"``; keys joined by ``/``). Several paths: the mean of the numbers they
reach, one per set, each set weighing the same. Every set is named: a path that reaches no
number makes the column missing, so a partial result (an older ``sts`` file without some sets)
shows "-" rather than a mean over fewer sets. Several sources: alternatives for
the same quantity, the first found wins (the cross-encoder's PAWS-X result keeps the en -> xx row
elsewhere; a ``tatoeba36`` run holds Tatoeba-36 without Tatoeba-112).

Values are kept in points: fractions (accuracy, F1) times 100, Spearman x100 and SIB-200 accuracy
(already percent) as they are, so a delta reads in points for every column. Every column is higher
is better.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from paraxl.data.sts_pairs import STSB_LANGUAGES
from paraxl.evaluation.results import ModelInfo, ResultDocument
from paraxl.evaluation.scores import number


@dataclass(frozen=True)
class Unit:
    label: str  # what a value is, in the table's words
    scale: float  # task JSON -> points


ACCURACY = Unit("acc. %", 100.0)
F1 = Unit("F1 %", 100.0)
SPEARMAN = Unit("Spearman x100", 1.0)
PERCENT = Unit("acc. %", 1.0)  # SIB-200 stores percentages


@dataclass(frozen=True)
class Source:
    """Where a column's number lives: one task's JSON scores, the mean over ``paths``."""

    task: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class ProfileColumn:
    key: str
    title: str
    unit: Unit
    sources: tuple[Source, ...]  # alternatives for the same quantity, first found wins

    @property
    def task(self) -> str:
        """The task that ``paraxl eval --tasks profile`` runs for this column."""
        return self.sources[0].task


def column(key: str, title: str, unit: Unit, *sources: tuple[str, ...]) -> ProfileColumn:
    """``column("bucc_zh_en", "BUCC zh-en F1", F1, ("bucc", "per_pair/zh-en/f1"))``."""
    return ProfileColumn(key, title, unit, tuple(Source(task, tuple(paths)) for task, *paths in sources))


# STS17's cross-lingual tracks (the others pair a language with itself) and stsb_multi_mt's en -> xx
# sets (paraxl.evaluation.tasks.sts), each named: 13 sets, all needed
STS17_CROSS = tuple(f"sts17/sets/{track}/spearman" for track in ("track2.ar-en", "track4a.es-en", "track4b.es-en"))
STSB_CROSS = tuple(f"stsb_cross_lingual/sets/en-{x}.test/spearman" for x in STSB_LANGUAGES if x != "en")
STSB_MONO = tuple(f"stsb_multi_mt/sets/{x}.test/spearman" for x in STSB_LANGUAGES)  # 11 sets

PROFILE: tuple[ProfileColumn, ...] = (
    column("pawsx_test", "PAWS-X test acc.", ACCURACY, ("pawsx", "mean/accuracy")),
    column("pawsx_en_xx", "PAWS-X en→xx acc.", ACCURACY,
           ("pawsx", "cross_lingual/en_to_xx_own_threshold/mean"), ("pawsx", "en_to_xx/mean")),
    column("tatoeba112", "Tatoeba-112 acc.", ACCURACY, ("tatoeba", "mean_accuracy")),
    column("tatoeba36", "Tatoeba-36 acc.", ACCURACY, ("tatoeba", "mean36_accuracy"), ("tatoeba36", "mean_accuracy")),
    column("bucc_zh_en", "BUCC zh-en F1", F1, ("bucc", "per_pair/zh-en/f1")),
    column("sts_mono", "STS mono (stsb_multi_mt)", SPEARMAN, ("sts", *STSB_MONO)),
    column("sts_cross", "STS cross-lingual (STS17 + stsb en-xx)", SPEARMAN,
           ("sts", *STS17_CROSS, *STSB_CROSS)),
    column("korsts", "KorSTS", SPEARMAN, ("sts", "korsts/mean_spearman")),
    column("sib200_in", "SIB-200 in-language acc.", PERCENT, ("sib200", "mean/in_language_accuracy")),
    column("sib200_zero", "SIB-200 zero-shot acc.", PERCENT, ("sib200", "mean/zero_shot_accuracy")),
)  # fmt: skip
PROFILE_TASKS: tuple[str, ...] = tuple(dict.fromkeys(c.task for c in PROFILE))  # what `--tasks profile` runs


def _reach(node: Any, keys: list[str]) -> float | None:
    """The finite number at ``keys`` below ``node``; None where a key is missing or holds no number."""
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    value = number(node)
    return None if value is None or not math.isfinite(value) else value


def source_value(source: Source, scores: Mapping[str, Any]) -> float | None:
    """The mean of the numbers ``source.paths`` reach in one task's JSON ``scores``; None if one reaches none."""
    values: list[float] = []
    for path in source.paths:
        reached = _reach(scores, path.split("/"))
        if reached is None:
            return None
        values.append(reached)
    return sum(values) / len(values)


def column_value(profile_column: ProfileColumn, scores: Mapping[str, Mapping[str, Any]]) -> float | None:
    """The column in points, from ``{task: JSON scores}``; None (shown "-") when no source has it."""
    for source in profile_column.sources:
        if source.task in scores and (value := source_value(source, scores[source.task])) is not None:
            return value * profile_column.unit.scale
    return None


def profile_values(documents: Iterable[ResultDocument]) -> dict[str, float | None]:
    """Every profile column of one model's result documents, by column key (None where missing)."""
    scores = {document.task.name: document.raw_scores for document in documents}
    return {c.key: column_value(c, scores) for c in PROFILE}


@dataclass(frozen=True)
class ProfileRow:
    column: ProfileColumn
    base: float | None
    model: float | None

    @property
    def delta(self) -> float | None:
        """Model minus base, in points; None when either is missing."""
        return None if self.base is None or self.model is None else self.model - self.base


@dataclass(frozen=True)
class ProfileComparison:
    """A model's profile against its base's: what fine-tuning gained (delta > 0) and lost (delta < 0)."""

    model: ModelInfo
    base: ModelInfo | None  # None: the base has no result documents yet
    base_source: str  # why this base: "--base", or the training record it was read from
    rows: tuple[ProfileRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": {"spec": self.model.spec, "fingerprint": self.model.fingerprint},
            "base": {
                "spec": self.base.spec if self.base else None,
                "fingerprint": self.base.fingerprint if self.base else None,
                "source": self.base_source,
            },
            "columns": [
                {
                    "key": row.column.key,
                    "title": row.column.title,
                    "unit": row.column.unit.label,
                    "base": row.base,
                    "model": row.model,
                    "delta": row.delta,
                }
                for row in self.rows
            ],
        }


def compare_profiles(
    model: Iterable[ResultDocument], base: Iterable[ResultDocument], base_source: str
) -> ProfileComparison:
    """Every profile column of ``model``'s documents beside ``base``'s (each list: one model's results)."""
    model_documents, base_documents = list(model), list(base)
    if not model_documents:
        raise ValueError("a profile comparison needs the model's result documents")
    after, before = profile_values(model_documents), profile_values(base_documents)
    rows = tuple(ProfileRow(c, before[c.key], after[c.key]) for c in PROFILE)
    base_model = base_documents[0].model if base_documents else None
    return ProfileComparison(model_documents[0].model, base_model, base_source, rows)


def profile_json(documents: Iterable[ResultDocument], comparison: ProfileComparison | None) -> dict[str, Any]:
    """What ``profile.json`` in an eval output folder holds: the model's columns, and the before/after if any."""
    documents = list(documents)
    values = profile_values(documents)
    model = documents[0].model if documents else None
    return {
        "model": {"spec": model.spec, "fingerprint": model.fingerprint} if model else None,
        "columns": [{"key": c.key, "title": c.title, "unit": c.unit.label, "value": values[c.key]} for c in PROFILE],
        "comparison": comparison.to_json() if comparison is not None else None,
    }
