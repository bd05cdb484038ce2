"""Margin-based bitext mining (BUCC) and its precision / recall / F1.

Reference: Artetxe & Schwenk (2019), "Margin-based Parallel Corpus Mining with Multilingual
Sentence Embeddings", ACL; the algorithm follows LASER's ``source/mine_bitexts.py`` in
``--mode mine --retrieval max --margin ratio`` (``-k 4`` by default):

* ``fwd_mean[i]``: mean cosine of source ``i`` to its ``k`` nearest targets;
  ``bwd_mean[j]``: mean cosine of target ``j`` to its ``k`` nearest sources;
* ``margin(i, j) = cos(i, j) / ((fwd_mean[i] + bwd_mean[j]) / 2)`` (ratio margin);
* every source proposes its best-margin target among its ``k`` nearest, every target its
  best-margin source among its ``k`` nearest; all proposals are sorted by margin and kept
  greedily when neither side is already used (1-to-1).

The BUCC protocol then fits a margin threshold (maximising F1 against gold pairs) on one half and
applies it to the other; :func:`split_by_hash` gives a fixed half assignment of sentence ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from paraxl.evaluation.metrics._checks import (
    BoolArray,
    FloatArray,
    IntArray,
    finite_vector,
    l2_normalised,
    row_chunk,
    same_dimension,
)
from paraxl.evaluation.threshold import candidate_thresholds, count_at_or_above

Backend = Literal["auto", "exact", "faiss"]
Pair = tuple[str, str]

# "auto" switches to faiss above this many query x corpus similarities: below it the exact numpy
# search takes well under a second and needs no optional dependency; above it (e.g. BUCC's
# ~10^5 x 10^5 sentences) faiss' BLAS-blocked, multi-threaded flat search is much faster.
AUTO_FAISS_MIN_SIMILARITIES = 50_000_000


@dataclass(frozen=True)
class MiningCandidates:
    """Mined 1-to-1 pairs ``(source_index[c], target_index[c])`` with their ratio margin, by score descending."""

    source_index: IntArray  # (c,)
    target_index: IntArray  # (c,)
    score: FloatArray  # (c,)

    def __len__(self) -> int:
        return int(self.score.size)


def knn(
    queries: npt.ArrayLike, corpus: npt.ArrayLike, k: int, backend: Backend = "auto"
) -> tuple[FloatArray, IntArray]:
    """The ``k`` most cosine-similar corpus rows of each query, most similar first.

    Inputs are L2-normalised here, so inner product = cosine.

    Backends:
        ``"exact"``: float64 numpy, query blocks of ~``2**22`` similarities; top-k by
        ``argpartition``; equal similarities are ordered by the lower corpus index (also at the
        k-th place: a row whose k-th value is tied is re-sorted with a stable full sort).
        ``"faiss"``: ``faiss.IndexFlatIP`` (exact inner-product search in float32); the order of
        exactly tied similarities is faiss' own. Requires the ``faiss-cpu`` package.
        ``"auto"``: faiss when ``len(queries) * len(corpus) > 50_000_000`` and faiss is importable,
        otherwise exact.

    Args:
        queries: ``(n, d)`` query embeddings.
        corpus: ``(m, d)`` corpus embeddings.
        k: neighbours per query, ``1 <= k <= m``.

    Returns:
        ``(similarities, indices)``: ``(n, k)`` float64 cosines, descending along each row, and the
        ``(n, k)`` int64 corpus rows they belong to.

    Raises:
        ValueError: bad shapes, non-finite or zero rows, ``k`` out of range, unknown backend.
        ImportError: ``backend="faiss"`` without faiss installed.
    """
    query_points = l2_normalised(queries, "queries")
    corpus_points = l2_normalised(corpus, "corpus")
    same_dimension(query_points, corpus_points, ("queries", "corpus"))
    m = corpus_points.shape[0]
    if not 1 <= k <= m:
        raise ValueError(f"k must be between 1 and the corpus size {m}, got {k}")
    if backend not in ("auto", "exact", "faiss"):
        raise ValueError(f"backend must be 'auto', 'exact' or 'faiss', got {backend!r}")
    if backend == "faiss" or (
        backend == "auto" and query_points.shape[0] * m > AUTO_FAISS_MIN_SIMILARITIES and _faiss_available()
    ):
        return _knn_faiss(query_points, corpus_points, k)
    return _knn_exact(query_points, corpus_points, k)


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _knn_faiss(queries: FloatArray, corpus: FloatArray, k: int) -> tuple[FloatArray, IntArray]:
    try:
        import faiss  # optional dependency: imported only when this backend is used
    except ImportError as error:
        raise ImportError("knn backend 'faiss' needs the faiss-cpu package (pip install faiss-cpu)") from error

    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(np.ascontiguousarray(corpus, dtype=np.float32))
    similarities, indices = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return similarities.astype(np.float64), indices.astype(np.int64)


def _knn_exact(queries: FloatArray, corpus: FloatArray, k: int) -> tuple[FloatArray, IntArray]:
    n, m = queries.shape[0], corpus.shape[0]
    all_similarities = np.empty((n, k), dtype=np.float64)
    all_indices = np.empty((n, k), dtype=np.int64)
    rows = row_chunk(m)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = queries[start:stop] @ corpus.T  # (b, m)
        if k < m:
            top = np.argpartition(-block, k - 1, axis=1)[:, :k]  # the k largest, in no particular order
            kth = np.take_along_axis(block, top, axis=1).min(axis=1)
            # argpartition picks arbitrarily among values tied with the k-th largest; where a row has
            # more than k values >= its k-th, redo that row with a stable sort (lower index first).
            tied = np.count_nonzero(block >= kth[:, None], axis=1) > k
            if tied.any():
                top[tied] = np.argsort(-block[tied], axis=1, kind="stable")[:, :k]
        else:
            top = np.broadcast_to(np.arange(m), (stop - start, m)).copy()
        values = np.take_along_axis(block, top, axis=1)
        # order the k by similarity descending, then by corpus index ascending (lexsort: last key is primary)
        order = np.lexsort((top, -values), axis=1)
        all_similarities[start:stop] = np.take_along_axis(values, order, axis=1)
        all_indices[start:stop] = np.take_along_axis(top, order, axis=1)
    return all_similarities, all_indices


def ratio_margin_candidates(
    source: npt.ArrayLike, target: npt.ArrayLike, k: int = 4, backend: Backend = "auto"
) -> MiningCandidates:
    """LASER's ``mine`` mode with ``max`` retrieval and the ratio margin (see the module docstring).

    Vectorised except the final greedy 1-to-1 pass, a single O(n + m) loop over sorted proposals.
    Details:

    * as LASER, the neighbourhood is ``min(k, corpus size)`` in each direction;
    * a candidate's cosine is the one its search returned (float64 with ``"exact"``, float32
      precision with faiss); LASER recomputes the same dot product, equal up to rounding;
    * among a row's ``k`` neighbours, equal margins go to the nearer neighbour (``argmax``, as LASER);
    * proposals are sorted by margin descending with a stable sort over ``[forward..., backward...]``,
      so equal margins keep forward proposals (by source index) before backward ones;
    * no threshold is applied (LASER drops scores ``<= --threshold``, default 0): callers threshold.

    Args:
        source: ``(n, d)`` source-language embeddings.
        target: ``(m, d)`` target-language embeddings.
        k: neighbourhood size, ``>= 1`` (LASER's default 4).

    Returns:
        :class:`MiningCandidates` with at most ``min(n, m)`` pairs, sorted by margin descending.

    Raises:
        ValueError: also when a neighbourhood mean similarity is ``<= 0`` (the ratio margin is then
            undefined or sign-flipped; it does not happen for embeddings of actual sentences).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = l2_normalised(source, "source")
    y = l2_normalised(target, "target")
    same_dimension(x, y, ("source", "target"))
    n, m = x.shape[0], y.shape[0]
    forward_sim, forward_ind = knn(x, y, min(k, m), backend)
    backward_sim, backward_ind = knn(y, x, min(k, n), backend)
    forward_mean = forward_sim.mean(axis=1)  # (n,)
    backward_mean = backward_sim.mean(axis=1)  # (m,)
    if (forward_mean <= 0).any() or (backward_mean <= 0).any():
        raise ValueError("a neighbourhood mean cosine is <= 0; the ratio margin is undefined for these embeddings")

    # forward: source i against its neighbours forward_ind[i, c]
    forward_margin = forward_sim / ((forward_mean[:, None] + backward_mean[forward_ind]) / 2)
    forward_col = np.argmax(forward_margin, axis=1)
    # backward: target j against its neighbours backward_ind[j, c]; the denominator is symmetric
    backward_margin = backward_sim / ((backward_mean[:, None] + forward_mean[backward_ind]) / 2)
    backward_col = np.argmax(backward_margin, axis=1)

    source_index = np.concatenate([np.arange(n), backward_ind[np.arange(m), backward_col]])
    target_index = np.concatenate([forward_ind[np.arange(n), forward_col], np.arange(m)])
    score = np.concatenate([forward_margin[np.arange(n), forward_col], backward_margin[np.arange(m), backward_col]])
    order = np.argsort(-score, kind="stable")

    kept: list[int] = []
    used_source = np.zeros(n, dtype=bool)
    used_target = np.zeros(m, dtype=bool)
    for position, i, j in zip(order.tolist(), source_index[order].tolist(), target_index[order].tolist(), strict=True):
        if not used_source[i] and not used_target[j]:
            used_source[i] = True
            used_target[j] = True
            kept.append(position)
    keep = np.array(kept, dtype=np.int64)
    return MiningCandidates(
        source_index=source_index[keep].astype(np.int64),
        target_index=target_index[keep].astype(np.int64),
        score=score[keep].astype(np.float64),
    )


def _gold_set(gold: Iterable[Pair]) -> set[Pair]:
    gold_pairs = set(gold)
    if not gold_pairs:
        raise ValueError("gold has no pairs; precision/recall are undefined")
    return gold_pairs


def precision_recall_f1(predicted: Iterable[Pair], gold: Iterable[Pair]) -> tuple[float, float, float]:
    """Precision, recall and F1 of predicted ``(source_id, target_id)`` pairs against gold pairs.

    Both are taken as sets (a repeated pair counts once). Precision of an empty prediction is 0
    (as sklearn's ``zero_division=0``); F1 is 0 when precision + recall is 0. Empty gold: ValueError.
    """
    gold_pairs = _gold_set(gold)
    predicted_pairs = set(predicted)
    correct = len(predicted_pairs & gold_pairs)
    precision = correct / len(predicted_pairs) if predicted_pairs else 0.0
    recall = correct / len(gold_pairs)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def f1_at_thresholds(
    candidate_pairs: Sequence[Pair], scores: npt.ArrayLike, gold: Iterable[Pair]
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Precision, recall and F1 of ``{candidates with score >= t}`` for every distinct cut ``t``.

    Thresholds (ascending) are those of :func:`paraxl.evaluation.threshold.accuracy_sweep`: below the
    lowest score (all candidates), the midpoints between consecutive distinct scores, and above the
    highest (none). Recall counts every gold pair, including those no candidate proposes. A pair
    listed more than once is predicted as soon as its highest score passes. O(c log c), vectorised
    after one pass that looks each pair up in the gold set.

    Args:
        candidate_pairs: ``(c,)`` ``(source_id, target_id)`` candidates, e.g. mined pairs mapped to ids.
        scores: ``(c,)`` their margins.
        gold: gold ``(source_id, target_id)`` pairs, at least one.

    Returns:
        ``(thresholds, precision, recall, f1)``, each ``(t,)`` float64.
    """
    score_array = finite_vector(scores, "scores")
    if len(candidate_pairs) != score_array.size:
        raise ValueError(f"{len(candidate_pairs)} candidate pairs but {score_array.size} scores")
    gold_pairs = _gold_set(gold)
    # one score per distinct pair: its maximum
    best: dict[Pair, float] = {}
    for candidate, value in zip(candidate_pairs, score_array.tolist(), strict=True):
        pair = (candidate[0], candidate[1])  # lists or other sequences become hashable tuples
        if value > best.get(pair, -np.inf):
            best[pair] = value
    unique_scores = np.fromiter(best.values(), dtype=np.float64, count=len(best))
    correct = np.fromiter((pair in gold_pairs for pair in best), dtype=bool, count=len(best))

    thresholds = candidate_thresholds(unique_scores)
    predicted = count_at_or_above(np.sort(unique_scores), thresholds)
    true_pos = count_at_or_above(np.sort(unique_scores[correct]), thresholds)
    precision = np.divide(true_pos, predicted, out=np.zeros(thresholds.size), where=predicted > 0)
    recall = true_pos / len(gold_pairs)
    # F1 = 2 TP / (predicted + gold); the denominator is >= |gold| > 0
    f1 = 2.0 * true_pos / (predicted + len(gold_pairs))
    return thresholds, precision, recall.astype(np.float64), f1


def best_f1(
    candidate_pairs: Sequence[Pair], scores: npt.ArrayLike, gold: Iterable[Pair]
) -> tuple[float, float, float, float]:
    """``(threshold, precision, recall, f1)`` at the threshold maximising F1 (fit on one half only).

    Ties go to the highest threshold: of equally good cuts, the one that mines the fewest pairs
    (and with no correct candidate at all, F1 = 0 everywhere, that is "mine nothing").
    """
    thresholds, precision, recall, f1 = f1_at_thresholds(candidate_pairs, scores, gold)
    index = f1.size - 1 - int(np.argmax(f1[::-1]))  # last maximum = highest threshold
    return float(thresholds[index]), float(precision[index]), float(recall[index]), float(f1[index])


def split_by_hash(ids: Sequence[str], salt: str = "paraxl-bucc") -> BoolArray:
    """Fixed assignment of ids to half A (``True``) or half B (``False``).

    ``id`` is in half A when the first byte of ``sha256((salt + id).encode("utf-8"))`` is below 128
    (its top bit is 0). It depends only on the salt and the id string, so it is the same in every
    process and on every platform (unlike Python's salted ``hash()``), and each id lands in A with
    probability 1/2 independently of the others.

    Args:
        ids: ``(n,)`` sentence ids.
        salt: prefix that selects one of many fixed assignments.

    Returns:
        ``(n,)`` boolean array, ``True`` for half A.
    """
    return np.fromiter(
        (hashlib.sha256((salt + identifier).encode("utf-8")).digest()[0] < 128 for identifier in ids),
        dtype=bool,
        count=len(ids),
    )
