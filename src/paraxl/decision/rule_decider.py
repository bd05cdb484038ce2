"""One object that applies a loaded cascade or fusion rule file, for the HTTP service.

:class:`RuleDecider` wraps :class:`~paraxl.decision.cascade.CascadeScorer` (the cross-encoder scores
only the pairs in the bi-encoder's uncertainty band) or :class:`~paraxl.decision.fusion.FusionScorer`
(both score every pair) and answers, per pair, everything a client may want: both models' scores
where they exist, the deciding score and the threshold it was compared with, the fused probability
(fusion only), the label and which model decided (``bi``, ``cross`` or ``fusion``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paraxl.decision.cascade import CROSS, CascadeRule, CascadeScorer, cascade_rule, rule_fields
from paraxl.decision.fusion import FusionRule, FusionScorer, fusion_rule
from paraxl.decision.fusion import rule_fields as fusion_fields
from paraxl.decision.scorers import Pair, PairScorer
from paraxl.decision.two_model_file import TwoModelRule

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
FUSION = "fusion"


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


class RuleDecider:
    """Applies ``rule`` with the bi-encoder's cosine scorer ``bi`` and the cross-encoder's scorer ``cross``."""

    def __init__(self, rule: CascadeRule | FusionRule, bi: PairScorer, cross: PairScorer) -> None:
        self.rule = rule
        self.bi = bi
        self.cross = cross

    @property
    def kind(self) -> str:
        """``cascade`` or ``fusion``."""
        return "cascade" if isinstance(self.rule, CascadeRule) else FUSION

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
