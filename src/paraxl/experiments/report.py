"""A table's records as JSON and markdown: mean ± std over seeds per variant.

A table whose eval ran the evaluation profile (``eval: {tasks: profile}``) gets a second markdown
table, its columns (:data:`~paraxl.evaluation.profile.PROFILE`, in points), and, when the table has
an untrained variant (trainer ``none``), the change of every other variant against it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paraxl.errors import InputError
from paraxl.evaluation.profile import PROFILE
from paraxl.evaluation.scores import TaskScores, number
from paraxl.experiments.paired import paired_columns, paired_markdown
from paraxl.experiments.records import RunRecord
from paraxl.experiments.runner import mean_std
from paraxl.io.atomic import atomic_path, write_json_atomic

Pick = Callable[[TaskScores], Any]


def _headline(scores: TaskScores) -> Any:
    return scores.headline


def _extra(name: str) -> Pick:
    return lambda scores: scores.extras.get(name)


def _subset(name: str) -> Pick:
    return lambda scores: scores.per_subset.get(name)


@dataclass(frozen=True)
class Column:
    """One column of a table: a number of one task's typed record, scaled and rounded for the markdown."""

    title: str
    task: str
    pick: Pick
    scale: float = 100.0
    digits: int = 2
    higher_is_better: bool = True  # alignment (a mean squared distance) is lower-is-better

    def value(self, scores: Mapping[str, TaskScores]) -> float | None:
        """This column's number in one run's scores; None (printed "-") when the run lacks it."""
        return number(self.pick(scores[self.task])) if self.task in scores else None


# A missing value prints as "-". PAWS-X and Tatoeba store fractions (x 100 for the table); STS and
# SIB-200 store percentages.
COLUMNS: list[Column] = [
    Column("val. acc.", "pawsx", _extra("validation_accuracy")),
    Column("test acc. (7-lang mean)", "pawsx", _headline),
    Column("en→xx acc.", "pawsx", _extra("en_to_xx_accuracy")),
    Column("en→xx acc., own threshold", "pawsx", _extra("en_to_xx_own_threshold_accuracy")),
    Column("all cross-lingual acc.", "pawsx", _extra("cross_lingual_accuracy")),
    Column("alignment", "align", _headline, 1.0, 3, higher_is_better=False),
    Column("Tatoeba-112 acc.", "tatoeba", _headline),
    Column("Tatoeba-36 acc.", "tatoeba36", _headline),
    Column("T36: ar de es fr hi ru zh", "tatoeba36", _subset("xnli_trained_in_transfer")),
    Column("T36: bg el sw th tr ur vi", "tatoeba36", _subset("xnli_held_out_in_transfer")),
    Column("T36: outside XNLI", "tatoeba36", _subset("outside_xnli")),
    Column("BUCC zh-en F1", "bucc", _headline),
    Column("STS Spearman (all sets)", "sts", _headline, 1.0),
    Column("STS17", "sts", _subset("sts17"), 1.0),
    Column("stsb_multi_mt", "sts", _subset("stsb_multi_mt"), 1.0),
    Column("stsb en-xx", "sts", _subset("stsb_cross_lingual"), 1.0),
    Column("SIB-200 acc.", "sib200", _extra("in_language_accuracy"), 1.0),
    Column("SIB-200 zero-shot from en", "sib200", _extra("zero_shot_accuracy"), 1.0),
]
UNIFORMITY = Column("uniformity", "align", _extra("uniformity"), 1.0, 3)
PER_LANGUAGE_TASK = "pawsx"  # the task whose per-language headline gets its own table


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant: seeds, and mean/std of each column and of the per-language accuracies."""
    by_variant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_variant[record["variant"]].append(record)
    variants = {}
    for name, runs in by_variant.items():
        scores = [RunRecord.from_json(run).scores for run in runs]
        row: dict[str, Any] = {"seeds": [run["seed"] for run in runs], "trainer": runs[0]["trainer"]}
        for column in COLUMNS:
            row[column.title] = _stats([column.value(run_scores) for run_scores in scores])
        row["uniformity"] = _stats([UNIFORMITY.value(run_scores) for run_scores in scores])
        first = scores[0].get(PER_LANGUAGE_TASK)
        languages = first.per_language if first is not None else {}
        row["per_language"] = {
            lang: _stats([run_scores[PER_LANGUAGE_TASK].per_language[lang] for run_scores in scores])
            for lang in languages
        }
        trained = [run["training"] for run in runs if run.get("training")]
        row["train_seconds"] = _stats([t["train_seconds"] for t in trained])
        row["examples_per_second"] = _stats([t["examples_per_second"] for t in trained])
        row["steps"] = trained[0]["steps"] if trained else 0
        profiles = [RunRecord.from_json(run).profile for run in runs]
        if any(profile is not None for profile in profiles):
            row["profile"] = {c.key: _stats([(p or {}).get(c.key) for p in profiles]) for c in PROFILE}
        variants[name] = row
    return variants


def _stats(values: list[float | None]) -> dict[str, Any] | None:
    present = [value for value in values if value is not None]
    if not present:
        return None
    mean, std = mean_std(present)
    return {"mean": mean, "std": std, "n": len(present), "values": present}


def _cell(stats: dict[str, Any] | None, scale: float, digits: int) -> str:
    if stats is None:
        return "-"
    text = f"{stats['mean'] * scale:.{digits}f}"
    if stats["std"] is not None:
        text += f" ± {stats['std'] * scale:.{digits}f}"
    return text


def markdown(title: str, variants: dict[str, Any]) -> str:
    lines = [f"### {title}", ""]
    # only the columns of the tasks this table evaluated
    columns = [column for column in COLUMNS if any(row[column.title] is not None for row in variants.values())]
    show_uniformity = any(row["uniformity"] is not None for row in variants.values())
    header = ["variant", "seeds", *(c.title for c in columns), *(["uniformity"] if show_uniformity else [])]
    header += ["steps", "train s", "groups/s"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in variants.items():
        cells = [name, str(len(row["seeds"]))]
        cells += [_cell(row[column.title], column.scale, column.digits) for column in columns]
        cells += [_cell(row["uniformity"], 1.0, 3)] if show_uniformity else []
        cells += [str(row["steps"] or "-")]
        cells += [_cell(row["train_seconds"], 1.0, 0), _cell(row["examples_per_second"], 1.0, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    languages = next((list(row["per_language"]) for row in variants.values() if row["per_language"]), [])
    if languages:
        lines += ["", "Test accuracy per language (mean over seeds):", ""]
        lines += ["| variant | " + " | ".join(languages) + " |", "|" + "---|" * (len(languages) + 1)]
        for name, row in variants.items():
            cells = [_cell(row["per_language"].get(lang), 100.0, 1).split(" ±")[0] for lang in languages]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += profile_markdown(variants)
    return "\n".join(lines) + "\n"


def profile_markdown(variants: dict[str, Any]) -> list[str]:
    """The profile table (mean ± std over seeds, points) and the change against the untrained variant.

    Nothing when no variant's eval ran the profile; only the columns some variant has. A mean over
    fewer seeds than the variant ran (a record without the profile, or without that column) says so.
    """
    rows = {name: row["profile"] for name, row in variants.items() if row.get("profile")}
    columns = [c for c in PROFILE if any(profile.get(c.key) is not None for profile in rows.values())]
    if not columns:
        return []
    header = ["variant", *(f"{c.title} ({c.unit.label})" for c in columns)]
    lines = ["", "Evaluation profile (points, mean over seeds; higher is better):", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, profile in rows.items():
        seeds = len(variants[name]["seeds"])
        cells = [_cell(profile.get(c.key), 1.0, 2) + _seeds_note(profile.get(c.key), seeds) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    baseline = next((name for name in rows if variants[name]["trainer"] == "none"), None)
    if baseline is None or len(rows) < 2:
        return lines
    lines += ["", f"Change against `{baseline}` (points; gained > 0, lost < 0):", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, profile in rows.items():
        if name != baseline:
            deltas = [_delta(profile.get(c.key), rows[baseline].get(c.key)) for c in columns]
            lines.append(f"| {name} | " + " | ".join(deltas) + " |")
    return lines


def _seeds_note(stats: dict[str, Any] | None, seeds: int) -> str:
    """`` (2 of 3 seeds)`` when ``stats`` averages fewer seeds than the variant ran; else nothing."""
    return f" ({stats['n']} of {seeds} seeds)" if stats is not None and stats["n"] < seeds else ""


def _delta(stats: dict[str, Any] | None, baseline: dict[str, Any] | None) -> str:
    return "-" if stats is None or baseline is None else f"{stats['mean'] - baseline['mean']:+.2f}"


def read_reported(path: Path) -> list[dict[str, Any]]:
    """The run records of an earlier report at ``path`` (none if there is no report yet)."""
    if not path.is_file():
        return []
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"not a report written by run_table ({exc}); move it away to start afresh", path) from exc
    if not isinstance(runs, list) or not all(isinstance(r, dict) and {"variant", "seed"} <= r.keys() for r in runs):
        raise InputError("`runs` must be a list of records with `variant` and `seed`", path)
    return runs


def write_report(
    name: str, title: str, records: list[dict[str, Any]], folder: Path, paired: Sequence[tuple[str, str]] = ()
) -> tuple[Path, Path]:
    """``folder/<name>.json`` (records and aggregate) and ``folder/<name>.md``.

    ``paired``: (variant, against) pairs compared seed by seed after the main table.
    """
    variants = aggregate(records)
    comparisons = [
        (variant, against, paired_columns(records, COLUMNS, variant, against)) for variant, against in paired
    ]
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    document: dict[str, Any] = {"table": name, "variants": variants, "runs": records}
    if comparisons:
        document["paired"] = [
            {"variant": variant, "against": against, "columns": [c.to_json() for c in columns]}
            for variant, against, columns in comparisons
        ]
    write_json_atomic(json_path, document, indent=2, trailing_newline=False)
    text = markdown(title or name, variants)
    for variant, against, columns in comparisons:
        text += "\n".join(paired_markdown(variant, against, columns)) + "\n"
    with atomic_path(md_path, suffix=".md") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return json_path, md_path
