"""Rows scaled to unit L2 norm, and the cosine similarities built on them.

Three normalisers, one per contract a caller needs (they differ on purpose, each keeps its
callers' numbers exactly):

* :func:`unit_rows`: lenient; a zero row stays zero (its norm is floored at ``1e-12``). Tasks and
  the cosine helpers, whose inputs are model embeddings.
* :func:`l2_normalised`: strict float64; non-finite, empty or zero rows are a ``ValueError`` naming
  the argument. Metrics and bitext mining, which must not score a meaningless row.
* :func:`unit_float32_rows`: the vector index's form, C-contiguous float32, left as it is (no copy)
  when already unit length; a bad row is an :class:`~paraxl.errors.InputError` for the user.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from paraxl.errors import InputError
from paraxl.retrieval.checks import FloatArray, embeddings

# a float32 row counts as unit length within this tolerance (then it is not rescaled, nor copied)
UNIT_TOLERANCE = 1e-6
# a stored row (read back from an index file) must be unit length within this: float32 rounding stays
# near 1e-7, while a damaged or altered file (a row scaled x1000 "wins" every query) is far outside
STORED_NORM_TOLERANCE = 1e-3


def unit_rows(matrix: npt.ArrayLike, dtype: npt.DTypeLike | None = np.float64) -> np.ndarray:
    """Rows scaled to unit L2 norm, so dot products are cosines; zero rows stay zero.

    Args:
        matrix: ``(n, d)`` vectors.
        dtype: the result's dtype (default float64); ``None`` keeps the input's (float32 stays float32).

    Returns:
        ``(n, d)`` array of unit (or zero) rows.
    """
    array = np.asarray(matrix, dtype=dtype)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)  # (n, 1)
    unit: np.ndarray = array / np.maximum(norms, 1e-12)
    return unit


def l2_normalised(x: npt.ArrayLike, name: str) -> FloatArray:
    """Rows of ``x`` scaled to unit L2 norm (a new float64 array); a zero row has no direction and is refused.

    Nothing is written to the caller's array: only the copy made by the float64 conversion is divided
    in place.
    """
    array = embeddings(x, name)
    norms = np.linalg.norm(array, axis=1, keepdims=True)  # (n, 1)
    if (norms == 0).any():
        row = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise ValueError(f"{name} row {row} is a zero vector; cosine similarity is undefined for it")
    if isinstance(x, np.ndarray) and np.may_share_memory(array, x):
        normalised: FloatArray = array / norms  # the caller's float64 array: allocate, never write to it
        return normalised
    array /= norms  # our own conversion copy (e.g. from float32): reuse it rather than hold two copies
    return array


def unit_float32_rows(matrix: np.ndarray, what: str = "vectors") -> np.ndarray:
    """``matrix`` (n, dim) of numbers as C-contiguous float32 unit rows (not copied if it already is).

    Raises:
        InputError: dimension 0, a row with NaN or infinity, or an all-zero row (``what`` names them).
    """
    array = np.ascontiguousarray(matrix, dtype=np.float32)
    if array.shape[0] == 0:
        return array
    if array.shape[1] == 0:
        raise InputError(f"{what} have dimension 0")
    finite = np.isfinite(array).all(axis=1)  # (n,)
    if not finite.all():
        raise InputError(f"{what} row {int(np.argmin(finite))} holds NaN or infinity")
    norms = np.linalg.norm(array, axis=1)  # (n,)
    if (norms == 0).any():
        raise InputError(f"{what} row {int(np.argmin(norms))} is all zeros: it has no direction to compare")
    if np.abs(norms - 1).max() <= UNIT_TOLERANCE:
        return array
    normalised: np.ndarray = array / norms[:, None]
    return normalised


def checked_unit_rows(matrix: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Refuse the first row of ``matrix`` (n, dim) that is not finite and of unit length.

    For vectors read back from an index, which were stored as unit rows: one vectorised pass (the
    squared norms; NaN and infinity make them non-finite), no copy of ``matrix``. ``rows``: the row
    numbers of ``matrix``'s rows, when it holds a part of the index (default 0..n-1).

    Raises:
        InputError: "row N holds NaN or infinity" or "row N has norm X, not 1" (no path: the caller adds it).
    """
    if matrix.shape[0] == 0:
        return
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))  # (n,)
    bad = np.flatnonzero(~(np.abs(norms - 1) <= STORED_NORM_TOLERANCE))  # NaN compares false: caught
    if bad.size == 0:
        return
    first = int(bad[0])
    row = int(rows[first]) if rows is not None else first
    if not np.isfinite(matrix[first]).all():
        raise InputError(f"row {row} holds NaN or infinity (stored vectors are finite unit rows)")
    raise InputError(
        f"row {row} has norm {float(norms[first]):.6g}, not 1 (stored vectors are unit rows: "
        "the file was damaged or altered)"
    )


def cosine_matrix(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Shapes: (n, dim), (m, dim) -> (n, m) cosine similarities (inputs need not be normalised).

    Computed in the inputs' dtype (float32 embeddings give float32 cosines).
    """
    scores: np.ndarray = unit_rows(queries, dtype=None) @ unit_rows(candidates, dtype=None).T
    return scores


def paired_cosine(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Shapes: (n, dim), (n, dim) -> (n,) cosine of each row pair, in the inputs' dtype."""
    if first.shape != second.shape:
        raise ValueError(f"paired inputs differ in shape: {first.shape} vs {second.shape}")
    scores: np.ndarray = np.sum(unit_rows(first, dtype=None) * unit_rows(second, dtype=None), axis=-1)
    return scores
