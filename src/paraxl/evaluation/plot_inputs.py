"""Input checks shared by the plot functions: every input is validated before anything is drawn.

Each check raises ``ValueError`` naming the argument, so a bad input leaves no file behind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def vector(name: str, values: npt.ArrayLike) -> FloatArray:
    """``values`` as a non-empty, finite 1-D float array."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: not numeric ({error})") from error
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name}: empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains non-finite values (NaN or inf)")
    return array


def finite(name: str, value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: not a number ({value!r})") from error
    if not math.isfinite(number):
        raise ValueError(f"{name}: must be finite, got {number}")
    return number


def same_length(x_name: str, x: FloatArray, y_name: str, y: FloatArray) -> None:
    if x.size != y.size:
        raise ValueError(f"{x_name} has {x.size} values but {y_name} has {y.size}")


def bin_count(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    return int(bins)


def checked_values(name: str, values: Mapping[str, float]) -> dict[str, float]:
    if not values:
        raise ValueError(f"{name}: empty")
    return {str(key): finite(f"{name}[{key}]", value) for key, value in values.items()}


def check_format(fmt: str) -> None:
    try:
        fmt.format(1.0)
    except (IndexError, KeyError, ValueError) as error:
        raise ValueError(f"fmt {fmt!r} cannot format a float: {error}") from error
