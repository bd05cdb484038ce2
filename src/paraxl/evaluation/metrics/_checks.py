"""Input checks shared by the metric modules (score vectors, labels, row-aligned embeddings).

Every metric converts its inputs with these helpers, so a bad input fails the same way
everywhere: a ``ValueError`` whose message names the argument. The embedding checks that
similarity search needs too (``embeddings``, ``l2_normalised``, ``same_dimension``, ``row_chunk``)
live in :mod:`paraxl.retrieval.checks` and :mod:`paraxl.retrieval.normalize`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def same_shape(a: FloatArray, b: FloatArray, names: tuple[str, str]) -> None:
    """Refuse row-aligned embeddings whose shapes differ."""
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} has shape {a.shape} but {names[1]} has shape {b.shape}; rows must be aligned")


def finite_vector(x: npt.ArrayLike, name: str) -> FloatArray:
    """``x`` flattened to a non-empty, finite float64 vector."""
    array = np.asarray(x, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains non-finite values")
    return array


def binary_labels(labels: npt.ArrayLike, size: int) -> BoolArray:
    """0/1 (or boolean) labels of length ``size`` as a boolean vector."""
    array = np.asarray(labels).reshape(-1)
    if array.size != size:
        raise ValueError(f"{size} scores but {array.size} labels")
    if not np.isin(array, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return array.astype(bool)
