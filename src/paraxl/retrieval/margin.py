"""Margin-based bitext mining candidates (ratio margin, 1-to-1).

Reference: Artetxe & Schwenk (2019), "Margin-based Parallel Corpus Mining with Multilingual
Sentence Embeddings", ACL; the algorithm follows LASER's ``source/mine_bitexts.py`` in
``--mode mine --retrieval max --margin ratio`` (``-k 4`` by default):

* ``fwd_mean[i]``: mean cosine of source ``i`` to its ``k`` nearest targets;
  ``bwd_mean[j]``: mean cosine of target ``j`` to its ``k`` nearest sources;
* ``margin(i, j) = cos(i, j) / ((fwd_mean[i] + bwd_mean[j]) / 2)`` (ratio margin);
* every source proposes its best-margin target among its ``k`` nearest, every target its
  best-margin source among its ``k`` nearest; all proposals are sorted by margin and kept
  greedily when neither side is already used (1-to-1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paraxl.retrieval.checks import FloatArray, IntArray, same_dimension
from paraxl.retrieval.normalize import l2_normalised
from paraxl.retrieval.topk import KnnIndexType, unit_knn


@dataclass(frozen=True)
class MiningCandidates:
    """Mined 1-to-1 pairs ``(source_index[c], target_index[c])`` with their ratio margin, by score descending."""

    source_index: IntArray  # (c,)
    target_index: IntArray  # (c,)
    score: FloatArray  # (c,)

    def __len__(self) -> int:
        return int(self.score.size)


def ratio_margin_candidates(
    source: npt.ArrayLike, target: npt.ArrayLike, k: int = 4, index_type: KnnIndexType = "auto"
) -> MiningCandidates:
    """LASER's ``mine`` mode with ``max`` retrieval and the ratio margin (see the module docstring).

    Vectorised except the final greedy 1-to-1 pass, a single O(n + m) loop over sorted proposals.
    Details:

    * as LASER, the neighbourhood is ``min(k, corpus size)`` in each direction;
    * a candidate's cosine is the one its search returned (float64 with ``"exact"``, float32
      precision with ``"flat"``); LASER recomputes the same dot product, equal up to rounding;
    * among a row's ``k`` neighbours, equal margins go to the nearer neighbour (``argmax``, as LASER);
    * proposals are sorted by margin descending with a stable sort over ``[forward..., backward...]``,
      so equal margins keep forward proposals (by source index) before backward ones;
    * no threshold is applied (LASER drops scores ``<= --threshold``, default 0): callers threshold.

    Args:
        source: ``(n, d)`` source-language embeddings.
        target: ``(m, d)`` target-language embeddings.
        k: neighbourhood size, ``>= 1`` (LASER's default 4).
        index_type: the nearest-neighbour search (:func:`~paraxl.retrieval.topk.knn`).

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
    # x and y are normalised once, here, as the sharded search does: unit_knn does not normalise again
    forward_sim, forward_ind = unit_knn(x, y, min(k, m), index_type)  # (n, k') each
    backward_sim, backward_ind = unit_knn(y, x, min(k, n), index_type)  # (m, k'') each
    return margin_candidates(forward_sim, forward_ind, backward_sim, backward_ind)


def margin_candidates(
    forward_sim: FloatArray, forward_ind: IntArray, backward_sim: FloatArray, backward_ind: IntArray
) -> MiningCandidates:
    """The ratio margins, proposals and greedy 1-to-1 pass of :func:`ratio_margin_candidates`, from its kNN.

    Everything after the two searches, so a search done elsewhere (shard by shard,
    :mod:`paraxl.retrieval.sharded_knn`) that returns the same neighbours gives the same pairs and scores.

    Args:
        forward_sim: ``(n, k')`` cosines of each source to its nearest targets, descending along a row.
        forward_ind: ``(n, k')`` the target rows they belong to.
        backward_sim: ``(m, k'')`` cosines of each target to its nearest sources, descending.
        backward_ind: ``(m, k'')`` the source rows they belong to.

    Raises:
        ValueError: a neighbourhood mean similarity is ``<= 0``.
    """
    n, m = forward_sim.shape[0], backward_sim.shape[0]
    forward_mean = forward_sim.mean(axis=1)  # (n,)
    backward_mean = backward_sim.mean(axis=1)  # (m,)
    if (forward_mean <= 0).any() or (backward_mean <= 0).any():
        raise ValueError("a neighbourhood mean cosine is <= 0; the ratio margin is undefined for these embeddings")

    # forward: source i against its neighbours forward_ind[i, c]
    forward_margin = forward_sim / ((forward_mean[:, None] + backward_mean[forward_ind]) / 2)
    forward_col = np.argmax(forward_margin, axis=1)  # (n,)
    # backward: target j against its neighbours backward_ind[j, c]; the denominator is symmetric
    backward_margin = backward_sim / ((backward_mean[:, None] + forward_mean[backward_ind]) / 2)
    backward_col = np.argmax(backward_margin, axis=1)  # (m,)

    source_index = np.concatenate([np.arange(n), backward_ind[np.arange(m), backward_col]])  # (n + m,)
    target_index = np.concatenate([forward_ind[np.arange(n), forward_col], np.arange(m)])  # (n + m,)
    score = np.concatenate([forward_margin[np.arange(n), forward_col], backward_margin[np.arange(m), backward_col]])
    keep = _greedy_one_to_one(source_index, target_index, score, n, m)
    return MiningCandidates(
        source_index=source_index[keep].astype(np.int64),
        target_index=target_index[keep].astype(np.int64),
        score=score[keep].astype(np.float64),
    )


def _greedy_one_to_one(
    source_index: np.ndarray, target_index: np.ndarray, score: np.ndarray, n: int, m: int
) -> IntArray:
    """Positions of the proposals kept, best margin first, when neither side is already used."""
    order = np.argsort(-score, kind="stable")
    kept: list[int] = []
    used_source = np.zeros(n, dtype=bool)
    used_target = np.zeros(m, dtype=bool)
    for position, i, j in zip(order.tolist(), source_index[order].tolist(), target_index[order].tolist(), strict=True):
        if not used_source[i] and not used_target[j]:
            used_source[i] = True
            used_target[j] = True
            kept.append(position)
    return np.array(kept, dtype=np.int64)
