"""One object that applies a loaded cascade or fusion rule file, for the HTTP service.

:class:`RuleDecider` wraps :class:`~paraxl.decision.cascade.CascadeScorer` (the cross-encoder scores
only the pairs in the bi-encoder's uncertainty band) or :class:`~paraxl.decision.fusion.FusionScorer`
(both score every pair) and answers, per pair, everything a client may want: both models' scores
where they exist, the deciding score and the threshold it was compared with, the fused probability
(fusion only), the label and which model decided (``bi``, ``cross`` or ``fusion``). ``paraxl pi
--cascade`` and ``paraxl serve --cascade`` both decide through it.

:func:`backend_note` says when a model of the rule now scores on another numeric kind than it was
fitted on: the rule file stores each model's *weights* fingerprint (the same on every backend, and
checked: other weights are refused) and the backend that scored the fitting pairs. torch and the fp32
ONNX export score alike (every fp32 export is checked against torch to 1e-5), so they count as one
kind; an int8 export is of the same weights but has its own export fingerprint and scores a little
differently, so applying a rule fitted on fp32 scores with int8 scores (or the reverse) is allowed
with a one-line note: pairs near a threshold may be decided otherwise than at fitting time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paraxl.decision.cascade import BI, CROSS, CascadeRule, CascadeScorer, cascade_rule, rule_fields
from paraxl.decision.fusion import FusionRule, FusionScorer, fusion_rule
from paraxl.decision.fusion import rule_fields as fusion_fields
from paraxl.decision.scorers import Pair, PairScorer
from paraxl.decision.two_model_file import TwoModelRule

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
FUSION = "fusion"
INT8 = "onnx-int8"
ROLE_NAMES = {"bi": "bi-encoder", "cross": "cross-encoder"}


def stored_rule(stored: TwoModelRule) -> CascadeRule | FusionRule:
    """The rule a loaded rule file holds (:class:`~paraxl.errors.ModelFormatError` for bad numbers)."""
    return cascade_rule(stored) if stored.kind == "cascade" else fusion_rule(stored)


def rule_numbers(rule: CascadeRule | FusionRule) -> dict[str, float | list[float]]:
    """The rule's numbers, as its file stores them."""
    return rule_fields(rule) if isinstance(rule, CascadeRule) else fusion_fields(rule)


@dataclass(frozen=True)
class RuleDecisions:
    """Per pair (n,): the bi-encoder's cosine, the cross-encoder's score (NaN where it did not run),
    the deciding ``score`` and its ``threshold``, the fused probability (NaN for a cascade), the
    label and who decided."""

    cosines: FloatArray
    cross_scores: FloatArray
    scores: FloatArray
    thresholds: FloatArray
    probabilities: FloatArray
    labels: BoolArray
    decided_by: list[str]

    @property
    def cross_share(self) -> float:
        """Share of pairs the cross-encoder scored (1 for a fusion, 0 for no pairs)."""
        return float(np.mean([who != BI for who in self.decided_by])) if self.decided_by else 0.0


def backend_note(stored: TwoModelRule, bi_backend: str, cross_backend: str) -> str | None:
    """One line when a model scores on int8 where the rule was fitted on fp32 scores, or the reverse; else None.

    A cross-encoder without a recorded backend was fitted on torch (``cascade fit`` ran it on torch
    before the backend was recorded); a bi-encoder without one is not compared (it may have run on any).
    """
    recorded = {"bi": stored.bi.backend, "cross": stored.cross.backend or "torch"}
    used = {"bi": bi_backend, "cross": cross_backend}
    changed = [
        f"the {ROLE_NAMES[role]} scores on {used[role]} but the rule was fitted on its {recorded[role]} scores"
        for role in ROLE_NAMES
        if recorded[role] is not None and (recorded[role] == INT8) != (used[role] == INT8)
    ]
    if not changed:
        return None
    return (
        f"note: {'; '.join(changed)} (the same weights; an int8 export has its own fingerprint and scores a "
        "little differently), so pairs near a threshold may be decided otherwise; refit with these backends "
        "(`paraxl cascade fit --backend/--cross-backend`) to fit on these scores"
    )


class RuleDecider:
    """Applies ``rule`` with the bi-encoder's cosine scorer ``bi`` and the cross-encoder's scorer ``cross``."""

    def __init__(self, rule: CascadeRule | FusionRule, bi: PairScorer, cross: PairScorer) -> None:
        self.rule = rule
        self.bi = bi
        self.cross = cross

    def decide(self, pairs: Sequence[Pair]) -> RuleDecisions:
        """Decisions for ``pairs``: the cross-encoder runs once (on the in-band pairs of a cascade)."""
        n = len(pairs)
        if isinstance(self.rule, CascadeRule):
            decided = CascadeScorer(self.rule, self.bi, self.cross).decide(pairs)
            crossed = np.array([who == CROSS for who in decided.decided_by], dtype=bool)  # (n,)
            thresholds = np.where(crossed, self.rule.cross_threshold, self.rule.bi_threshold)
            return RuleDecisions(
                cosines=np.asarray(decided.cosines, dtype=np.float64),
                cross_scores=np.asarray(decided.cross_scores, dtype=np.float64),
                scores=np.asarray(decided.scores, dtype=np.float64),
                thresholds=thresholds.astype(np.float64),
                probabilities=np.full(n, np.nan),
                labels=np.asarray(decided.labels, dtype=bool),
                decided_by=list(decided.decided_by),
            )
        cosines, cross, probabilities, labels = FusionScorer(self.rule, self.bi, self.cross).decide(list(pairs))
        return RuleDecisions(
            cosines=np.asarray(cosines, dtype=np.float64),
            cross_scores=np.asarray(cross, dtype=np.float64),
            scores=np.asarray(probabilities, dtype=np.float64),
            thresholds=np.full(n, self.rule.threshold),
            probabilities=np.asarray(probabilities, dtype=np.float64),
            labels=np.asarray(labels, dtype=bool),
            decided_by=[FUSION] * n,
        )
