"""Input checks and helpers shared by the metric modules.

Every metric converts its inputs with these helpers, so a bad input fails the same way
everywhere: a ``ValueError`` whose message names the argument. Nothing here writes to a
caller's array: normalisation divides in place only the copy made by the float64 conversion.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Elements (float64) in one block of a chunked similarity matrix: 2**22 * 8 bytes = 32 MiB.
# A few temporaries of this size stay well within the ~200 MB budget even for 20k x 384 inputs.
BLOCK_ELEMENTS = 1 << 22


def embeddings(x: npt.ArrayLike, name: str) -> FloatArray:
    """``x`` as a float64 ``(n, d)`` array with ``n, d >= 1`` and finite entries (a copy if it was not float64)."""
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (n, d), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains non-finite values")
    return array


def l2_normalised(x: npt.ArrayLike, name: str) -> FloatArray:
    """Rows of ``x`` scaled to unit L2 norm (a new float64 array); a zero row has no direction and is refused."""
    array = embeddings(x, name)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        row = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise ValueError(f"{name} row {row} is a zero vector; cosine similarity is undefined for it")
    if isinstance(x, np.ndarray) and np.may_share_memory(array, x):
        normalised: FloatArray = array / norms  # the caller's float64 array: allocate, never write to it
        return normalised
    array /= norms  # our own conversion copy (e.g. from float32): reuse it rather than hold two copies
    return array


def same_dimension(a: FloatArray, b: FloatArray, names: tuple[str, str]) -> None:
    """Refuse embeddings of different widths."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} has dimension {a.shape[1]} but {names[1]} has dimension {b.shape[1]}")


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


def row_chunk(columns: int) -> int:
    """Rows per block so that a ``(rows, columns)`` float64 block holds about ``BLOCK_ELEMENTS`` entries."""
    return max(1, BLOCK_ELEMENTS // max(1, columns))
