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
PartScores = tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]  # (cosines, cross scores, 0/1 labels), each (n,)


@dataclass(frozen=True)
class Ceiling:
    mean: float  # mean over parts of each part's accuracy
    share: float  # share of all pairs sent to the cross-encoder


class CascadeCeilings:
    """The ceilings of one set of scored parts, each model at its threshold: pooled, weighted and
    grouped by cosine once, then asked per budget."""

    def __init__(self, parts: Mapping[str, PartScores], bi_threshold: float, cross_threshold: float) -> None:
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
        # (n,) 1 / (parts x the pair's part size): they sum to 1, a sum of them is a mean over parts
        weights = np.concatenate([np.full(part[2].size, 1.0 / (len(arrays) * part[2].size)) for part in arrays])
        gold = labels.astype(bool)
        bi_right, cross_right = (cos >= bi_threshold) == gold, (cross >= cross_threshold) == gold
        self.n = int(cos.size)
        self.groups = band_groups(cos, bi_right, cross_right, weights)
        self.router_gains = np.sort(weights[cross_right & ~bi_right])[::-1]  # heaviest first

    def band(self, budget: float) -> Ceiling:
        """The best cosine band of at most ``budget`` of these pairs, chosen on them."""
        start, stop, gain = best_band(self.groups, _width(budget, self.n))
        return Ceiling(self.groups.bi_correct + gain, int(self.groups.counts[start:stop].sum()) / self.n)

    def router(self, budget: float) -> Ceiling:
        """The best any router could do sending at most ``budget`` of these pairs to the cross-encoder."""
        sent = min(_width(budget, self.n), self.router_gains.size)
        return Ceiling(self.groups.bi_correct + float(self.router_gains[:sent].sum()), sent / self.n)


def _width(budget: float, n: int) -> int:
    if not (math.isfinite(budget) and 0.0 <= budget <= 1.0):
        raise InputError(f"the cross-encoder budget is a share of pairs in [0, 1], got {budget:g}")
    return math.floor(budget * n + 1e-9)
