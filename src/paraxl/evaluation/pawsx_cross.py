"""Cross-lingual PAWS-X: sentence1 of language A with sentence2 of language B, matched by ``id``.

A cell (A, B) keeps the ids both languages' files hold with the same label and without the
untranslated placeholder ``NS`` on the sentences used (the others are dropped and counted).
Two readings, both on any :class:`~paraxl.decision.scorers.PairScorer`:

    matrix  all A x B cells at one threshold fitted on every cell's fit pairs pooled (a bi-encoder
            scores 49 cells cheaply: the embeddings are cached);
    en row  en -> X only, at a threshold fitted on the en -> X fit pairs pooled (cross-lingual
            cosines sit below monolingual ones, so the matrix's threshold can reject every
            cross-lingual pair; and a cross-encoder must run every pair, so it scores this row only).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import cross_lingual_usable
from paraxl.decision.scorers import PairScorer
from paraxl.decision.threshold import accuracy_at, best_threshold

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Cell = tuple[str, str]  # (sentence1 language, sentence2 language)


def mean(values: Sequence[float]) -> float:
    """Plain mean; NaN for no values (as the tasks' ``mean``, which this module, below them, cannot import)."""
    return float(np.mean(values)) if len(values) else float("nan")


@dataclass(frozen=True)
class CellScores:
    """One cell's scored pairs: scores (m,), labels (m,), and how many shared ids were dropped."""

    scores: FloatArray
    labels: IntArray
    dropped: int


def cell_pairs(
    first_side: Sequence[LabeledPair], second_side: Sequence[LabeledPair]
) -> tuple[list[int], list[int], int]:
    """Rows of (sentence1 of ``first_side``, sentence2 of ``second_side``) matched by id.

    Returns ``(rows_a, rows_b, dropped)``; dropped counts shared ids whose labels disagree or that
    hold the untranslated placeholder on the sentences used.
    """
    second_rows = {pair.key: row for row, pair in enumerate(second_side) if pair.key is not None}
    rows_a: list[int] = []
    rows_b: list[int] = []
    dropped = 0
    for row_a, pair_a in enumerate(first_side):
        row_b = second_rows.get(pair_a.key) if pair_a.key is not None else None
        if row_b is None:
            continue
        pair_b = second_side[row_b]
        if not cross_lingual_usable(pair_a, pair_b):
            dropped += 1
            continue
        rows_a.append(row_a)
        rows_b.append(row_b)
    return rows_a, rows_b, dropped


def score_cells(
    scorer: PairScorer, pairs: Mapping[str, Sequence[LabeledPair]], cells: Sequence[Cell]
) -> tuple[dict[Cell, CellScores], float]:
    """Every cell's matched pairs scored in one ``scorer.score`` call; also the seconds it took."""
    matched = {cell: cell_pairs(pairs[cell[0]], pairs[cell[1]]) for cell in cells}
    flat = [
        (pairs[a][row_a].first, pairs[b][row_b].second)
        for (a, b), (rows_a, rows_b, _) in matched.items()
        for row_a, row_b in zip(rows_a, rows_b, strict=True)
    ]
    start = time.perf_counter()
    scores = scorer.score(flat) if flat else np.zeros(0, dtype=np.float64)  # (sum of m,)
    seconds = time.perf_counter() - start
    out: dict[Cell, CellScores] = {}
    offset = 0
    for cell, (rows_a, _, dropped) in matched.items():
        labels = np.array([pairs[cell[0]][row].label for row in rows_a], dtype=np.int64)  # (m,)
        out[cell] = CellScores(scores[offset : offset + len(rows_a)], labels, dropped)
        offset += len(rows_a)
    return out, seconds


def pooled_fit(cells: Sequence[CellScores]) -> float:
    """The accuracy-maximising threshold over these cells' pairs pooled."""
    threshold, _ = best_threshold(
        np.concatenate([cell.scores for cell in cells]), np.concatenate([cell.labels for cell in cells])
    )
    return threshold


@dataclass(frozen=True)
class EnToXx:
    """en -> X accuracy at one threshold fitted on the en -> X fit pairs pooled.

    ``accuracy[X]`` is None where the cell has no test pair; ``n_*`` and ``dropped_*`` per X.
    """

    threshold: float
    accuracy: dict[str, float | None]
    n_fit: dict[str, int]
    n_test: dict[str, int]
    dropped_fit: dict[str, int]
    dropped_test: dict[str, int]

    @property
    def mean(self) -> float:
        """Mean over the X with test pairs (NaN when none has)."""
        return mean([value for value in self.accuracy.values() if value is not None])


def en_to_xx(fit: Mapping[Cell, CellScores], test: Mapping[Cell, CellScores], targets: Sequence[str]) -> EnToXx | None:
    """The en row scored at its own threshold; None when no en -> X fit pair exists."""
    fitted = [fit[("en", x)] for x in targets]
    if not any(cell.labels.size for cell in fitted):
        return None
    threshold = pooled_fit(fitted)
    cells = {x: test[("en", x)] for x in targets}
    return EnToXx(
        threshold=threshold,
        accuracy={
            x: accuracy_at(cell.scores, cell.labels, threshold) if cell.labels.size else None
            for x, cell in cells.items()
        },
        n_fit={x: int(fit[("en", x)].labels.size) for x in targets},
        n_test={x: int(cell.labels.size) for x, cell in cells.items()},
        dropped_fit={x: fit[("en", x)].dropped for x in targets},
        dropped_test={x: cell.dropped for x, cell in cells.items()},
    )


@dataclass(frozen=True)
class CrossLingualMatrix:
    """A (sentence1 language) x B (sentence2 language) accuracy matrix at one pooled threshold.

    ``accuracy[a][b]`` is NaN for a cell without test pairs; ``dropped_test_pairs`` is keyed ``"a-b"``.
    """

    languages: tuple[str, ...]
    threshold: float
    accuracy: dict[str, dict[str, float]]
    n_test: dict[str, dict[str, int]]
    dropped_test_pairs: dict[str, int]
    en_row: EnToXx | None  # en -> X at its own threshold; None without English

    @property
    def mean_cross_lingual(self) -> float:
        return mean([self.accuracy[a][b] for a in self.languages for b in self.languages if a != b])

    @property
    def mean_monolingual_same_threshold(self) -> float:
        return mean([self.accuracy[a][a] for a in self.languages])

    @property
    def mean_en_to_xx(self) -> float:
        return mean([self.accuracy["en"][b] for b in self.languages if b != "en"])

    @property
    def mean_xx_to_en(self) -> float:
        return mean([self.accuracy[a]["en"] for a in self.languages if a != "en"])


def cross_lingual_matrix(
    fit: Mapping[Cell, CellScores], test: Mapping[Cell, CellScores], languages: tuple[str, ...]
) -> CrossLingualMatrix:
    """All cells at the threshold fitted on every cell's fit pairs pooled; the en row at its own too."""
    threshold = pooled_fit(list(fit.values()))
    accuracy: dict[str, dict[str, float]] = {a: {} for a in languages}
    counts: dict[str, dict[str, int]] = {a: {} for a in languages}
    for (a, b), cell in test.items():
        counts[a][b] = int(cell.labels.size)
        accuracy[a][b] = accuracy_at(cell.scores, cell.labels, threshold) if cell.labels.size else float("nan")
    targets = [x for x in languages if x != "en"]
    return CrossLingualMatrix(
        languages=languages,
        threshold=threshold,
        accuracy=accuracy,
        n_test=counts,
        dropped_test_pairs={f"{a}-{b}": cell.dropped for (a, b), cell in test.items()},
        en_row=en_to_xx(fit, test, targets) if "en" in languages else None,
    )
