"""How far a teacher's silver scores agree with the labels the pairs already imply.

    .venv/bin/python benchmarks/teacher_agreement.py runs/teacher/pawsx-resplit-train-silver.tsv \\
        --name teacher-agreement-xling --output-dir benchmarks/results/cross_encoder

The input is ``paraxl label``'s output for ``paraxl silver-pairs --drawn-by``: ``score`` (the
teacher's probability), ``gold`` (1 for a paraphrase or translation partner, 0 for a label-0
partner: what the PAWS-X unit implies) and ``languages`` (``A-B``). The pairs come from the train
split, which the teacher was also trained on (other language pairs of the same ids), so this is
agreement on seen ids, an upper bound on held-out quality, not a test score.

Reported per direction (en→xx, xx→en, neither side English) and overall: ROC AUC (scikit-learn,
threshold-free) and accuracy at 0.5 (the sigmoid's midpoint; no threshold is fitted here).
Bad input (a missing column, a score that is not a number, a gold that is not 0/1) prints one
``error: file:line: reason`` line and exits 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from sklearn.metrics import roc_auc_score

from paraxl.errors import InputError

REQUIRED = ("score", "gold", "languages")


class Agreement(NamedTuple):
    pairs: int
    positive_share: float
    auc: float | None  # None where only one class occurs
    accuracy_at_0_5: float


class ScoredPair(NamedTuple):
    score: float
    gold: int
    direction: str  # "en→xx", "xx→en" or "xx→yy"


def direction_of(languages: str) -> str:
    source, _, target = languages.partition("-")
    if source == "en":
        return "en→xx"
    return "xx→en" if target == "en" else "xx→yy"


def read_scored(path: Path) -> list[ScoredPair]:
    """The rows of a labelled TSV; every malformed row is an :class:`InputError` at its line."""
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)} (header: {reader.fieldnames})", path, 1)
        pairs = [_parse(row, path, reader.line_num) for row in reader]
    if not pairs:
        raise InputError("no rows after the header", path)
    return pairs


def _parse(row: dict[str, str], path: Path, line: int) -> ScoredPair:
    try:
        score = float(row["score"])
    except (TypeError, ValueError):
        raise InputError(f"score {row['score']!r} is not a number", path, line) from None
    if row["gold"] not in ("0", "1"):
        raise InputError(f"gold {row['gold']!r} is not 0 or 1", path, line)
    return ScoredPair(score, int(row["gold"]), direction_of(row["languages"] or ""))


def agreement(pairs: Sequence[ScoredPair]) -> Agreement:
    """AUC, accuracy at 0.5 and counts of ``pairs`` (not empty)."""
    gold = [pair.gold for pair in pairs]
    scores = [pair.score for pair in pairs]
    auc = float(roc_auc_score(gold, scores)) if 0 < sum(gold) < len(gold) else None
    correct = sum((pair.score > 0.5) == bool(pair.gold) for pair in pairs)
    return Agreement(len(pairs), sum(gold) / len(gold), auc, correct / len(pairs))


def report(pairs: Sequence[ScoredPair]) -> dict[str, Agreement]:
    """One row per direction that has pairs, then ``all``."""
    rows: dict[str, Agreement] = {}
    for name in ("en→xx", "xx→en", "xx→yy"):
        chosen = [pair for pair in pairs if pair.direction == name]
        if chosen:
            rows[name] = agreement(chosen)
    rows["all"] = agreement(pairs)
    return rows


def markdown(rows: dict[str, Agreement], source: Path) -> str:
    lines = [
        f"Teacher agreement with the implied labels of `{source.name}`",
        "",
        "| direction | pairs | positive share | AUC | accuracy at 0.5 |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        auc = "-" if row.auc is None else f"{row.auc:.4f}"
        lines.append(f"| {name} | {row.pairs} | {row.positive_share:.3f} | {auc} | {100 * row.accuracy_at_0_5:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("labelled", type=Path, help="TSV from `paraxl label` with score, gold, languages")
    parser.add_argument("--name", default="teacher-agreement")
    parser.add_argument("--output-dir", type=Path, default=Path("benchmarks/results/cross_encoder"))
    args = parser.parse_args(argv)
    try:
        if not args.labelled.is_file():
            raise InputError("no such file", args.labelled)
        rows = report(read_scored(args.labelled))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / f"{args.name}.json").write_text(
        json.dumps(
            {"source": str(args.labelled), "rows": {name: row._asdict() for name, row in rows.items()}}, indent=2
        )
    )
    text = markdown(rows, args.labelled)
    (args.output_dir / f"{args.name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
