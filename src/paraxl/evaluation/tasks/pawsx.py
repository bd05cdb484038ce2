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

from typing import Any

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import PAWSX_LANGUAGES
from paraxl.decision.scorers import EmbeddingCosineScorer
from paraxl.errors import InputError
from paraxl.evaluation.embeddings import Embedder
from paraxl.evaluation.pawsx_cross import CrossLingualMatrix
from paraxl.evaluation.pawsx_protocol import PawsxResult, evaluate_pawsx, read_labelled
from paraxl.evaluation.tasks.base import EvalContext, PawsxProtocol, TaskResult, TaskSpec, mean, rounded

EXACT_TEST_LANGUAGES = ("de", "ko", "zh")  # official test labels are exact only for these
MEAN_KEYS = ("accuracy", "f1", "average_precision", "accuracy_own_threshold", "oracle_accuracy_fit_on_test")


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


class PawsxTask:
    spec = TaskSpec(
        name="pawsx",
        task_type="pair_classification",
        description="PAWS-X paraphrase identification: cosine of the two sentences against a fitted threshold",
        main_score="mean over 7 languages of test accuracy at the threshold fitted on all languages' fit split pooled",
        languages=PAWSX_LANGUAGES,
        reference="Yang et al. 2019, PAWS-X (arXiv:1908.11828)",
    )

    def __init__(
        self,
        languages: tuple[str, ...] = PAWSX_LANGUAGES,
        cross_lingual: bool = True,
        protocol: PawsxProtocol = "resplit",
    ) -> None:
        self.languages = languages
        self.cross_lingual = cross_lingual
        self.protocol = protocol

    def run(self, embedder: Embedder, context: EvalContext) -> TaskResult:
        fit: dict[str, list[LabeledPair]] = {}
        test: dict[str, list[LabeledPair]] = {}
        for language in self.languages:
            fit_split, test_split = split_names(self.protocol, language)
            fit |= read_labelled(context.data_dir, fit_split, (language,), self.protocol)
            test |= read_labelled(context.data_dir, test_split, (language,), self.protocol)
        result = evaluate_pawsx(
            EmbeddingCosineScorer(embedder),
            fit,
            test,
            cross_lingual="matrix" if self.cross_lingual else "none",
            grouping="by_language",  # the embedder's batches (and so its vectors) as in earlier result files
            progress=lambda language: context.progress(f"pawsx: embedding {language}"),
        )
        scores = self._scores(result)
        files = sorted({rows[0].path for rows in (*fit.values(), *test.values())})
        return TaskResult("pawsx", scores["mean"]["accuracy"], scores, files, self._details(result))

    def _scores(self, result: PawsxResult) -> dict[str, Any]:
        monolingual = {lang: language_record(result, lang, self.protocol) for lang in self.languages}
        scores: dict[str, Any] = {
            "protocol": self.protocol,
            "pooled_threshold": result.pooled_threshold,
            "pooled_fit_accuracy": result.pooled_fit_accuracy,
            "monolingual": monolingual,
            "mean": {
                key: mean([monolingual[lang][key] for lang in self.languages]) for key in (*MEAN_KEYS, "majority_class")
            },
        }
        if result.matrix is not None:
            scores["cross_lingual"] = matrix_record(result.matrix)
        return scores

    def _details(self, result: PawsxResult) -> dict[str, Any]:
        details: dict[str, Any] = {
            "test_sweeps": {},
            "fit_sweeps": {},
            "test_scores": {lang: rounded(result.test[lang].scores) for lang in self.languages},
            "test_labels": {lang: result.test[lang].labels.tolist() for lang in self.languages},
        }
        sweeps = {"test_sweeps": result.sweeps("test"), "fit_sweeps": result.sweeps("fit")}
        for lang in self.languages:
            for name in ("test_sweeps", "fit_sweeps"):
                sweep = sweeps[name][lang]
                details[name][lang] = {"thresholds": rounded(sweep.thresholds), "accuracy": rounded(sweep.accuracy)}
        return details


def language_record(result: PawsxResult, language: str, protocol: PawsxProtocol) -> dict[str, Any]:
    """One language's entry of ``scores.monolingual`` (the result file's layout)."""
    scores = result.monolingual[language]
    return {
        "n_fit": scores.n_fit,
        "n_test": scores.n_test,
        "untranslated_test_pairs": scores.untranslated_test_pairs,
        "accuracy": scores.at_pooled.accuracy,
        "f1": scores.at_pooled.f1,
        "precision": scores.at_pooled.precision,
        "recall": scores.at_pooled.recall,
        "average_precision": scores.at_pooled.average_precision,
        "own_threshold": scores.own_threshold,
        "accuracy_own_threshold": scores.at_own.accuracy,
        "f1_own_threshold": scores.at_own.f1,
        "oracle_accuracy_fit_on_test": scores.oracle_accuracy_fit_on_test,
        "majority_class": scores.majority_class,
        "label_source": label_source(protocol, language),
    }


def matrix_record(matrix: CrossLingualMatrix) -> dict[str, Any]:
    """``scores.cross_lingual`` of the result file, from the protocol's matrix."""
    record: dict[str, Any] = {
        "threshold": matrix.threshold,
        "accuracy": matrix.accuracy,
        "n_test": matrix.n_test,
        "dropped_test_pairs": matrix.dropped_test_pairs,
        "mean_cross_lingual": matrix.mean_cross_lingual,
        "mean_monolingual_same_threshold": matrix.mean_monolingual_same_threshold,
    }
    if "en" in matrix.languages:
        record["mean_en_to_xx"] = matrix.mean_en_to_xx
        record["mean_xx_to_en"] = matrix.mean_xx_to_en
        if matrix.en_row is not None:
            record["en_to_xx_own_threshold"] = {
                "threshold": matrix.en_row.threshold,
                "accuracy": {x: value for x, value in matrix.en_row.accuracy.items() if value is not None},
                "mean": matrix.en_row.mean,
            }
    return record
