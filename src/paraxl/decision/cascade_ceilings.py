"""What no cascade could beat on a set of scored pairs: ceilings, not results.

A cascade fitted on validation that misses its bar on test leaves a question open: was the band
unlucky, or can no band do it with these two models? Both ceilings are computed on the pairs they
are scored on, with each model at a given threshold (the validation-fitted ones, which every
cascade ``fit_cascade`` makes uses), so they bound a fitted rule that sends at most B of these pairs
(a band fitted on validation at B can send more of them) and are never a result:

- **band ceiling** at budget B: the best cosine band chosen on these very pairs, holding at most B
  of them (the fit's own search, :func:`~paraxl.decision.cascade.best_band`, run on the pairs it is
  scored on). No band fitted elsewhere does better on these pairs at that share.
- **router ceiling** at budget B: any router at all, knowing the gold labels: it sends the
  cross-encoder exactly the pairs it decides right and the bi-encoder wrong, as many as B allows.
  A cosine band is one such router, so this bounds the band ceiling too.

Accuracy is the mean over parts (languages, or en -> X cells) of each part's accuracy, as the PAWS-X
tables report it: a pair weighs ``1 / (parts x its part's pairs)``; the band search sums those
weights, and the router fills its budget with the heaviest pairs first (those of the smallest parts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paraxl.decision.cascade import band_groups, best_band
from paraxl.errors import InputError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
PartScores = tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]  # (cosines, cross scores, 0/1 labels), each (n,)


@dataclass(frozen=True)
class Ceiling:
    mean: float  # mean over parts of each part's accuracy
    share: float  # share of all pairs sent to the cross-encoder


@dataclass(frozen=True)
class _Pooled:
    cos: FloatArray  # (n,) every part's pairs, parts in order
    bi_right: BoolArray  # (n,) the bi-encoder right at its threshold
    cross_right: BoolArray  # (n,) the cross-encoder right at its threshold
    weights: FloatArray  # (n,) 1 / (parts x the pair's part size): they sum to 1


def _pooled(parts: Mapping[str, PartScores], bi_threshold: float, cross_threshold: float) -> _Pooled:
    arrays = [tuple(np.asarray(column, dtype=np.float64).reshape(-1) for column in part) for part in parts.values()]
    for name, (cos, cross, labels) in zip(parts, arrays, strict=True):
        if not cos.size == cross.size == labels.size:
            raise InputError(f"{name}: {cos.size} cosines, {cross.size} cross-encoder scores, {labels.size} labels")
    arrays = [part for part in arrays if part[2].size]
    if not arrays:
        raise InputError("no scored pairs to bound a cascade on")
    if not all(np.isfinite(part[i]).all() for part in arrays for i in (0, 1)):
        raise InputError("cosines and cross-encoder scores must be finite")
    if not all(np.isin(part[2], (0, 1)).all() for part in arrays):
        raise InputError("labels must be 0 or 1")
    if not (math.isfinite(bi_threshold) and math.isfinite(cross_threshold)):
        raise InputError(f"thresholds must be finite, got {bi_threshold:g} and {cross_threshold:g}")
    cos, cross, labels = (np.concatenate([part[i] for part in arrays]) for i in range(3))
    weights = np.concatenate([np.full(part[2].size, 1.0 / (len(arrays) * part[2].size)) for part in arrays])
    gold = labels.astype(bool)
    return _Pooled(cos, (cos >= bi_threshold) == gold, (cross >= cross_threshold) == gold, weights)


def _width(budget: float, n: int) -> int:
    if not (math.isfinite(budget) and 0.0 <= budget <= 1.0):
        raise InputError(f"the cross-encoder budget is a share of pairs in [0, 1], got {budget:g}")
    return math.floor(budget * n + 1e-9)


def band_ceiling(
    parts: Mapping[str, PartScores], budget: float, bi_threshold: float, cross_threshold: float
) -> Ceiling:
    """The best cosine band of at most ``budget`` of these pairs, chosen on them."""
    pooled = _pooled(parts, bi_threshold, cross_threshold)
    groups = band_groups(pooled.cos, pooled.bi_right, pooled.cross_right, pooled.weights)
    start, stop, gain = best_band(groups, _width(budget, pooled.cos.size))
    return Ceiling(groups.bi_correct + gain, int(groups.counts[start:stop].sum()) / pooled.cos.size)


def router_ceiling(
    parts: Mapping[str, PartScores], budget: float, bi_threshold: float, cross_threshold: float
) -> Ceiling:
    """The best any router could do sending at most ``budget`` of these pairs to the cross-encoder."""
    pooled = _pooled(parts, bi_threshold, cross_threshold)
    gains = np.sort(pooled.weights[pooled.cross_right & ~pooled.bi_right])[::-1]  # heaviest first
    sent = min(_width(budget, pooled.cos.size), gains.size)
    return Ceiling(float(pooled.weights[pooled.bi_right].sum() + gains[:sent].sum()), sent / pooled.cos.size)
