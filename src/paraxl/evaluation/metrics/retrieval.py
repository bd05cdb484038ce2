"""Nearest-neighbour translation retrieval accuracy (Tatoeba).

Reference: Artetxe & Schwenk (2019), "Massively Multilingual Sentence Embeddings for Zero-Shot
Cross-Lingual Transfer and Beyond", TACL, Tatoeba similarity search; MTEB's Tatoeba bitext mining
reports the same quantity. A query is correct when its most cosine-similar corpus row is its own
translation. Tatoeba is scored in both directions: call this with ``(source, target)`` and with
``(target, source)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from paraxl.retrieval import exact_topk, l2_normalised
from paraxl.retrieval.checks import same_dimension


def nearest_neighbor_accuracy(queries: npt.ArrayLike, corpus: npt.ArrayLike) -> float:
    """Fraction of queries ``i`` whose exact cosine nearest neighbour in ``corpus`` is row ``i``.

    Both inputs are L2-normalised, so the inner product is the cosine. The search is exact
    (float64, :func:`paraxl.retrieval.exact_topk` with ``k = 1``, in query blocks of about ``2**22``
    similarities). Ties are broken toward the lower corpus index, so a query tied between its
    translation ``i`` and a duplicate at ``j < i`` counts as wrong: a deterministic, pessimistic rule.

    Args:
        queries: ``(n, d)`` query embeddings.
        corpus: ``(m, d)`` corpus embeddings, ``m >= n``; row ``i < n`` translates query ``i`` and
            any rows beyond ``n`` are distractors.

    Returns:
        Accuracy in ``[0, 1]``.
    """
    query_points = l2_normalised(queries, "queries")
    corpus_points = l2_normalised(corpus, "corpus")
    same_dimension(query_points, corpus_points, ("queries", "corpus"))
    n, m = int(query_points.shape[0]), int(corpus_points.shape[0])
    if m < n:
        raise ValueError(f"corpus has {m} rows but queries has {n}; query i must have its translation at corpus row i")
    _, nearest = exact_topk(query_points, corpus_points, 1)  # (n, 1) corpus rows
    correct = int(np.count_nonzero(nearest[:, 0] == np.arange(n)))
    return correct / n
