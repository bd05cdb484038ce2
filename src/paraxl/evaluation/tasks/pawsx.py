"""PAWS-X paraphrase identification with a bi-encoder: cosine >= threshold means "paraphrase".

Protocols (``shared/data/README.md``):
    ``resplit``   threshold fitted on ``validation``, scored on ``test`` (leak-free; the default);
    ``official``  threshold fitted on ``dev_2k``, scored on ``test_2k`` (de/ko/zh: exact labels) or
                  ``test_2k.derived`` (en/es/fr/ja: majority of de/ko/zh labels; labelled "derived").

Thresholds are never fitted on the test split. Two fitted thresholds are reported:
    per-language  each language's own fit split (small: noisy);
    pooled        one threshold fitted on every language's fit pairs together: the main score.
The test-fitted ("oracle") accuracy appears only under that name, for comparison with MTEB,
which fits on test.

Cross-lingual pairs: sentence1 in language A, sentence2 in language B, aligned by ``id``, with the
label where both languages' files agree on it (pairs whose labels differ or that carry the
untranslated placeholder ``NS`` are left out and counted). One threshold is fitted on all 49 cells'
fit pairs pooled. The monolingual scores keep ``NS`` pairs, as the published benchmark does; the
matrix's diagonal leaves them out like every other cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import PAWSX_LANGUAGES, UNTRANSLATED, read_pawsx_pairs
from paraxl.errors import InputError
from paraxl.evaluation.embeddings import Embedder
from paraxl.evaluation.metrics.pair_classification import pair_classification_scores
from paraxl.evaluation.tasks.base import EvalContext, PawsxProtocol, TaskResult, TaskSpec, mean, rounded, unit_rows
from paraxl.evaluation.threshold import accuracy_sweep, best_threshold

EXACT_TEST_LANGUAGES = ("de", "ko", "zh")  # official test labels are exact only for these


@dataclass(frozen=True)
class EmbeddedSplit:
    """One language's split: unit vectors of both sides (n, dim), labels (n,), ids, raw pairs."""

    pairs: list[LabeledPair]
    first: np.ndarray
    second: np.ndarray
    labels: np.ndarray

    @property
    def scores(self) -> np.ndarray:
        cosine: np.ndarray = np.sum(self.first * self.second, axis=1)  # unit rows: (n,) cosines
        return cosine


def split_names(protocol: PawsxProtocol, language: str) -> tuple[str, str]:
    """``(fit split, test split)`` file stems for ``language`` under ``protocol``."""
    if protocol == "resplit":
        return "validation", "test"
    if protocol == "official":
        return "dev_2k", "test_2k" if language in EXACT_TEST_LANGUAGES else "test_2k.derived"
    raise InputError(f"unknown PAWS-X protocol {protocol!r}; use resplit or official")


def label_source(protocol: PawsxProtocol, language: str) -> str:
    """Where a test split's labels come from: "human" or "derived" (majority of de/ko/zh)."""
    return "derived" if protocol == "official" and language not in EXACT_TEST_LANGUAGES else "human"


def load_split(embedder: Embedder, context: EvalContext, language: str, split: str) -> EmbeddedSplit:
    pairs = read_pawsx_pairs(context.data_dir, split, (language,), context.protocol)[language]
    if not pairs:
        raise InputError(
            f"no pairs in PAWS-X {context.protocol}/{language}/{split}", pairs_path(context, language, split)
        )
    for pair in pairs:
        if pair.label is None:
            raise InputError("PAWS-X pairs need a label column (0 or 1)", pair.path, pair.line)
    first = unit_rows(embedder.embed([pair.first for pair in pairs]))
    second = unit_rows(embedder.embed([pair.second for pair in pairs]))
    labels = np.array([pair.label for pair in pairs], dtype=np.int64)
    return EmbeddedSplit(pairs, first, second, labels)


def pairs_path(context: EvalContext, language: str, split: str) -> str:
    return str(context.data_dir / "pawsx" / context.protocol / language / f"{split}.tsv")


class PawsxTask:
    spec = TaskSpec(
        name="pawsx",
        task_type="pair_classification",
        description="PAWS-X paraphrase identification: cosine of the two sentences against a fitted threshold",
        main_score="mean over 7 languages of test accuracy at the threshold fitted on all languages' fit split pooled",
        languages=PAWSX_LANGUAGES,
        reference="Yang et al. 2019, PAWS-X (arXiv:1908.11828)",
    )

    def __init__(self, languages: tuple[str, ...] = PAWSX_LANGUAGES, cross_lingual: bool = True) -> None:
        self.languages = languages
        self.cross_lingual = cross_lingual

    def run(self, embedder: Embedder, context: EvalContext) -> TaskResult:
        fit: dict[str, EmbeddedSplit] = {}
        test: dict[str, EmbeddedSplit] = {}
        files = []
        for language in self.languages:
            context.progress(f"pawsx: embedding {language}")
            fit_split, test_split = split_names(context.protocol, language)
            fit[language] = load_split(embedder, context, language, fit_split)
            test[language] = load_split(embedder, context, language, test_split)
            files += [fit[language].pairs[0].path, test[language].pairs[0].path]

        pooled_threshold, pooled_fit_accuracy = best_threshold(
            np.concatenate([fit[lang].scores for lang in self.languages]),
            np.concatenate([fit[lang].labels for lang in self.languages]),
        )
        monolingual = {lang: self._language_scores(fit[lang], test[lang], pooled_threshold) for lang in self.languages}
        for lang in self.languages:
            monolingual[lang]["label_source"] = label_source(context.protocol, lang)
        scores: dict[str, Any] = {
            "protocol": context.protocol,
            "pooled_threshold": pooled_threshold,
            "pooled_fit_accuracy": pooled_fit_accuracy,
            "monolingual": monolingual,
            "mean": {
                key: mean([monolingual[lang][key] for lang in self.languages])
                for key in (
                    "accuracy",
                    "f1",
                    "average_precision",
                    "accuracy_own_threshold",
                    "oracle_accuracy_fit_on_test",
                    "majority_class",
                )
            },
        }
        details: dict[str, Any] = {
            "test_sweeps": {},
            "fit_sweeps": {},
            "test_scores": {lang: rounded(test[lang].scores) for lang in self.languages},
            "test_labels": {lang: test[lang].labels.tolist() for lang in self.languages},
        }
        for lang in self.languages:
            for name, split in (("test_sweeps", test[lang]), ("fit_sweeps", fit[lang])):
                sweep = accuracy_sweep(split.scores, split.labels)
                details[name][lang] = {"thresholds": rounded(sweep.thresholds), "accuracy": rounded(sweep.accuracy)}
        if self.cross_lingual and len(self.languages) > 1:
            scores["cross_lingual"] = self._cross_lingual(fit, test)
        return TaskResult("pawsx", scores["mean"]["accuracy"], scores, sorted(set(files)), details)

    @staticmethod
    def _language_scores(fit: EmbeddedSplit, test: EmbeddedSplit, pooled_threshold: float) -> dict[str, Any]:
        own_threshold, _ = best_threshold(fit.scores, fit.labels)
        at_pooled = pair_classification_scores(test.scores, test.labels, pooled_threshold)
        at_own = pair_classification_scores(test.scores, test.labels, own_threshold)
        _, oracle = best_threshold(test.scores, test.labels)
        positives = float(np.mean(test.labels))
        return {
            "n_fit": int(fit.labels.size),
            "n_test": int(test.labels.size),
            "untranslated_test_pairs": sum(
                UNTRANSLATED in (pair.first.strip(), pair.second.strip()) for pair in test.pairs
            ),
            "accuracy": at_pooled.accuracy,
            "f1": at_pooled.f1,
            "precision": at_pooled.precision,
            "recall": at_pooled.recall,
            "average_precision": at_pooled.average_precision,
            "own_threshold": own_threshold,
            "accuracy_own_threshold": at_own.accuracy,
            "f1_own_threshold": at_own.f1,
            "oracle_accuracy_fit_on_test": oracle,
            "majority_class": max(positives, 1.0 - positives),
        }

    def _cross_lingual(self, fit: dict[str, EmbeddedSplit], test: dict[str, EmbeddedSplit]) -> dict[str, Any]:
        """A (sentence1 language) x B (sentence2 language) accuracy matrix at one pooled threshold."""
        langs = self.languages
        fit_cells = {(a, b): cross_pairs(fit[a], fit[b]) for a in langs for b in langs}
        test_cells = {(a, b): cross_pairs(test[a], test[b]) for a in langs for b in langs}
        threshold, _ = best_threshold(
            np.concatenate([cell[0] for cell in fit_cells.values()]),
            np.concatenate([cell[1] for cell in fit_cells.values()]),
        )
        accuracy: dict[str, dict[str, float]] = {a: {} for a in langs}
        counts: dict[str, dict[str, int]] = {a: {} for a in langs}
        for (a, b), (cell_scores, cell_labels, _dropped) in test_cells.items():
            counts[a][b] = int(cell_labels.size)
            accuracy[a][b] = (
                pair_classification_scores(cell_scores, cell_labels, threshold).accuracy
                if cell_labels.size
                else float("nan")
            )
        off_diagonal = [accuracy[a][b] for a in langs for b in langs if a != b]
        result: dict[str, Any] = {
            "threshold": threshold,
            "accuracy": accuracy,
            "n_test": counts,
            "dropped_test_pairs": {f"{a}-{b}": cell[2] for (a, b), cell in test_cells.items()},
            "mean_cross_lingual": mean(off_diagonal),
            "mean_monolingual_same_threshold": mean([accuracy[a][a] for a in langs]),
        }
        if "en" in langs:
            result["mean_en_to_xx"] = mean([accuracy["en"][b] for b in langs if b != "en"])
            result["mean_xx_to_en"] = mean([accuracy[a]["en"] for a in langs if a != "en"])
            # Cross-lingual cosines sit below monolingual ones, so the 49-cell threshold above can
            # reject every cross-lingual pair (accuracy = majority class). A threshold fitted on the
            # en->X validation cells alone measures how well the en->X pairs separate.
            en_cells = [("en", b) for b in langs if b != "en"]
            own, _ = best_threshold(
                np.concatenate([fit_cells[cell][0] for cell in en_cells]),
                np.concatenate([fit_cells[cell][1] for cell in en_cells]),
            )
            own_accuracy = {
                b: pair_classification_scores(test_cells[("en", b)][0], test_cells[("en", b)][1], own).accuracy
                for _, b in en_cells
                if test_cells[("en", b)][1].size
            }
            result["en_to_xx_own_threshold"] = {
                "threshold": own,
                "accuracy": own_accuracy,
                "mean": mean(list(own_accuracy.values())),
            }
        return result


def cross_pairs(first_side: EmbeddedSplit, second_side: EmbeddedSplit) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores and labels of (sentence1 of ``first_side``, sentence2 of ``second_side``) matched by id.

    Returns ``(scores (m,), labels (m,), dropped)``; dropped counts shared ids whose labels
    disagree or that hold the untranslated placeholder on the sentences used.
    """
    second_rows = {pair.key: row for row, pair in enumerate(second_side.pairs) if pair.key is not None}
    rows_a, rows_b, dropped = [], [], 0
    for row_a, pair_a in enumerate(first_side.pairs):
        row_b = second_rows.get(pair_a.key) if pair_a.key is not None else None
        if row_b is None:
            continue
        pair_b = second_side.pairs[row_b]
        if pair_a.label != pair_b.label or UNTRANSLATED in (pair_a.first.strip(), pair_b.second.strip()):
            dropped += 1
            continue
        rows_a.append(row_a)
        rows_b.append(row_b)
    scores = np.sum(first_side.first[rows_a] * second_side.second[rows_b], axis=1)
    return scores, first_side.labels[rows_a], dropped
