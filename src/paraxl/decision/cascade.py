"""A bi-encoder / cross-encoder cascade: the cross-encoder decides only where the bi-encoder is unsure.

Pairs whose bi-encoder cosine falls in the uncertainty band ``[lo, hi)`` go to the cross-encoder
(decided at its own threshold); outside it the bi-encoder decides at its threshold. Everything is
fitted on validation pairs only (:func:`fit_cascade`): both thresholds (accuracy-maximising, each
model alone, :func:`paraxl.decision.threshold.best_threshold`), then the band for a target:

    budget             share of pairs the cross-encoder may see (0.3): the band holding at most that
                       many validation pairs with the highest validation accuracy;
    target accuracy    the smallest band (fewest pairs sent) whose validation accuracy reaches it;
                       unreachable targets raise :class:`~paraxl.errors.InputError` naming the best.

Fitting: with both thresholds fixed, a band's accuracy is ``(bi correct + sum over the band of
(cross correct - bi correct)) / n``. Sorted by cosine, a band is a contiguous run of distinct cosine
values, so its gain is a difference of prefix sums, and the best band of at most ``w`` pairs comes
from one pass with a sliding-window minimum over the prefix sums (O(n log n) for the sort). Ties:
higher gain, then fewer pairs, then the lower band. Band edges sit midway between the distinct
cosines they separate, so no validation pair lies on an edge.

Applying it (:class:`CascadeRule`, :class:`CascadeScorer`) scores every pair with the bi-encoder
and only the in-band pairs with the cross-encoder; the result says per pair which model decided.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paraxl.decision.scorers import Pair, PairScorer
from paraxl.decision.threshold import best_threshold
from paraxl.decision.two_model_file import TwoModelRule
from paraxl.errors import InputError, ModelFormatError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
BI, CROSS = "bi", "cross"


@dataclass(frozen=True)
class CascadeRule:
    """The fitted decision rule: band ``[lo, hi)`` on cosine, and each model's threshold.

    An empty band has ``lo == hi``; the full band runs from below the lowest validation cosine to
    above the highest (``lo`` -inf / ``hi`` +inf when stored would not be JSON, so finite margins).
    """

    lo: float
    hi: float
    bi_threshold: float
    cross_threshold: float

    def in_band(self, cosines: npt.ArrayLike) -> BoolArray:
        """(n,) True where the cross-encoder decides."""
        values = np.asarray(cosines, dtype=np.float64)
        band: BoolArray = (values >= self.lo) & (values < self.hi)
        return band

    def decide(self, cosines: npt.ArrayLike, cross_scores: npt.ArrayLike) -> BoolArray:
        """(n,) paraphrase decisions; ``cross_scores`` is read only in the band (NaN elsewhere is fine)."""
        values = np.asarray(cosines, dtype=np.float64)
        cross = np.asarray(cross_scores, dtype=np.float64)
        band = self.in_band(values)
        with np.errstate(invalid="ignore"):  # NaN cross scores outside the band compare False, unused
            decided: BoolArray = np.where(band, cross >= self.cross_threshold, values >= self.bi_threshold)
        return decided


@dataclass(frozen=True)
class CascadeFit:
    """A fitted rule and what it does on the validation pairs it was fitted on.

    ``budget`` is the share of validation pairs in the band; ``target`` is what was asked
    (``{"budget": 0.3}`` or ``{"accuracy": 0.77}``).
    """

    rule: CascadeRule
    accuracy: float
    budget: float
    n_pairs: int
    bi_accuracy: float  # the bi-encoder alone at its threshold
    cross_accuracy: float  # the cross-encoder alone at its threshold
    target: dict[str, float]


@dataclass(frozen=True)
class BandGroups:
    """Pairs grouped by distinct cosine, ascending: values (g,), pairs per group (g,), gain per group
    (g,) = cross correct - bi correct (whole numbers; weighted: each pair's gain times its weight), and
    the bi-encoder's correct count (weighted: its pairs' summed weight)."""

    values: FloatArray
    counts: IntArray
    gains: FloatArray
    bi_correct: float

    def edge(self, index: int) -> float:
        """The cosine between group ``index - 1`` and group ``index``; outside them -2 and 2, beyond any
        cosine, so a band reaching the first or last group holds every test pair on that side too."""
        if index == 0:
            return -2.0
        if index == self.values.size:
            return 2.0
        return float((self.values[index - 1] + self.values[index]) / 2)


def _validated(
    cosines: npt.ArrayLike, cross_scores: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, BoolArray]:
    cos = np.asarray(cosines, dtype=np.float64).reshape(-1)
    cross = np.asarray(cross_scores, dtype=np.float64).reshape(-1)
    gold = np.asarray(labels).reshape(-1)
    if not (cos.shape == cross.shape == gold.shape):
        raise InputError(f"{cos.size} cosines, {cross.size} cross-encoder scores and {gold.size} labels differ")
    if cos.size == 0:
        raise InputError("no validation pairs to fit the cascade on")
    if not (np.isfinite(cos).all() and np.isfinite(cross).all()):
        raise InputError("validation scores must be finite")
    if not np.isin(gold, (0, 1)).all():
        raise InputError("validation labels must be 0 or 1")
    return cos, cross, gold.astype(bool)


def band_groups(
    cos: FloatArray, bi_right: BoolArray, cross_right: BoolArray, weights: FloatArray | None = None
) -> BandGroups:
    """Per distinct cosine (ascending): pair count and summed gain; ``weights`` (n,): what each pair
    counts for (None: 1 each, the fit's accuracy; the ceilings weigh pairs by their language)."""
    values, inverse = np.unique(cos, return_inverse=True)  # (g,), (n,)
    counts = np.bincount(inverse, minlength=values.size).astype(np.int64)  # (g,)
    change = cross_right.astype(np.float64) - bi_right
    if weights is None:
        gains = np.rint(np.bincount(inverse, weights=change, minlength=values.size)).astype(np.float64)  # whole pairs
        return BandGroups(values, counts, gains, float(bi_right.sum()))
    gains = np.bincount(inverse, weights=change * weights, minlength=values.size).astype(np.float64)
    return BandGroups(values, counts, gains, float(weights[bi_right].sum()))


def best_band(groups: BandGroups, width: int) -> tuple[int, int, float]:
    """``(start, stop, gain)``: the group run ``[start, stop)`` of at most ``width`` pairs with the
    highest gain (ties: fewer pairs, then the lower run); ``(0, 0, 0)`` is the empty band.

    Prefix sums ``C`` (pairs) and ``D`` (gain), (g + 1,): a run's pairs are ``C[stop] - C[start]``
    and its gain ``D[stop] - D[start]``. For each ``stop`` the allowed starts form a window that only
    moves right, so a deque keeps the start with the smallest ``D`` (the latest among equals: fewer pairs).
    """
    count_sums = np.concatenate([[0], np.cumsum(groups.counts)]).tolist()
    # rounded: weighted gains (the ceilings) sum with float noise, which would let a band of no real
    # gain beat the empty one; whole-number gains (every fit) are untouched
    gain_sums = np.round(np.concatenate([[0], np.cumsum(groups.gains)]), 12).tolist()
    best = (0, 0, 0, 0)  # (gain, -pairs, -start, stop) compared as a key; the empty band first
    window: deque[int] = deque()
    first_allowed = 0
    for stop in range(len(count_sums)):
        while window and gain_sums[window[-1]] >= gain_sums[stop]:
            window.pop()  # a later start with no larger D is never worse
        window.append(stop)
        while count_sums[stop] - count_sums[first_allowed] > width:
            first_allowed += 1
        while window[0] < first_allowed:
            window.popleft()
        start = window[0]
        gain = gain_sums[stop] - gain_sums[start]
        key = (gain, -(count_sums[stop] - count_sums[start]), -start, stop)
        if stop > start and (key[0], key[1], key[2]) > (best[0], best[1], best[2]):
            best = key
    return -best[2], best[3], best[0]


def _band_pairs(groups: BandGroups, start: int, stop: int) -> int:
    return int(groups.counts[start:stop].sum())


def fit_cascade(
    cosines: npt.ArrayLike,
    cross_scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    budget: float | None = None,
    target_accuracy: float | None = None,
) -> CascadeFit:
    """Fit thresholds and band on validation pairs (module docstring); give exactly one target.

    Args:
        cosines: (n,) the bi-encoder's scores of the validation pairs.
        cross_scores: (n,) the cross-encoder's scores of the same pairs.
        labels: (n,) gold 0/1. Never pass the pairs the cascade will be scored on.
        budget: the share of pairs the cross-encoder may see, in [0, 1].
        target_accuracy: the validation accuracy to reach with the fewest pairs sent, in (0, 1].
    """
    if (budget is None) == (target_accuracy is None):
        raise InputError("give either a cross-encoder budget or an accuracy target")
    cos, cross, gold = _validated(cosines, cross_scores, labels)
    bi_threshold, bi_accuracy = best_threshold(cos, gold)
    cross_threshold, cross_accuracy = best_threshold(cross, gold)
    groups = band_groups(cos, (cos >= bi_threshold) == gold, (cross >= cross_threshold) == gold)
    n = int(cos.size)
    if budget is not None:
        if not (math.isfinite(budget) and 0.0 <= budget <= 1.0):
            raise InputError(f"the cross-encoder budget is a share of pairs in [0, 1], got {budget:g}")
        start, stop, gain = best_band(groups, math.floor(budget * n + 1e-9))
        target = {"budget": budget}
    else:
        assert target_accuracy is not None
        start, stop, gain = _smallest_band_reaching(groups, target_accuracy, n, cross_accuracy)
        target = {"accuracy": target_accuracy}
    # an empty band (stop == start) has lo == hi
    rule = CascadeRule(groups.edge(start), groups.edge(stop), bi_threshold, cross_threshold)
    return CascadeFit(
        rule=rule,
        accuracy=(groups.bi_correct + gain) / n,
        budget=_band_pairs(groups, start, stop) / n,
        n_pairs=n,
        bi_accuracy=bi_accuracy,
        cross_accuracy=cross_accuracy,
        target=target,
    )


def _smallest_band_reaching(groups: BandGroups, target: float, n: int, cross_accuracy: float) -> tuple[int, int, float]:
    """The band of the fewest pairs whose accuracy reaches ``target`` (binary search on the width:
    the best gain within ``w`` pairs never falls as ``w`` grows)."""
    if not (math.isfinite(target) and 0.0 < target <= 1.0):
        raise InputError(f"the accuracy target is in (0, 1], got {target:g}")
    needed = math.ceil(target * n - 1e-9) - groups.bi_correct  # gain (pairs) to reach the target
    widest = best_band(groups, n)
    if widest[2] < needed:
        reached = (groups.bi_correct + widest[2]) / n
        raise InputError(
            f"accuracy target {target:.4f} is not reachable on these validation pairs: the best cascade "
            f"reaches {reached:.4f} (sending {_band_pairs(groups, widest[0], widest[1]) / n:.1%} of pairs; "
            f"bi-encoder alone {groups.bi_correct / n:.4f}, cross-encoder alone {cross_accuracy:.4f})"
        )
    low, high = 0, n  # invariant: width ``high`` reaches it
    while low < high:
        middle = (low + high) // 2
        if best_band(groups, middle)[2] >= needed:
            high = middle
        else:
            low = middle + 1
    return best_band(groups, high)


@dataclass(frozen=True)
class CascadeDecisions:
    """Per pair (n,): the bi-encoder cosine, the cross-encoder score (NaN where it was not run),
    the decision, and which model made it (``"bi"`` or ``"cross"``)."""

    cosines: FloatArray
    cross_scores: FloatArray
    labels: BoolArray
    decided_by: list[str]

    @property
    def scores(self) -> FloatArray:
        """(n,) the deciding model's score per pair."""
        cross = np.array([who == CROSS for who in self.decided_by], dtype=bool)
        chosen: FloatArray = np.where(cross, self.cross_scores, self.cosines)
        return chosen

    @property
    def cross_share(self) -> float:
        """Share of pairs the cross-encoder scored."""
        return float(np.mean([who == CROSS for who in self.decided_by])) if self.decided_by else 0.0


class CascadeScorer:
    """Applies a :class:`CascadeRule`: cosines for every pair, cross-encoder scores for in-band pairs only.

    Args:
        rule: the fitted rule (from :func:`fit_cascade`, or a loaded artifact).
        bi: the bi-encoder's :class:`PairScorer` (cosines, scored as at fitting time).
        cross: the cross-encoder's :class:`PairScorer` (sigmoid scores).
    """

    def __init__(self, rule: CascadeRule, bi: PairScorer, cross: PairScorer) -> None:
        self.rule = rule
        self.bi = bi
        self.cross = cross

    def decide(self, pairs: Sequence[Pair]) -> CascadeDecisions:
        """Decisions for ``pairs`` (the cross-encoder runs once, on the in-band pairs only)."""
        cosines = self.bi.score(pairs)  # (n,)
        band = self.rule.in_band(cosines)  # (n,)
        cross_scores = np.full(cosines.shape, np.nan)
        rows = np.flatnonzero(band)
        if rows.size:
            cross_scores[rows] = self.cross.score([pairs[row] for row in rows.tolist()])
        decided = self.rule.decide(cosines, cross_scores)
        return CascadeDecisions(cosines, cross_scores, decided, [CROSS if inside else BI for inside in band])


def rule_fields(rule: CascadeRule) -> dict[str, float | list[float]]:
    """The ``rule`` section of a :class:`~paraxl.decision.two_model_file.TwoModelRule` of kind cascade."""
    return {"lo": rule.lo, "hi": rule.hi, "bi_threshold": rule.bi_threshold, "cross_threshold": rule.cross_threshold}


def validation_fields(fit: CascadeFit) -> dict[str, float | int]:
    """The ``validation`` section: what the rule does on the pairs it was fitted on."""
    return {
        "accuracy": fit.accuracy,
        "budget": fit.budget,
        "n_pairs": fit.n_pairs,
        "bi_accuracy": fit.bi_accuracy,
        "cross_accuracy": fit.cross_accuracy,
    }


def cascade_rule(stored: TwoModelRule) -> CascadeRule:
    """The :class:`CascadeRule` of a loaded rule file (kind cascade)."""
    if stored.kind != "cascade":
        raise InputError(f"the rule file holds a {stored.kind}, not a cascade")
    lo, hi = stored.number("lo"), stored.number("hi")
    if hi < lo:
        raise ModelFormatError(f"bad cascade rule: hi {hi:g} is below lo {lo:g}")
    return CascadeRule(lo, hi, stored.number("bi_threshold"), stored.number("cross_threshold"))
