"""Calibrated paraphrase decisions: a threshold on cosine plus a probability, fitted on labeled pairs.

Two things are fitted on the same validation pairs, for two different questions:

* ``threshold``: "paraphrase or not?" — the cut of the cosine that maximises accuracy
  (:func:`paraxl.decision.threshold.best_threshold`); :meth:`Calibration.decide` is ``score >= threshold``.
* a probability calibration: "how sure?" — Platt scaling (a logistic regression on the 1-d score)
  or isotonic regression (a monotone step function). The two need not cross 0.5 at the threshold
  (with unbalanced classes the accuracy-maximising cut is not where the probability is 0.5).

``method="auto"`` picks the method with the lower *held-out log loss* over stratified K folds
(out-of-fold predictions pooled). Log loss rather than Brier: both are proper scoring rules, but
only log loss punishes a confident wrong answer without bound, and that is isotonic regression's
failure on small validation sets (its end blocks say probability 0 or 1 exactly). A user reading
"probability 0.00" must be able to trust it. Brier and ECE are reported beside it.

The fitted :class:`~paraxl.loading.calibration_file.Calibration` is stored as plain JSON
(``paraxl_calibration.json`` in the model folder) by :mod:`paraxl.loading.calibration_file`, so that
a loaded model carries it; when it may decide is :func:`paraxl.decision.decider.decider_for`'s rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from paraxl.decision.threshold import best_threshold
from paraxl.errors import InputError
from paraxl.loading.calibration_file import ECE_BINS, METHODS, Calibration, FloatArray, HeldOutMetrics

if TYPE_CHECKING:  # sklearn is imported only where a fit happens: ``pi`` needs none of it
    from sklearn.pipeline import Pipeline

MIN_PAIRS = 10


# ----------------------------------------------------------------------------------------- fitting
def fit_calibration(
    scores: npt.ArrayLike, labels: npt.ArrayLike, method: str = "auto", folds: int = 5, seed: int = 0
) -> Calibration:
    """Fit threshold, Platt and isotonic on ``scores`` (n,) with ``labels`` (n,) in {0, 1}.

    Held-out metrics come from ``folds`` stratified folds (shuffled with ``seed``); when the smaller
    class has fewer members than ``folds``, that many folds are used (at least 2). ``method``:
    ``auto`` (lower held-out log loss), ``platt`` or ``isotonic``. Bad input raises :class:`InputError`.
    """
    from sklearn.metrics import brier_score_loss, log_loss
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    values, targets = _checked(scores, labels)
    if method not in ("auto", *METHODS):
        raise InputError(f"unknown calibration method {method!r}; use auto, platt or isotonic")
    if folds < 2:
        raise InputError(f"folds must be at least 2, got {folds}")
    if not 0 <= seed < 2**32:
        raise InputError(f"seed must be in [0, 2**32), got {seed}")
    positives = int(targets.sum())
    smaller = min(positives, targets.size - positives)
    if smaller < 2:
        raise InputError(
            f"need at least 2 pairs of each class for held-out calibration; got {positives} paraphrase(s) "
            f"and {targets.size - positives} non-paraphrase(s)"
        )
    used_folds = min(folds, smaller)
    splitter = StratifiedKFold(n_splits=used_folds, shuffle=True, random_state=seed)
    column = values.reshape(-1, 1)  # sklearn estimators take (n, 1) features
    held_out = {}
    for name in METHODS:
        if name == "platt":
            predicted = cross_val_predict(_platt_model(), column, targets, cv=splitter, method="predict_proba")[:, 1]
        else:
            predicted = cross_val_predict(_isotonic_model(), column, targets, cv=splitter)
        held_out[name] = HeldOutMetrics(
            log_loss=float(log_loss(targets, predicted, labels=[0, 1])),
            brier=float(brier_score_loss(targets, predicted)),
            ece=expected_calibration_error(predicted, targets),
        )
    chosen = method if method != "auto" else min(METHODS, key=lambda name: held_out[name].log_loss)
    coef, intercept = platt_parameters(_platt_model().fit(column, targets))
    isotonic = _isotonic_model().fit(column, targets)
    threshold, accuracy = best_threshold(values, targets)
    return Calibration(
        threshold=threshold,
        method=chosen,
        platt_coef=coef,
        platt_intercept=intercept,
        isotonic_x=tuple(float(x) for x in isotonic.X_thresholds_),
        isotonic_y=tuple(float(y) for y in isotonic.y_thresholds_),
        threshold_accuracy=accuracy,
        held_out=held_out,
        folds=used_folds,
        seed=seed,
        n_pairs=int(targets.size),
        positives=positives,
    )


def _checked(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    values = np.asarray(scores, dtype=np.float64)
    raw_labels = np.asarray(labels)
    if values.ndim != 1 or raw_labels.ndim != 1:
        raise InputError(f"scores and labels must be 1-d, got shapes {values.shape} and {raw_labels.shape}")
    if values.size != raw_labels.size:
        raise InputError(f"{values.size} scores but {raw_labels.size} labels")
    if values.size < MIN_PAIRS:
        raise InputError(f"calibration needs at least {MIN_PAIRS} labeled pairs, got {values.size}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(f"{bad.size} score(s) are NaN or infinite (first at pair {bad[0] + 1})")
    if not np.isin(raw_labels, (0, 1)).all():
        raise InputError("labels must be 0 or 1")
    targets = raw_labels.astype(np.int64)
    if targets.min() == targets.max():
        raise InputError(f"all {targets.size} labels are {targets[0]}; calibration needs both classes")
    return values, targets


def _platt_model() -> Pipeline:
    """Platt scaling: logistic regression on the standardised score.

    Cosines of a model often span a narrow range (e5: about 0.7 to 1.0), so the raw-score slope is
    large; sklearn's default L2 penalty (C=1) on the *standardised* score regularises the same
    whatever that range, and keeps the fit finite when the pairs are perfectly separable.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression())


def platt_parameters(model: Pipeline) -> tuple[float, float]:
    """``(coef, intercept)`` in raw-score space of a fitted :func:`_platt_model` pipeline.

    With z = (s - mean) / scale and logit = a z + b: logit = (a / scale) s + (b - a mean / scale).
    """
    scaler, regression = model[0], model[-1]
    mean, scale = float(scaler.mean_[0]), float(scaler.scale_[0])
    a, b = float(regression.coef_[0, 0]), float(regression.intercept_[0])
    return a / scale, b - a * mean / scale


def _isotonic_model() -> Any:
    from sklearn.isotonic import IsotonicRegression

    # increasing: a higher cosine never lowers the chance of a paraphrase; clip: constant outside the fit range
    return IsotonicRegression(out_of_bounds="clip", increasing=True)


def expected_calibration_error(probabilities: npt.ArrayLike, labels: npt.ArrayLike, bins: int = ECE_BINS) -> float:
    """ECE: sum over equal-width bins of [0, 1] of (bin size / n) * |positive rate - mean probability|.

    Bin ``i`` holds ``i / bins <= p < (i + 1) / bins``; ``p = 1`` goes to the last bin.
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.size != y.size or p.size == 0:
        raise InputError(f"ECE needs as many labels as probabilities (got {p.size} and {y.size}), at least one")
    inner_edges = np.arange(1, bins) / bins  # (bins - 1,): 0.1, 0.2, ..., 0.9 for 10 bins
    index = np.minimum(np.searchsorted(inner_edges, p, side="right"), bins - 1)  # (n,) bin of each probability
    gap = np.abs(np.bincount(index, weights=y, minlength=bins) - np.bincount(index, weights=p, minlength=bins))
    # per bin: n_b * |mean(y_b) - mean(p_b)| = |sum(y_b) - sum(p_b)|; empty bins add 0
    return float(gap.sum() / p.size)
