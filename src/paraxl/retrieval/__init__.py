"""Similarity search shared by bitext mining, the BUCC and Tatoeba tasks, and the vector index.

Row normalisation and cosines (:mod:`~paraxl.retrieval.normalize`), exact and FAISS top-k
(:mod:`~paraxl.retrieval.topk`, :mod:`~paraxl.retrieval.faiss_index`), one interface over the index
types exact / flat / ivf / hnsw (:mod:`~paraxl.retrieval.search_index`) and ratio-margin mining
candidates (:mod:`~paraxl.retrieval.margin`). Depends on numpy, faiss (lazily) and
:mod:`paraxl.errors` only: no torch, nothing from the layers above.
"""

from __future__ import annotations

from paraxl.retrieval.faiss_index import FAISS_INDEX_TYPES, FaissIndex, default_nlist
from paraxl.retrieval.margin import MiningCandidates, ratio_margin_candidates
from paraxl.retrieval.normalize import (
    checked_unit_rows,
    cosine_matrix,
    l2_normalised,
    paired_cosine,
    unit_float32_rows,
    unit_rows,
)
from paraxl.retrieval.search_index import INDEX_TYPES, ExactIndex, SearchIndex, build_index
from paraxl.retrieval.topk import KNN_INDEX_TYPES, KnnIndexType, exact_topk, knn

__all__ = [
    "FAISS_INDEX_TYPES",
    "INDEX_TYPES",
    "KNN_INDEX_TYPES",
    "ExactIndex",
    "FaissIndex",
    "KnnIndexType",
    "MiningCandidates",
    "SearchIndex",
    "build_index",
    "checked_unit_rows",
    "cosine_matrix",
    "default_nlist",
    "exact_topk",
    "knn",
    "l2_normalised",
    "paired_cosine",
    "ratio_margin_candidates",
    "unit_float32_rows",
    "unit_rows",
]
