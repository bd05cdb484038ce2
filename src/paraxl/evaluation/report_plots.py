"""The plots of one result document (PNG files), drawn from the document alone.

Numbers come from the typed record (``document.scores``); the curves, sweeps and per-pair
scores that only plots need come from ``document.details``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from paraxl.evaluation import plots
from paraxl.evaluation.results import ResultDocument


def write_plots(document: ResultDocument, folder: Path) -> list[Path]:
    """Every plot this task's document supports, as PNG files under ``folder``."""
    writer = _PLOTS.get(document.task.name)
    return writer(document, folder) if writer else []


def _pawsx_plots(document: ResultDocument, folder: Path) -> list[Path]:
    record, details = document.scores, document.details
    protocol, threshold = record.extras["protocol"], record.extras["threshold"]
    sweeps = details["test_sweeps"]
    all_scores = [value for values in details["test_scores"].values() for value in values]
    margin = 0.02
    monolingual = document.raw_scores["monolingual"]
    written = [
        plots.threshold_curve(
            {lang: np.asarray(s["thresholds"]) for lang, s in sweeps.items()},
            {lang: np.asarray(s["accuracy"]) for lang, s in sweeps.items()},
            threshold,
            folder / "pawsx_threshold_curve.png",
            title=f"PAWS-X {protocol}: test accuracy vs threshold",
            # the lowest percent of scores are outliers (untranslated, truncated); zoom on the rest
            xlim=(float(np.quantile(all_scores, 0.01)) - margin, max(all_scores) + margin),
        ),
        plots.similarity_histogram_grid(
            {
                lang: (
                    np.asarray(values)[np.asarray(details["test_labels"][lang]) == 1],
                    np.asarray(values)[np.asarray(details["test_labels"][lang]) == 0],
                )
                for lang, values in details["test_scores"].items()
            },
            folder / "pawsx_similarity_histograms.png",
            title=f"PAWS-X {protocol} test: cosine of paraphrase vs non-paraphrase pairs",
            threshold=threshold,
        ),
        plots.language_bars(
            {lang: 100 * accuracy for lang, accuracy in record.per_language.items()},
            folder / "pawsx_accuracy_by_language.png",
            title=f"PAWS-X {protocol} test accuracy at the pooled threshold",
            ylabel="accuracy (%)",
            label="pooled threshold",
            series={
                "own-language threshold": {lang: 100 * s["accuracy_own_threshold"] for lang, s in monolingual.items()}
            },
            baseline=100 * record.extras["mean_majority_class"],
            baseline_label="majority class (mean)",
        ),
    ]
    if document.raw_scores.get("cross_lingual"):
        written.append(_cross_lingual_heatmap(document, folder))
    return written


def _cross_lingual_heatmap(document: ResultDocument, folder: Path) -> Path:
    cells = document.scores.per_subset  # "a-b" -> accuracy; a missing cell is NaN (drawn blank)
    languages = list(document.raw_scores["cross_lingual"]["accuracy"])
    matrix = np.array([[100 * cells.get(f"{a}-{b}", np.nan) for b in languages] for a in languages])
    return plots.heatmap(
        matrix,
        languages,
        languages,
        folder / "pawsx_cross_lingual_heatmap.png",
        title=f"PAWS-X {document.scores.extras['protocol']} cross-lingual test accuracy (%)",
        xlabel="language of sentence2",
        ylabel="language of sentence1",
    )


def _tatoeba_plots(document: ResultDocument, folder: Path) -> list[Path]:
    per = document.scores.per_language
    ordered = sorted(per, key=lambda language: per[language])
    return [
        plots.language_bars(
            {language: 100 * per[language] for language in ordered},
            folder / "tatoeba_accuracy_by_language.png",
            title="Tatoeba accuracy (mean of xx→en and en→xx), by language",
            ylabel="accuracy (%)",
            fmt="",
        )
    ]


def _classification_plots(document: ResultDocument, folder: Path) -> list[Path]:
    name, record = document.task.name, document.scores
    per = document.raw_scores["per_language"]
    return [
        plots.language_bars(
            dict(record.per_language),
            folder / f"{name}_accuracy_by_language.png",
            title=f"{name}: test accuracy by language",
            ylabel="accuracy (%)",
            label="in-language",
            series={
                "zero-shot from " + record.extras["source_language"]: {
                    language: s["zero_shot_accuracy"] for language, s in per.items()
                }
            },
        )
    ]


def _bucc_plots(document: ResultDocument, folder: Path) -> list[Path]:
    written = []
    for pair, curve in document.details.items():
        if not curve:
            continue
        written.append(
            plots.line_plot(
                np.asarray(curve["thresholds"][1:-1]),
                {key: 100 * np.asarray(curve[key][1:-1]) for key in ("precision", "recall", "f1")},
                folder / f"bucc_{pair}_threshold_curve.png",
                title=f"BUCC {pair}: precision / recall / F1 vs margin threshold (all gold)",
                xlabel="ratio margin threshold",
                ylabel="%",
            )
        )
    return written


_PLOTS: dict[str, Callable[[ResultDocument, Path], list[Path]]] = {
    "pawsx": _pawsx_plots,
    "tatoeba": _tatoeba_plots,
    "tatoeba36": _tatoeba_plots,
    "sib200": _classification_plots,
    "mtop": _classification_plots,
    "bucc": _bucc_plots,
}
