"""A table's records as JSON and markdown: mean ± std over seeds per variant."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from paraxl.errors import InputError
from paraxl.experiments.runner import mean_std
from paraxl.io.atomic import atomic_path

# (column title, path into a record's scores, scale, digits): a missing value prints as "-".
# PAWS-X and Tatoeba store fractions (x 100 for the table); STS and SIB-200 store percentages.
COLUMNS: list[tuple[str, tuple[str, ...], float, int]] = [
    ("val. acc.", ("pawsx", "validation_accuracy"), 100.0, 2),
    ("test acc. (7-lang mean)", ("pawsx", "test_accuracy"), 100.0, 2),
    ("en→xx acc.", ("pawsx", "en_to_xx_accuracy"), 100.0, 2),
    ("en→xx acc., own threshold", ("pawsx", "en_to_xx_own_threshold_accuracy"), 100.0, 2),
    ("all cross-lingual acc.", ("pawsx", "cross_lingual_accuracy"), 100.0, 2),
    ("alignment", ("align", "main_score"), 1.0, 3),
    ("Tatoeba-112 acc.", ("tatoeba", "main_score"), 100.0, 2),
    ("Tatoeba-36 acc.", ("tatoeba36", "main_score"), 100.0, 2),
    ("T36: ar de es fr hi ru zh", ("tatoeba36", "mean_xnli_trained_in_transfer"), 100.0, 2),
    ("T36: bg el sw th tr ur vi", ("tatoeba36", "mean_xnli_held_out_in_transfer"), 100.0, 2),
    ("T36: outside XNLI", ("tatoeba36", "mean_outside_xnli"), 100.0, 2),
    ("BUCC zh-en F1", ("bucc", "main_score"), 100.0, 2),
    ("STS Spearman (all sets)", ("sts", "main_score"), 1.0, 2),
    ("STS17", ("sts", "scores", "sts17", "mean_spearman"), 1.0, 2),
    ("stsb_multi_mt", ("sts", "scores", "stsb_multi_mt", "mean_spearman"), 1.0, 2),
    ("stsb en-xx", ("sts", "scores", "stsb_cross_lingual", "mean_spearman"), 1.0, 2),
    ("SIB-200 acc.", ("sib200", "scores", "mean", "in_language_accuracy"), 1.0, 2),
    ("SIB-200 zero-shot from en", ("sib200", "scores", "mean", "zero_shot_accuracy"), 1.0, 2),
]


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant: seeds, and mean/std of each column and of the per-language accuracies."""
    by_variant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_variant[record["variant"]].append(record)
    variants = {}
    for name, runs in by_variant.items():
        row: dict[str, Any] = {"seeds": [run["seed"] for run in runs], "trainer": runs[0]["trainer"]}
        for title, path, _, _ in COLUMNS:
            row[title] = _stats([_lookup(run["scores"], path) for run in runs])
        uniformity = [_lookup(run["scores"], ("align", "scores", "mean", "uniformity")) for run in runs]
        row["uniformity"] = _stats(uniformity)
        languages = runs[0]["scores"].get("pawsx", {}).get("per_language", {})
        row["per_language"] = {
            lang: _stats([run["scores"]["pawsx"]["per_language"][lang] for run in runs]) for lang in languages
        }
        trained = [run["training"] for run in runs if run.get("training")]
        row["train_seconds"] = _stats([t["train_seconds"] for t in trained])
        row["examples_per_second"] = _stats([t["examples_per_second"] for t in trained])
        row["steps"] = trained[0]["steps"] if trained else 0
        variants[name] = row
    return variants


def _lookup(node: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


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
    columns = [column for column in COLUMNS if any(row[column[0]] is not None for row in variants.values())]
    show_uniformity = any(row["uniformity"] is not None for row in variants.values())
    header = ["variant", "seeds", *(c[0] for c in columns), *(["uniformity"] if show_uniformity else [])]
    header += ["steps", "train s", "groups/s"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in variants.items():
        cells = [name, str(len(row["seeds"]))]
        cells += [_cell(row[column], scale, digits) for column, _, scale, digits in columns]
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
    return "\n".join(lines) + "\n"


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


def write_report(name: str, title: str, records: list[dict[str, Any]], folder: Path) -> tuple[Path, Path]:
    """``folder/<name>.json`` (records and aggregate) and ``folder/<name>.md``."""
    variants = aggregate(records)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    with atomic_path(json_path, suffix=".json") as tmp:
        tmp.write_text(json.dumps({"table": name, "variants": variants, "runs": records}, indent=2), encoding="utf-8")
    with atomic_path(md_path, suffix=".md") as tmp:
        tmp.write_text(markdown(title or name, variants), encoding="utf-8")
    return json_path, md_path
