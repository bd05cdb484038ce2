"""Score fusion: one logistic regression on (bi-encoder cosine, cross-encoder logit) decides.

Where both models score every pair, their scores carry different evidence (the cross-encoder
reads the two sentences together; the bi-encoder's cosine is robust to its own failure modes).
:func:`fit_fusion` fits, on validation pairs only, scikit-learn's ``LogisticRegression`` on the
standardised features ``(cosine, logit(cross score))`` (default L2, C=1: the scale of e5's narrow
cosine range does not change the penalty, as in Platt scaling,
:func:`paraxl.decision.calibration.platt_parameters`). The decision threshold on the probability
is 0.5 or, with ``threshold="fitted"``, the accuracy-maximising cut of the *out-of-fold*
probabilities (stratified folds), so it is not fitted on probabilities the model was fitted on.

The stored rule is plain numbers in raw-feature space: ``P = sigmoid(coef . (cos, logit) + intercept)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from paraxl.decision.scorers import Pair, PairScorer
from paraxl.decision.threshold import accuracy_at, best_threshold
from paraxl.decision.two_model_file import TwoModelRule
from paraxl.errors import InputError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
LOGIT_CLIP = 1e-7  # cross-encoder scores are float32 sigmoids; clip before the logit so 0 and 1 stay finite
ThresholdChoice = Literal["half", "fitted"]


def features(cosines: npt.ArrayLike, cross_scores: npt.ArrayLike) -> FloatArray:
    """(n, 2) ``[cosine, logit(cross score)]``; the cross score is clipped to ``[1e-7, 1 - 1e-7]``."""
    cos = np.asarray(cosines, dtype=np.float64).reshape(-1)
    cross = np.clip(np.asarray(cross_scores, dtype=np.float64).reshape(-1), LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    if cos.shape != cross.shape:
        raise InputError(f"{cos.size} cosines but {cross.size} cross-encoder scores")
    return np.stack([cos, np.log(cross) - np.log1p(-cross)], axis=1)  # (n, 2)


@dataclass(frozen=True)
class FusionRule:
    """``P(paraphrase) = sigmoid(coef . features + intercept)``; paraphrase iff ``P >= threshold``."""

    coef: tuple[float, float]
    intercept: float
    threshold: float

    def probability(self, cosines: npt.ArrayLike, cross_scores: npt.ArrayLike) -> FloatArray:
        """(n,) fused probabilities."""
        from scipy.special import expit

        logits = features(cosines, cross_scores) @ np.asarray(self.coef) + self.intercept  # (n,)
        probabilities: FloatArray = expit(logits)
        return probabilities

    def decide(self, cosines: npt.ArrayLike, cross_scores: npt.ArrayLike) -> BoolArray:
        """(n,) decisions: ``P >= threshold``."""
        decided: BoolArray = self.probability(cosines, cross_scores) >= self.threshold
        return decided


@dataclass(frozen=True)
class FusionFit:
    """A fitted rule, its out-of-fold validation accuracy (at its threshold) and each model's alone
    (at its own validation-fitted threshold, fitted on all pairs: slightly optimistic, as labelled)."""

    rule: FusionRule
    held_out_accuracy: float
    fit_accuracy: float
    bi_accuracy: float
    cross_accuracy: float
    folds: int
    n_pairs: int


def fusion_model() -> Pipeline:
    """The estimator: standardise both features, then scikit-learn's default logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression())


def raw_parameters(model: Pipeline) -> tuple[tuple[float, float], float]:
    """``(coef, intercept)`` in raw-feature space of a fitted :func:`fusion_model`.

    With z = (x - mean) / scale and logit = a . z + b: logit = (a / scale) . x + (b - a . (mean / scale)).
    """
    scaler, regression = model[0], model[-1]
    slope = regression.coef_[0] / scaler.scale_  # (2,)
    intercept = float(regression.intercept_[0] - np.dot(regression.coef_[0], scaler.mean_ / scaler.scale_))
    return (float(slope[0]), float(slope[1])), intercept


def fit_fusion(
    cosines: npt.ArrayLike,
    cross_scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    threshold: ThresholdChoice = "half",
    folds: int = 5,
    seed: int = 0,
) -> FusionFit:
    """Fit the fusion on validation pairs (module docstring).

    Args:
        cosines, cross_scores: (n,) both models' scores of the validation pairs.
        labels: (n,) gold 0/1; both classes, at least 2 pairs each.
        threshold: ``half`` (P >= 0.5) or ``fitted`` (best cut of the out-of-fold probabilities).
        folds, seed: the stratified folds of the out-of-fold probabilities.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = features(cosines, cross_scores)  # (n, 2)
    gold = np.asarray(labels).reshape(-1)
    if gold.shape != (x.shape[0],) or not np.isin(gold, (0, 1)).all() or not np.isfinite(x).all():
        raise InputError("fusion needs finite scores and one 0/1 label per pair")
    if threshold not in ("half", "fitted"):
        raise InputError(f"unknown fusion threshold {threshold!r}; use half or fitted")
    smaller = int(min(gold.sum(), gold.size - gold.sum()))
    if smaller < 2 or folds < 2:
        raise InputError(f"fusion needs at least 2 pairs of each class and 2 folds (smaller class: {smaller})")
    used_folds = min(folds, smaller)
    splitter = StratifiedKFold(n_splits=used_folds, shuffle=True, random_state=seed)
    held_out = cross_val_predict(fusion_model(), x, gold, cv=splitter, method="predict_proba")[:, 1]  # (n,)
    cut = best_threshold(held_out, gold)[0] if threshold == "fitted" else 0.5
    coef, intercept = raw_parameters(fusion_model().fit(x, gold))
    rule = FusionRule(coef, intercept, float(cut))
    return FusionFit(
        rule=rule,
        held_out_accuracy=accuracy_at(held_out, gold, cut),
        fit_accuracy=float(np.mean(rule.decide(cosines, cross_scores) == gold.astype(bool))),
        bi_accuracy=best_threshold(np.asarray(cosines, dtype=np.float64), gold)[1],
        cross_accuracy=best_threshold(np.asarray(cross_scores, dtype=np.float64), gold)[1],
        folds=used_folds,
        n_pairs=int(gold.size),
    )


def rule_fields(rule: FusionRule) -> dict[str, float | list[float]]:
    """The ``rule`` section of a :class:`TwoModelRule` of kind fusion."""
    return {"coef": list(rule.coef), "intercept": rule.intercept, "threshold": rule.threshold}


def validation_fields(fit: FusionFit) -> dict[str, float | int]:
    """The ``validation`` section of a fusion's rule file."""
    return {
        "held_out_accuracy": fit.held_out_accuracy,
        "fit_accuracy": fit.fit_accuracy,
        "bi_accuracy": fit.bi_accuracy,
        "cross_accuracy": fit.cross_accuracy,
        "folds": fit.folds,
        "n_pairs": fit.n_pairs,
    }


def fusion_rule(stored: TwoModelRule) -> FusionRule:
    """The :class:`FusionRule` of a loaded rule file (kind fusion)."""
    if stored.kind != "fusion":
        raise InputError(f"the rule file holds a {stored.kind}, not a fusion")
    coef = stored.numbers("coef", 2)
    return FusionRule((coef[0], coef[1]), stored.number("intercept"), stored.number("threshold"))


class FusionScorer:
    """Applies a :class:`FusionRule`: both models score every pair; ``decide`` gives (P, decisions)."""

    def __init__(self, rule: FusionRule, bi: PairScorer, cross: PairScorer) -> None:
        self.rule = rule
        self.bi = bi
        self.cross = cross

    def decide(self, pairs: list[Pair]) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
        """``(cosines, cross_scores, probabilities, decisions)``, each (n,)."""
        cosines = self.bi.score(pairs)
        cross = self.cross.score(pairs)
        probabilities = self.rule.probability(cosines, cross)
        return cosines, cross, probabilities, probabilities >= self.rule.threshold
