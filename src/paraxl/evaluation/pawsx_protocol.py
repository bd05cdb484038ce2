"""The PAWS-X threshold protocol, written once, on any :class:`~paraxl.decision.scorers.PairScorer`.

Given labelled *fit* pairs and (optionally) *test* pairs per language:

    pooled threshold   fitted (:func:`~paraxl.decision.threshold.best_threshold`) on every
                       language's fit pairs together: the main score's threshold;
    per language       accuracy / F1 / precision / recall / AP of the test pairs at the pooled
                       threshold, at the language's own fitted threshold, the test-fitted
                       ("oracle", labelled so) accuracy and the majority-class baseline;
    cross-lingual      optional: the A x B matrix or only the en -> X row (:mod:`paraxl.evaluation.pawsx_cross`).

Thresholds are never fitted on test pairs (except the oracle, which says so). The same function
serves ``paraxl eval --tasks pawsx`` (an embedder's cosines), training validation (fit pairs
only: the pooled fit accuracy selects checkpoints), the demo's before/after score and the
cross-encoder reference (``benchmarks/cross_encoder_pawsx.py``).

``grouping`` says which pairs share one ``scorer.score`` call: a batching scorer rounds
slightly differently with other batch neighbours, so each caller keeps the grouping its
published numbers were made with (``by_language``: fit then test, language by language;
``by_split``: all fit pairs, then all test pairs; ``together``: one call).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import PawsxProtocol, is_untranslated, pawsx_file, read_pawsx_pairs
from paraxl.decision.scorers import PairScorer
from paraxl.decision.threshold import ThresholdSweep, accuracy_at, accuracy_sweep, best_threshold
from paraxl.errors import InputError
from paraxl.evaluation.metrics.pair_classification import PairClassificationScores, pair_classification_scores
from paraxl.evaluation.pawsx_cross import CrossLingualMatrix, EnToXx, cross_lingual_matrix, en_to_xx, score_cells

Grouping = Literal["by_language", "by_split", "together"]
CrossLingual = Literal["matrix", "en_row", "none"]
Split = Literal["fit", "test"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ScoredSet:
    """One language's labelled pairs of one split with their scores (n,) and 0/1 labels (n,)."""

    pairs: list[LabeledPair]
    scores: FloatArray
    labels: IntArray

    @property
    def untranslated(self) -> npt.NDArray[np.bool_]:
        """(n,) True where either sentence is the untranslated placeholder ``NS``."""
        return np.array([is_untranslated(p.first, p.second) for p in self.pairs], dtype=bool)


@dataclass(frozen=True)
class LanguageScores:
    """One language's test pairs scored at the pooled threshold, its own threshold and the oracle."""

    n_fit: int
    n_test: int
    untranslated_test_pairs: int
    at_pooled: PairClassificationScores
    own_threshold: float  # fitted on this language's fit pairs alone (small: noisy)
    at_own: PairClassificationScores
    oracle_accuracy_fit_on_test: float  # for comparison with MTEB, which fits on test; never a main score
    majority_class: float
    accuracy_without_untranslated: float | None  # the test pairs without ``NS``; None if all have it


@dataclass(frozen=True)
class PawsxResult:
    """Everything the protocol measured; callers pick what their result files show.

    ``fit_accuracy``: each language's fit pairs at the pooled threshold. ``monolingual``,
    ``matrix`` and ``en_row`` are empty / None when not asked for (no test pairs, ``cross_lingual``).
    ``seconds``: time inside ``scorer.score`` per group of calls (``fit``, ``test``, ``fit+test``,
    ``cross_fit``, ``cross_test``).
    """

    languages: tuple[str, ...]
    pooled_threshold: float
    pooled_fit_accuracy: float
    fit_accuracy: dict[str, float]
    fit: dict[str, ScoredSet]
    test: dict[str, ScoredSet]
    monolingual: dict[str, LanguageScores]
    matrix: CrossLingualMatrix | None = None
    en_row: EnToXx | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def sweeps(self, split: Split) -> dict[str, ThresholdSweep]:
        """Accuracy at every threshold candidate, per language of ``split``."""
        sets = self.fit if split == "fit" else self.test
        return {lang: accuracy_sweep(scored.scores, scored.labels) for lang, scored in sets.items()}


def evaluate_pawsx(
    scorer: PairScorer,
    fit: Mapping[str, Sequence[LabeledPair]],
    test: Mapping[str, Sequence[LabeledPair]] | None = None,
    *,
    cross_lingual: CrossLingual = "none",
    grouping: Grouping = "by_split",
    progress: Callable[[str], None] | None = None,
) -> PawsxResult:
    """Run the protocol (module docstring) on ``scorer``.

    Args:
        scorer: scores pairs; higher = more likely a paraphrase.
        fit: labelled pairs per language to fit thresholds on (validation / dev); every label set.
        test: labelled pairs per language to score, the same languages; None: fit accuracy only.
        cross_lingual: ``matrix`` (all cells), ``en_row`` (en -> X) or ``none``; needs ``test``.
        grouping: which pairs share a ``scorer.score`` call (module docstring).
        progress: called with a language's name before its pairs are scored (``by_language``).
    """
    languages = tuple(fit)
    if test is not None and tuple(test) != languages:
        raise ValueError(f"fit languages {languages} but test languages {tuple(test)}")
    fit_sets, test_sets, seconds = _score_monolingual(scorer, fit, test or {}, grouping, progress)
    pooled_threshold, pooled_fit_accuracy = best_threshold(
        np.concatenate([fit_sets[lang].scores for lang in languages]),
        np.concatenate([fit_sets[lang].labels for lang in languages]),
    )
    result = PawsxResult(
        languages=languages,
        pooled_threshold=pooled_threshold,
        pooled_fit_accuracy=pooled_fit_accuracy,
        fit_accuracy={
            lang: accuracy_at(scored.scores, scored.labels, pooled_threshold) for lang, scored in fit_sets.items()
        },
        fit=fit_sets,
        test=test_sets,
        monolingual={lang: language_scores(fit_sets[lang], test_sets[lang], pooled_threshold) for lang in test_sets},
        seconds=seconds,
    )
    if test is None or cross_lingual == "none" or len(languages) < 2:
        return result
    return _with_cross_lingual(scorer, result, cross_lingual)


def read_labelled(
    data_dir: Path, split: str, languages: Sequence[str], protocol: PawsxProtocol
) -> dict[str, list[LabeledPair]]:
    """Labelled PAWS-X pairs of ``split`` per language; an empty file or a pair without a label is an error."""
    pairs = read_pawsx_pairs(data_dir, split, languages, protocol)
    for language, rows in pairs.items():
        if not rows:
            path = pawsx_file(data_dir, protocol, language, split)
            raise InputError(f"no pairs in PAWS-X {protocol}/{language}/{split}", str(path))
        labels_of(rows)
    return pairs


def labels_of(pairs: Sequence[LabeledPair]) -> IntArray:
    """(n,) 0/1 labels; a pair without one is an error at its file and line."""
    for pair in pairs:
        if pair.label is None:
            raise InputError("PAWS-X pairs need a label column (0 or 1)", pair.path, pair.line)
    return np.array([pair.label for pair in pairs], dtype=np.int64)


def _score_monolingual(
    scorer: PairScorer,
    fit: Mapping[str, Sequence[LabeledPair]],
    test: Mapping[str, Sequence[LabeledPair]],
    grouping: Grouping,
    progress: Callable[[str], None] | None,
) -> tuple[dict[str, ScoredSet], dict[str, ScoredSet], dict[str, float]]:
    """Fit and test sets scored in the calls ``grouping`` names; seconds per kind of call."""
    named = {("fit", lang): list(pairs) for lang, pairs in fit.items()}
    named |= {("test", lang): list(pairs) for lang, pairs in test.items()}
    labels = {key: labels_of(pairs) for key, pairs in named.items()}
    if grouping == "by_language":
        calls = [[(split, lang)] for lang in fit for split in ("fit", "test") if (split, lang) in named]
    elif grouping == "by_split":
        calls = [[key for key in named if key[0] == split] for split in ("fit", "test")]
    else:
        calls = [list(named)]
    scored: dict[tuple[str, str], FloatArray] = {}
    seconds: dict[str, float] = {}
    for keys in filter(None, calls):
        if progress is not None and grouping == "by_language" and keys[0][0] == "fit":
            progress(keys[0][1])
        start = time.perf_counter()
        scores = scorer.score([(pair.first, pair.second) for key in keys for pair in named[key]])  # (n,)
        kind = "+".join(dict.fromkeys(split for split, _ in keys))
        seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - start
        offset = 0
        for key in keys:
            scored[key] = scores[offset : offset + len(named[key])]
            offset += len(named[key])
    sets = {key: ScoredSet(named[key], scored[key], labels[key]) for key in named}
    fit_sets = {lang: sets[("fit", lang)] for lang in fit}
    return fit_sets, {lang: sets[("test", lang)] for lang in test}, seconds


def language_scores(fit: ScoredSet, test: ScoredSet, pooled_threshold: float) -> LanguageScores:
    """One language's test scores at the pooled threshold, at its own fitted one, and the oracle."""
    own_threshold, _ = best_threshold(fit.scores, fit.labels)
    _, oracle = best_threshold(test.scores, test.labels)
    positives = float(np.mean(test.labels))
    untranslated = test.untranslated  # (n,) bool; a property that walks every pair: read it once
    translated = ~untranslated
    return LanguageScores(
        n_fit=int(fit.labels.size),
        n_test=int(test.labels.size),
        untranslated_test_pairs=int(untranslated.sum()),
        at_pooled=pair_classification_scores(test.scores, test.labels, pooled_threshold),
        own_threshold=own_threshold,
        at_own=pair_classification_scores(test.scores, test.labels, own_threshold),
        oracle_accuracy_fit_on_test=oracle,
        majority_class=max(positives, 1.0 - positives),
        accuracy_without_untranslated=accuracy_at(test.scores[translated], test.labels[translated], pooled_threshold)
        if translated.any()
        else None,
    )


def _with_cross_lingual(scorer: PairScorer, result: PawsxResult, cross_lingual: CrossLingual) -> PawsxResult:
    """``result`` plus the cross-lingual reading asked for (fit cells in one call, test cells in one)."""
    languages = result.languages
    if cross_lingual == "matrix":
        cells = [(a, b) for a in languages for b in languages]
    elif "en" in languages:
        cells = [("en", b) for b in languages if b != "en"]
    else:
        return result
    fit_cells, fit_seconds = score_cells(scorer, {lang: s.pairs for lang, s in result.fit.items()}, cells)
    test_cells, test_seconds = score_cells(scorer, {lang: s.pairs for lang, s in result.test.items()}, cells)
    seconds = {**result.seconds, "cross_fit": fit_seconds, "cross_test": test_seconds}
    if cross_lingual == "matrix":
        matrix = cross_lingual_matrix(fit_cells, test_cells, languages)
        return replace(result, matrix=matrix, en_row=matrix.en_row, seconds=seconds)
    en_row = en_to_xx(fit_cells, test_cells, [b for _, b in cells])
    return replace(result, en_row=en_row, seconds=seconds)
