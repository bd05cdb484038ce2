"""The markdown summary of result documents: one overview table, then one section per task.

It reads only typed :class:`~paraxl.evaluation.results.ResultDocument` objects (never the
model or the data), so ``paraxl eval`` can redraw it later from result files alone. After the
overview comes the evaluation profile (:mod:`paraxl.evaluation.profile`): the model's columns,
or base, model and delta per column when a base was compared. Headline
numbers come from the typed record (``document.scores``); a section's detail columns (pair
counts, F1, label source, ...) come from the task's own JSON rows (``document.raw_scores``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from paraxl.evaluation.profile import PROFILE, ProfileComparison, profile_values
from paraxl.evaluation.results import ResultDocument


def _number(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def summary_markdown(documents: Sequence[ResultDocument], comparison: ProfileComparison | None = None) -> str:
    """One overview table, the profile (with the before/after of ``comparison``), then one section per task."""
    if not documents:
        return "No results.\n"
    first = documents[0]
    git = first.provenance.git or {}
    lines = [
        f"# paraxl eval: `{first.model.spec}`",
        "",
        f"- model fingerprint: `{(first.model.fingerprint or 'in-memory')[:16]}`",
        f"- inference backend: {_backends(documents)}",
        f"- paraxl {first.provenance.paraxl_version}, commit `{str(git.get('commit', 'unknown'))[:12]}`"
        + (" (with local changes)" if git.get("dirty") else ""),
        f"- PAWS-X protocol: {first.protocol}; seed {first.seed}",
        "",
    ]
    overview = [
        [
            doc.task.name,
            headline_text(doc),
            doc.task.main_score + ("" if doc.task.higher_is_better else " (lower is better)"),
            _number(doc.provenance.wall_seconds, 1),
            str(doc.provenance.embeddings.get("encoded", "–")),
        ]
        for doc in documents
    ]
    lines += _table(["task", "main score", "what it is", "seconds", "texts encoded"], overview)
    lines += ["", "## profile", "", *profile_lines(documents, comparison)]
    for doc in documents:
        section = _SECTIONS.get(doc.task.name)
        if section is not None:
            lines += ["", f"## {doc.task.name}", "", *section(doc)]
    return "\n".join(lines) + "\n"


def delta_text(value: float | None) -> str:
    """A change in points with its sign (``+1.25``, ``-0.40``); "-" when unknown."""
    return "-" if value is None else f"{value:+.2f}"


def profile_lines(documents: Sequence[ResultDocument], comparison: ProfileComparison | None) -> list[str]:
    """The profile table: the model's columns, or base / model / delta when ``comparison`` is given."""
    if comparison is None:
        values = profile_values(documents)
        rows = [[c.title, c.unit.label, _value_text(values[c.key])] for c in PROFILE]
        return [
            "Every column is higher-is-better, in points; - : not among this model's results "
            "(`paraxl eval --tasks profile` runs every column's task).",
            "",
            *_table(["column", "unit", "value"], rows),
        ]
    base = comparison.base.spec if comparison.base else "base (no results)"
    rows = [
        [row.column.title, row.column.unit.label, _value_text(row.base), _value_text(row.model), delta_text(row.delta)]
        for row in comparison.rows
    ]
    return [
        f"Before/after against the base `{base}` ({comparison.base_source}): delta = this model minus the base, in "
        "points; every column is higher-is-better. - : not among that model's results.",
        "",
        *_table(["column", "unit", "base", "this model", "delta"], rows),
    ]


def _value_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _backends(documents: Sequence[ResultDocument]) -> str:
    """The backends that made these results (torch and checked ONNX fp32 share a fingerprint)."""
    names = list(dict.fromkeys(doc.model.backend or "not recorded" for doc in documents))
    return ", ".join(names)


def headline_text(document: ResultDocument) -> str:
    """The main score as the summary shows it (percent for accuracies and F1)."""
    value = document.scores.headline
    if value is None:
        return "–"
    if document.task.task_type in ("pair_classification", "bitext_mining", "retrieval"):
        return _pct(value)
    return _number(value, 3 if document.task.task_type == "geometry" else 2)


def main_score_text(document: dict[str, Any]) -> str:
    """:func:`headline_text` of a result document given as its JSON mapping."""
    return headline_text(ResultDocument.from_json(document))


_PAWSX_COLUMNS = ("f1", "average_precision", "accuracy_own_threshold", "oracle_accuracy_fit_on_test", "majority_class")


def _pawsx_section(doc: ResultDocument) -> list[str]:
    record, raw = doc.scores, doc.raw_scores
    rows = [
        [
            language,
            str(s["n_test"]),
            s["label_source"],
            _pct(record.per_language.get(language)),
            *(_pct(s[key]) for key in _PAWSX_COLUMNS),
        ]
        for language, s in raw["monolingual"].items()
    ]
    rows.append(
        ["**mean**", "", "", _pct(record.headline), *(_pct(record.extras[f"mean_{k}"]) for k in _PAWSX_COLUMNS)]
    )
    header = ["lang", "test pairs", "labels", "acc (pooled thr)", "F1", "AP", "acc (own-language thr)", "oracle acc"]
    lines = [
        f"Protocol `{record.extras['protocol']}`; pooled threshold {record.extras['threshold']:.4f} (fitted on the fit "
        "split of all languages together). Oracle = threshold fitted on test itself (for comparison with MTEB only).",
        "",
        *_table([*header, "majority"], rows),
    ]
    if raw.get("cross_lingual"):
        lines += ["", *_cross_lingual_lines(doc)]
    return lines


def _cross_lingual_lines(doc: ResultDocument) -> list[str]:
    record = doc.scores
    languages = list(doc.raw_scores["cross_lingual"]["accuracy"])
    matrix_rows = [[f"**{a}**", *(_pct(record.per_subset.get(f"{a}-{b}")) for b in languages)] for a in languages]
    english = (
        f"; en→xx {_pct(record.extras['en_to_xx_accuracy'])}; xx→en {_pct(record.extras.get('xx_to_en_accuracy'))}."
        if "en_to_xx_accuracy" in record.extras
        else "."
    )
    return [
        f"Cross-lingual accuracy (row: language of sentence1, column: sentence2), one threshold "
        f"{record.extras['cross_lingual_threshold']:.4f} fitted on all cells' fit pairs pooled. Mean off-diagonal "
        f"{_pct(record.extras['cross_lingual_accuracy'])}" + english,
        "",
        *_table(["s1 \\ s2", *languages], matrix_rows),
    ]


def _align_section(doc: ResultDocument) -> list[str]:
    record = doc.scores
    rows = [
        [
            language,
            _number(record.per_language.get(language), 3),
            _number(s.get("alignment_translation_en"), 3),
            _number(s.get("uniformity"), 3),
            str(s["n_sentences"]),
        ]
        for language, s in doc.raw_scores["per_language"].items()
    ]
    means = (record.extras[key] for key in ("alignment_paraphrase", "alignment_translation_en", "uniformity"))
    rows.append(["**mean**", *(_number(value, 3) for value in means), ""])
    return _table(["lang", "alignment (paraphrases)", "alignment (en translation)", "uniformity", "sentences"], rows)


def _bucc_section(doc: ResultDocument) -> list[str]:
    rows = [
        [
            pair,
            _pct(doc.scores.per_subset.get(pair)),
            _pct(s.get("precision")),
            _pct(s.get("recall")),
            _pct(s.get("oracle_f1_fit_on_gold")),
            str(s.get("n_gold", "–")),
            str(s["n_candidates"]),
        ]
        for pair, s in doc.raw_scores["per_pair"].items()
    ]
    return [
        "F1 (held-out): threshold fitted on the gold of one half of the source ids, scored on the other half, "
        "mean of both ways. Oracle: threshold fitted on all gold (the XTREME convention).",
        "",
        *_table(["pair", "F1 (held-out)", "P", "R", "oracle F1", "gold", "candidates"], rows),
    ]


def _tatoeba_section(doc: ResultDocument) -> list[str]:
    extras = doc.scores.extras
    rows = [
        [
            label,
            str(extras[f"n_{key}"]),
            *(
                _pct(extras[f"{prefix}_{metric}"])
                for metric in ("accuracy", "accuracy_xx_to_en", "accuracy_en_to_xx", "mteb_f1_xx_to_en")
            ),
        ]
        for label, key, prefix in (("all", "languages", "mean"), ("XTREME 36", "xtreme36", "mean36"))
    ]
    per = doc.scores.per_language
    worst = sorted(per, key=lambda language: per[language])[:5]
    return [
        *_table(["languages", "n", "acc (both ways)", "xx→en", "en→xx", "MTEB F1 xx→en"], rows),
        "",
        "Lowest: " + ", ".join(f"{language} {_pct(per[language])}" for language in worst),
    ]


def _sts_section(doc: ResultDocument) -> list[str]:
    rows = []
    for group, block in doc.raw_scores.items():
        if not isinstance(block, dict) or "sets" not in block:
            continue
        for name, s in block["sets"].items():
            rows.append([group, name, _number(s["spearman"]), _number(s["pearson"]), str(s["n"])])
        rows.append([f"**{group} mean**", "", _number(doc.scores.per_subset.get(group)), "", ""])
    return _table(["group", "set", "Spearman x100", "Pearson x100", "pairs"], rows)


def _sts_files_section(doc: ResultDocument) -> list[str]:
    per_set = doc.scores.per_subset
    rows = [[name, _number(per_set.get(name)), str(s["n"])] for name, s in doc.raw_scores["sets"].items()]
    return _table(["set", "Spearman x100", "pairs"], rows)


_SETTINGS = ("in_language_accuracy", "in_language_8shot_accuracy", "zero_shot_accuracy", "zero_shot_8shot_accuracy")


def _classification_section(doc: ResultDocument) -> list[str]:
    record, raw = doc.scores, doc.raw_scores
    rows = [[language, *(_number(s[key]) for key in _SETTINGS)] for language, s in raw["per_language"].items()]
    rows.append(["**mean**", *(_number(record.extras[key]) for key in _SETTINGS)])
    return [
        f"Accuracy (%). Zero-shot: classifier fit on {record.extras['source_language']}; 8-shot: mean of "
        f"{raw['k_shot']['experiments']} draws.",
        "",
        *_table(["lang", "in-language", "in-language 8-shot", "zero-shot", "zero-shot 8-shot"], rows),
    ]


_SECTIONS: dict[str, Callable[[ResultDocument], list[str]]] = {
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
