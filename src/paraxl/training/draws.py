"""The pairs a training run will draw, listed without training: its steps replayed with no model.

``distill`` reads a teacher score only for the pairs a step draws: each anchor with its positive
and its explicit negatives (:func:`paraxl.losses.distillation.candidate_columns`). Every pair a
run *could* draw is far more: on PAWS-X with ``data.translation_positives`` that is 382,637
cross-lingual pairs (:func:`paraxl.training.teacher_scores.translation_pairs`, ~4 h of
cross-encoder time on 2 CPU cores), while one epoch at rate 0.5 draws ~7k of them per seed.

What a step draws is a pure function of the config, the seed and the step (the task schedule,
each task's sampler and :meth:`TrainingTask.layout` are seeded by position, never by the
model), so running the trainer's own schedule, samplers and layouts with no model lists
exactly the pairs whose teacher scores a run will look up. Mined hard negatives are chosen by
the model and never get a teacher score, so they are not drawn pairs; multi-positive and
graded-similarity (scored-pair) steps have no explicit pairs to score and add none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from paraxl.data.records import TextUnit
from paraxl.losses.distillation import candidate_columns
from paraxl.losses.step import ScoredPairSteps
from paraxl.training.checkpoint import TaskProgress
from paraxl.training.config import TrainConfig
from paraxl.training.layout import StepLayout
from paraxl.training.tasks import TrainingTask, load_tasks, next_step, schedule_for, total_steps
from paraxl.training.teacher_scores import DrawnPair, PairScope

PairKey = frozenset[str]  # an unordered pair: the teacher file is read in either order


def run_layouts(config: TrainConfig, data_dir: Path | None) -> Iterator[tuple[TrainingTask, StepLayout]]:
    """Each step's task and layout, in order, as a fresh run of ``config`` trains them (no model)."""
    tasks = load_tasks(config, data_dir, teachers=False)  # a teacher file changes no draw
    schedule = schedule_for(config, tasks)
    streams = [task.batches(TaskProgress()) for task in tasks]
    for step in range(total_steps(config, tasks)):
        chosen, step_batches = next_step(schedule, tasks, streams, step)
        yield tasks[chosen], tasks[chosen].layout(config.seed, step_batches)


def layout_pairs(layout: StepLayout) -> Iterator[tuple[str, str, int]]:
    """``(anchor, other, gold)`` for each anchor's positive (gold 1) and explicit negatives (gold 0)."""
    columns = candidate_columns(layout)  # (n, 1 + e) text indices, -1 padding
    for anchor, row in zip(layout.anchors.tolist(), columns.tolist(), strict=True):
        for position, other in enumerate(row):
            if other >= 0:
                yield layout.texts[anchor], layout.texts[other], int(position == 0)


def pairs_drawn_by(configs: Iterable[TrainConfig], data_dir: Path | None, scope: PairScope = "all") -> list[DrawnPair]:
    """The pairs that fresh runs of ``configs`` draw, each unordered pair once, in order of first draw.

    ``scope``: ``in-unit`` keeps the pairs of two texts of one unit or a text and its unit's label-0
    partner; ``translation`` the others (with ``data.translation_positives``: a text with another
    language's unit of its group, the silver pairs); ``all`` both.
    """
    seen: set[PairKey] = set()
    pairs: list[DrawnPair] = []
    for config in configs:
        languages_of: dict[int, dict[str, str]] = {}  # task index -> its texts' languages
        for task, layout in run_layouts(config, data_dir):
            if isinstance(task.needs, ScoredPairSteps):
                continue  # a graded pair's two texts are not paraphrases by construction: no gold to give
            if task.index not in languages_of:
                languages_of[task.index] = _text_languages(task.data.units)
            languages, in_unit = languages_of[task.index], task.in_unit_pairs  # the trainer's own kinds
            for first, second, gold in layout_pairs(layout):
                key = frozenset((first, second))
                if first == second or key in seen or not _in_scope(key in in_unit, scope):
                    continue
                seen.add(key)
                pairs.append(DrawnPair(first, second, _languages(languages, first, second), gold))
    return pairs


def _in_scope(in_unit: bool, scope: PairScope) -> bool:
    return scope == "all" or in_unit == (scope == "in-unit")


def _text_languages(units: Sequence[TextUnit]) -> dict[str, str]:
    """Each text's language (a label-0 partner: its unit's first language; ``""`` where unknown)."""
    found: dict[str, str] = {}
    for unit in units:
        for text, language in zip(unit.texts, unit.languages, strict=True):
            found.setdefault(text, language)
        for text in unit.negatives:
            found.setdefault(text, unit.languages[0] if unit.languages else "")
    return found


def _languages(languages: dict[str, str], first: str, second: str) -> str:
    one, other = languages.get(first, ""), languages.get(second, "")
    return one if one == other else f"{one}-{other}"
