"""Input checks shared by the similarity code: float64 ``(n, d)`` matrices, equal widths, block sizes,
index parameters.

Every array check fails with a ``ValueError`` whose message names the argument, so a bad input fails
the same way in every metric and search that uses them; index parameters come from a user (CLI,
``index.json``) and fail with an :class:`~paraxl.errors.InputError`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from paraxl.errors import InputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

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


def same_dimension(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating], names: tuple[str, str]) -> None:
    """Refuse embeddings of different widths."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} has dimension {a.shape[1]} but {names[1]} has dimension {b.shape[1]}")


def row_chunk(columns: int, block_elements: int = BLOCK_ELEMENTS) -> int:
    """Rows per block so that a ``(rows, columns)`` block holds about ``block_elements`` entries (>= 1 row)."""
    return max(1, block_elements // max(1, columns))


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    """An index parameter as an ``int >= minimum``; anything else is an :class:`InputError`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise InputError(f"index parameter {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_params(index_type: str, params: dict[str, object], allowed: tuple[str, ...]) -> None:
    """Refuse parameters that index type ``index_type`` does not take."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise InputError(f"index type {index_type!r} takes {takes}; got {', '.join(unknown)}")
