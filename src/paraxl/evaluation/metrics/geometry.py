"""Alignment and uniformity of an embedding space.

Reference: Wang & Isola (2020), "Understanding Contrastive Representation Learning through
Alignment and Uniformity on the Hypersphere", ICML; definitions (eqs. 4-5 / their
``align_loss`` and ``uniform_loss``). Both are defined on the unit hypersphere, so every
function here L2-normalises its inputs first (a zero row is refused). Lower is better for both:
alignment is 0 when paraphrases coincide; uniformity is 0 when all points coincide and falls
toward its lower bound ``-4t`` (reached by two antipodal points) as they spread over the sphere.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.special import logsumexp

from paraxl.evaluation.metrics._checks import FloatArray, same_shape
from paraxl.retrieval.checks import BLOCK_ELEMENTS, row_chunk
from paraxl.retrieval.normalize import l2_normalised


def alignment(x: npt.ArrayLike, y: npt.ArrayLike, alpha: float = 2.0) -> float:
    """Mean over paraphrase pairs of ``||x_i - y_i||^alpha`` on L2-normalised rows.

    Args:
        x: ``(n, d)`` embeddings of the first sentence of each pair.
        y: ``(n, d)`` embeddings of the second sentence; row ``i`` paraphrases ``x[i]``.
        alpha: exponent, ``> 0`` (Wang & Isola use 2).

    Returns:
        A value in ``[0, 2^alpha]``: 0 when every pair coincides, ``2^alpha`` when every pair is antipodal.
    """
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha}")
    first = l2_normalised(x, "x")
    second = l2_normalised(y, "y")
    same_shape(first, second, ("x", "y"))
    distances = np.linalg.norm(first - second, axis=1)
    return float(np.mean(distances**alpha))


def uniformity(x: npt.ArrayLike, t: float = 2.0, max_pairs: int | None = None, seed: int = 0) -> float:
    """``log mean_{i<j} exp(-t ||x_i - x_j||^2)`` over distinct pairs of L2-normalised rows.

    Exact computation visits every pair ``i < j`` in row blocks of about ``2**22`` entries (32 MiB),
    so ``20_000 x 384`` inputs stay within ~200 MB. On the unit sphere
    ``||x_i - x_j||^2 = 2 - 2 x_i.x_j`` (clipped at 0 against rounding), and the mean of
    exponentials is accumulated as a log-sum-exp, so nothing under- or overflows for large ``t``.

    When ``max_pairs`` is given and the number of distinct pairs ``n(n-1)/2`` exceeds it, the mean
    is instead estimated on ``max_pairs`` pairs drawn uniformly (with replacement) from the distinct
    pairs with ``np.random.default_rng(seed)``: ``i`` uniform over rows, ``j`` uniform over the other
    rows. The estimate is deterministic for a given seed; note that ``log`` of a sample mean is a
    (slightly downward-) biased estimate of ``log`` of the mean.

    Args:
        x: ``(n, d)`` embeddings, ``n >= 2``.
        t: temperature, ``> 0`` (Wang & Isola use 2).
        max_pairs: optional cap on the pairs visited (``>= 1``); ``None`` = always exact.
        seed: seed of the pair sample (used only when sampling).

    Returns:
        A value in ``[-4t, 0]``: 0 when all points coincide, ``-4t`` for two antipodal points.
    """
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"t must be a finite number > 0, got {t}")
    if max_pairs is not None and max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1 or None, got {max_pairs}")
    points = l2_normalised(x, "x")
    n = points.shape[0]
    if n < 2:
        raise ValueError(f"uniformity needs at least 2 rows, got {n}")
    total_pairs = n * (n - 1) // 2
    if max_pairs is not None and total_pairs > max_pairs:
        return _sampled_uniformity(points, t, max_pairs, seed)
    return _exact_uniformity(points, t, total_pairs)


def _exact_uniformity(points: FloatArray, t: float, total_pairs: int) -> float:
    n = points.shape[0]
    block_lse: list[float] = []
    rows = row_chunk(n)
    for start in range(0, n - 1, rows):  # the last row has no partner j > i
        stop = min(start + rows, n)
        # Columns from `start` on: block[r, c] pairs row start+r with row start+c; only c > r is i < j.
        # Everything below works in place on this one block, so a block costs 32 MiB, not several.
        exponent = points[start:stop] @ points[start:].T  # Gram block
        exponent *= 2.0 * t
        exponent -= 2.0 * t  # -t ||x_i - x_j||^2 = -t (2 - 2 x_i.x_j)
        np.minimum(exponent, 0.0, out=exponent)  # ||.||^2 >= 0 despite rounding
        exponent[np.tril_indices(stop - start, k=0, m=n - start)] = -np.inf  # j <= i: not a pair
        block_lse.append(_logsumexp_in_place(exponent))
    return float(logsumexp(block_lse)) - math.log(total_pairs)


def _logsumexp_in_place(values: FloatArray) -> float:
    """``log(sum(exp(values)))`` without overflow (shift by the maximum); overwrites ``values``."""
    top = float(values.max())
    if top == -np.inf:  # no pair in this block
        return top
    values -= top
    np.exp(values, out=values)
    return top + math.log(float(values.sum()))


def _sampled_uniformity(points: FloatArray, t: float, max_pairs: int, seed: int) -> float:
    n, dim = points.shape
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n, size=max_pairs)
    # j uniform over the n-1 rows other than i: draw from [0, n-1) and skip over i.
    second = rng.integers(0, n - 1, size=max_pairs)
    second = second + (second >= first)
    block_lse: list[float] = []
    pairs_per_block = max(1, BLOCK_ELEMENTS // dim)  # two gathered (block, d) arrays per block
    for start in range(0, max_pairs, pairs_per_block):
        stop = min(start + pairs_per_block, max_pairs)
        dots = np.einsum("ij,ij->i", points[first[start:stop]], points[second[start:stop]])
        block_lse.append(float(logsumexp(-t * np.maximum(2.0 - 2.0 * dots, 0.0))))
    return float(logsumexp(block_lse)) - math.log(max_pairs)
