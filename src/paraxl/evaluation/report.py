"""Human-readable views of result documents: a markdown summary and plots.

Both read only the JSON documents (never the model or the data), so ``paraxl eval`` can
redraw them later from result files alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.evaluation import plots


def _number(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def summary_markdown(documents: Sequence[dict[str, Any]]) -> str:
    """One overview table, then one section per task."""
    if not documents:
        return "No results.\n"
    first = documents[0]
    model = first["model"]
    git = first["paraxl"].get("git") or {}
    lines = [
        f"# paraxl eval: `{model['spec']}`",
        "",
        f"- model fingerprint: `{(model.get('fingerprint') or 'in-memory')[:16]}`",
        f"- paraxl {first['paraxl']['version']}, commit `{str(git.get('commit', 'unknown'))[:12]}`"
        + (" (with local changes)" if git.get("dirty") else ""),
        f"- PAWS-X protocol: {first['protocol']}; seed {first['seed']}",
        "",
    ]
    overview = [
        [
            doc["task"]["name"],
            main_score_text(doc),
            doc["task"]["main_score"] + ("" if doc["task"]["higher_is_better"] else " (lower is better)"),
            _number(doc["wall_seconds"], 1),
            str(doc.get("embeddings", {}).get("encoded", "–")),
        ]
        for doc in documents
    ]
    lines += _table(["task", "main score", "what it is", "seconds", "texts encoded"], overview)
    for doc in documents:
        section = _SECTIONS.get(doc["task"]["name"])
        if section is not None:
            lines += ["", f"## {doc['task']['name']}", "", *section(doc["scores"])]
    return "\n".join(lines) + "\n"


def main_score_text(document: dict[str, Any]) -> str:
    """The main score as the summary shows it (percent for accuracies and F1)."""
    value = document["main_score"]
    if value is None:
        return "–"
    if document["task"]["task_type"] in ("pair_classification", "bitext_mining", "retrieval"):
        return _pct(value)
    return _number(value, 3 if document["task"]["task_type"] == "geometry" else 2)


def _pawsx_section(scores: dict[str, Any]) -> list[str]:
    rows = []
    for language, s in scores["monolingual"].items():
        rows.append(
            [
                language,
                str(s["n_test"]),
                s["label_source"],
                _pct(s["accuracy"]),
                _pct(s["f1"]),
                _pct(s["average_precision"]),
                _pct(s["accuracy_own_threshold"]),
                _pct(s["oracle_accuracy_fit_on_test"]),
                _pct(s["majority_class"]),
            ]
        )
    m = scores["mean"]
    rows.append(
        [
            "**mean**",
            "",
            "",
            _pct(m["accuracy"]),
            _pct(m["f1"]),
            _pct(m["average_precision"]),
            _pct(m["accuracy_own_threshold"]),
            _pct(m["oracle_accuracy_fit_on_test"]),
            _pct(m["majority_class"]),
        ]
    )
    lines = [
        f"Protocol `{scores['protocol']}`; pooled threshold {scores['pooled_threshold']:.4f} (fitted on the fit split "
        "of all languages together). Oracle = threshold fitted on test itself (for comparison with MTEB only).",
        "",
        *_table(
            [
                "lang",
                "test pairs",
                "labels",
                "acc (pooled thr)",
                "F1",
                "AP",
                "acc (own-language thr)",
                "oracle acc",
                "majority",
            ],
            rows,
        ),
    ]
    cross = scores.get("cross_lingual")
    if cross:
        languages = list(cross["accuracy"])
        matrix_rows = [[f"**{a}**", *(_pct(cross["accuracy"][a].get(b)) for b in languages)] for a in languages]
        lines += [
            "",
            f"Cross-lingual accuracy (row: language of sentence1, column: sentence2), one threshold "
            f"{cross['threshold']:.4f} fitted on all cells' fit pairs pooled. Mean off-diagonal "
            f"{_pct(cross['mean_cross_lingual'])}"
            + (
                f"; en→xx {_pct(cross.get('mean_en_to_xx'))}; xx→en {_pct(cross.get('mean_xx_to_en'))}."
                if "mean_en_to_xx" in cross
                else "."
            ),
            "",
            *_table(["s1 \\ s2", *languages], matrix_rows),
        ]
    return lines


def _align_section(scores: dict[str, Any]) -> list[str]:
    rows = [
        [
            language,
            _number(s.get("alignment_paraphrase"), 3),
            _number(s.get("alignment_translation_en"), 3),
            _number(s.get("uniformity"), 3),
            str(s["n_sentences"]),
        ]
        for language, s in scores["per_language"].items()
    ]
    m = scores["mean"]
    rows.append(
        [
            "**mean**",
            _number(m["alignment_paraphrase"], 3),
            _number(m["alignment_translation_en"], 3),
            _number(m["uniformity"], 3),
            "",
        ]
    )
    return _table(["lang", "alignment (paraphrases)", "alignment (en translation)", "uniformity", "sentences"], rows)


def _bucc_section(scores: dict[str, Any]) -> list[str]:
    rows = [
        [
            pair,
            _pct(s.get("f1")),
            _pct(s.get("precision")),
            _pct(s.get("recall")),
            _pct(s.get("oracle_f1_fit_on_gold")),
            str(s.get("n_gold", "–")),
            str(s["n_candidates"]),
        ]
        for pair, s in scores["per_pair"].items()
    ]
    return [
        "F1 (held-out): threshold fitted on the gold of one half of the source ids, scored on the other half, "
        "mean of both ways. Oracle: threshold fitted on all gold (the XTREME convention).",
        "",
        *_table(["pair", "F1 (held-out)", "P", "R", "oracle F1", "gold", "candidates"], rows),
    ]


def _tatoeba_section(scores: dict[str, Any]) -> list[str]:
    rows = [
        [
            label,
            str(scores[f"n_{key}"]),
            _pct(scores[f"{prefix}_accuracy"]),
            _pct(scores[f"{prefix}_accuracy_xx_to_en"]),
            _pct(scores[f"{prefix}_accuracy_en_to_xx"]),
            _pct(scores[f"{prefix}_mteb_f1_xx_to_en"]),
        ]
        for label, key, prefix in (("all", "languages", "mean"), ("XTREME 36", "xtreme36", "mean36"))
    ]
    per = scores["per_language"]
    worst = sorted(per, key=lambda language: per[language]["accuracy"])[:5]
    return [
        *_table(["languages", "n", "acc (both ways)", "xx→en", "en→xx", "MTEB F1 xx→en"], rows),
        "",
        "Lowest: " + ", ".join(f"{language} {_pct(per[language]['accuracy'])}" for language in worst),
    ]


def _sts_section(scores: dict[str, Any]) -> list[str]:
    rows = []
    for group, block in scores.items():
        if not isinstance(block, dict) or "sets" not in block:
            continue
        for name, s in block["sets"].items():
            rows.append([group, name, _number(s["spearman"]), _number(s["pearson"]), str(s["n"])])
        rows.append([f"**{group} mean**", "", _number(block["mean_spearman"]), "", ""])
    return _table(["group", "set", "Spearman x100", "Pearson x100", "pairs"], rows)


def _sts_files_section(scores: dict[str, Any]) -> list[str]:
    rows = [[name, _number(s["spearman"]), str(s["n"])] for name, s in scores["sets"].items()]
    return _table(["set", "Spearman x100", "pairs"], rows)


def _classification_section(scores: dict[str, Any]) -> list[str]:
    keys = ("in_language_accuracy", "in_language_8shot_accuracy", "zero_shot_accuracy", "zero_shot_8shot_accuracy")
    rows = [[language, *(_number(s[key]) for key in keys)] for language, s in scores["per_language"].items()]
    rows.append(["**mean**", *(_number(scores["mean"][key]) for key in keys)])
    return [
        f"Accuracy (%). Zero-shot: classifier fit on {scores['source_language']}; 8-shot: mean of "
        f"{scores['k_shot']['experiments']} draws.",
        "",
        *_table(["lang", "in-language", "in-language 8-shot", "zero-shot", "zero-shot 8-shot"], rows),
    ]


_SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "pawsx": _pawsx_section,
    "align": _align_section,
    "bucc": _bucc_section,
    "tatoeba": _tatoeba_section,
    "tatoeba36": _tatoeba_section,
    "sts": _sts_section,
    "sts17ext": _sts_files_section,
    "sts22": _sts_files_section,
    "sib200": _classification_section,
    "mtop": _classification_section,
}


# ---------------------------------------------------------------- plots
def write_plots(document: dict[str, Any], folder: Path) -> list[Path]:
    """Every plot this task's document supports, as PNG files under ``folder``."""
    writer = _PLOTS.get(document["task"]["name"])
    return writer(document, folder) if writer else []


def _pawsx_plots(document: dict[str, Any], folder: Path) -> list[Path]:
    scores, details = document["scores"], document["details"]
    protocol = scores["protocol"]
    threshold = scores["pooled_threshold"]
    sweeps = details["test_sweeps"]
    all_scores = [value for values in details["test_scores"].values() for value in values]
    margin = 0.02
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
            {lang: 100 * s["accuracy"] for lang, s in scores["monolingual"].items()},
            folder / "pawsx_accuracy_by_language.png",
            title=f"PAWS-X {protocol} test accuracy at the pooled threshold",
            ylabel="accuracy (%)",
            label="pooled threshold",
            series={
                "own-language threshold": {
                    lang: 100 * s["accuracy_own_threshold"] for lang, s in scores["monolingual"].items()
                }
            },
            baseline=100 * scores["mean"]["majority_class"],
            baseline_label="majority class (mean)",
        ),
    ]
    cross = scores.get("cross_lingual")
    if cross:
        languages = list(cross["accuracy"])
        matrix = np.array(
            [
                [np.nan if cross["accuracy"][a][b] is None else 100 * cross["accuracy"][a][b] for b in languages]
                for a in languages
            ]
        )
        written.append(
            plots.heatmap(
                matrix,
                languages,
                languages,
                folder / "pawsx_cross_lingual_heatmap.png",
                title=f"PAWS-X {protocol} cross-lingual test accuracy (%)",
                xlabel="language of sentence2",
                ylabel="language of sentence1",
            )
        )
    return written


def _tatoeba_plots(document: dict[str, Any], folder: Path) -> list[Path]:
    per = document["scores"]["per_language"]
    ordered = sorted(per, key=lambda language: per[language]["accuracy"])
    return [
        plots.language_bars(
            {language: 100 * per[language]["accuracy"] for language in ordered},
            folder / "tatoeba_accuracy_by_language.png",
            title="Tatoeba accuracy (mean of xx→en and en→xx), by language",
            ylabel="accuracy (%)",
            fmt="",
        )
    ]


def _classification_plots(document: dict[str, Any], folder: Path) -> list[Path]:
    name = document["task"]["name"]
    per = document["scores"]["per_language"]
    return [
        plots.language_bars(
            {language: s["in_language_accuracy"] for language, s in per.items()},
            folder / f"{name}_accuracy_by_language.png",
            title=f"{name}: test accuracy by language",
            ylabel="accuracy (%)",
            label="in-language",
            series={
                "zero-shot from " + document["scores"]["source_language"]: {
                    language: s["zero_shot_accuracy"] for language, s in per.items()
                }
            },
        )
    ]


def _bucc_plots(document: dict[str, Any], folder: Path) -> list[Path]:
    written = []
    for pair, curve in document["details"].items():
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


_PLOTS: dict[str, Callable[[dict[str, Any], Path], list[Path]]] = {
    "pawsx": _pawsx_plots,
    "tatoeba": _tatoeba_plots,
    "tatoeba36": _tatoeba_plots,
    "sib200": _classification_plots,
    "mtop": _classification_plots,
    "bucc": _bucc_plots,
}
