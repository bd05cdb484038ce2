"""What a cross-encoder makes of pairs it never trained on: two sentences about different things.

    .venv/bin/python benchmarks/cross_encoder_negatives.py --model runs/ce3-grouped-auto/final \\
        --data-dir ../shared/data --languages en,de,zh --limit 300 \\
        --name negatives-3ep --output-dir benchmarks/results/cross_encoder

PAWS-X's label-0 pairs are word swaps of sentence1, so a cross-encoder trained on PAWS-X has never
seen an *unrelated* pair; a reranker sees little else (the retriever's other candidates). Per
language, from the first ``--limit`` label-1 and label-0 pairs of the test split, three kinds of
pair are scored with the model's own activation (sigmoid: 0-1):

- **paraphrase**: the label-1 pairs;
- **word swap**: the label-0 pairs;
- **unrelated**: each label-1 pair's sentence1 with the sentence2 of the label-1 pair ``--shift``
  places later (cyclically): another id, and with PAWS-X's distinct sentences another meaning.

Reported per model and language: each kind's mean score and share above 0.5, and the ROC AUC
(scikit-learn) of paraphrase against word swap and against unrelated. A model fit for reranking
scores unrelated pairs at least as low as word swaps. Bad input gives one ``error:`` line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.metrics import roc_auc_score

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import parse_languages
from paraxl.errors import InputError, ParaxlError
from paraxl.evaluation.pawsx_protocol import read_labelled
from paraxl.modeling.cross_encoder import open_cross_encoder_scorer

KINDS = ("paraphrase", "word swap", "unrelated")


class KindScores(NamedTuple):
    pairs: int
    mean: float
    above_half: float  # share of pairs scored above 0.5


class Row(NamedTuple):
    model: str
    language: str
    kinds: dict[str, KindScores]
    auc_vs_word_swap: float
    auc_vs_unrelated: float


def kind_pairs(rows: Sequence[LabeledPair], limit: int, shift: int) -> dict[str, list[tuple[str, str]]]:
    """The three kinds of pair out of one language's labelled pairs (see the module docstring)."""
    usable = [row for row in rows if "NS" not in (row.first, row.second)]
    positives = [row for row in usable if row.label == 1][:limit]
    negatives = [row for row in usable if row.label == 0][:limit]
    if len(positives) <= shift or not negatives:
        where = rows[0].path if rows else None
        raise InputError(f"too few pairs: {len(positives)} paraphrases and {len(negatives)} word swaps", where)
    unrelated = [(row.first, positives[(i + shift) % len(positives)].second) for i, row in enumerate(positives)]
    return {
        "paraphrase": [(row.first, row.second) for row in positives],
        "word swap": [(row.first, row.second) for row in negatives],
        "unrelated": unrelated,
    }


def summarize(model: str, language: str, scores: dict[str, np.ndarray]) -> Row:
    """Per kind its mean and share above 0.5, and the AUC of paraphrases against each negative kind."""
    kinds = {
        kind: KindScores(len(values), float(values.mean()), float((values > 0.5).mean()))
        for kind, values in scores.items()
    }
    return Row(
        model,
        language,
        kinds,
        _auc(scores["paraphrase"], scores["word swap"]),
        _auc(scores["paraphrase"], scores["unrelated"]),
    )


def _auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    labels = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    return float(roc_auc_score(labels, np.r_[positives, negatives]))


def markdown(rows: Sequence[Row]) -> str:
    head = " | ".join(f"{kind}: mean / >0.5" for kind in KINDS)
    lines = [
        "Cross-encoder scores by kind of pair (PAWS-X test; unrelated: another id's sentence2)",
        "",
        f"| model | language | {head} | AUC vs word swap | AUC vs unrelated |",
        "|---|---|" + "---|" * (len(KINDS) + 2),
    ]
    for row in rows:
        cells = " | ".join(f"{row.kinds[kind].mean:.3f} / {100 * row.kinds[kind].above_half:.0f} %" for kind in KINDS)
        lines.append(
            f"| {row.model} | {row.language} | {cells} | {row.auc_vs_word_swap:.3f} | {row.auc_vs_unrelated:.3f} |"
        )
    return "\n".join(lines) + "\n"


def run(models: Sequence[Path], data_dir: Path, languages: Sequence[str], limit: int, shift: int) -> list[Row]:
    labelled = read_labelled(data_dir, "test", languages, "resplit")
    pairs = {language: kind_pairs(labelled[language], limit, shift) for language in languages}
    rows = []
    for folder in models:
        scorer = open_cross_encoder_scorer(folder)
        name = folder.parent.name if folder.name == "final" else folder.name
        for language in languages:
            scores = {kind: np.asarray(scorer.score(found)) for kind, found in pairs[language].items()}
            rows.append(summarize(name, language, scores))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True, help="a cross-encoder folder (repeat)")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--languages", default="en,de,zh")
    parser.add_argument("--limit", type=int, default=300, help="label-1 and label-0 pairs per language")
    parser.add_argument("--shift", type=int, default=7, help="unrelated: the sentence2 this many paraphrases on")
    parser.add_argument("--name", default="cross-encoder-negatives")
    parser.add_argument("--output-dir", type=Path, default=Path("benchmarks/results/cross_encoder"))
    args = parser.parse_args(argv)
    try:
        if args.limit < 2 or args.shift < 1:
            raise InputError("--limit must be at least 2 and --shift at least 1")
        rows = run(args.model, args.data_dir, parse_languages(args.languages), args.limit, args.shift)
    except ParaxlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "settings": {"languages": args.languages, "limit": args.limit, "shift": args.shift, "split": "test"},
        "rows": [row._asdict() | {"kinds": {k: v._asdict() for k, v in row.kinds.items()}} for row in rows],
    }
    (args.output_dir / f"{args.name}.json").write_text(json.dumps(record, indent=2))
    text = markdown(rows)
    (args.output_dir / f"{args.name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
