"""Score fusion equals scikit-learn's logistic regression on the same features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from paraxl.decision.fusion import FusionScorer, features, fit_fusion, fusion_rule, rule_fields
from paraxl.decision.threshold import best_threshold
from paraxl.decision.two_model_file import ModelIdentity, TwoModelRule, load_rule, save_rule
from paraxl.errors import InputError


def _data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    cosines = 0.8 + 0.04 * labels + rng.normal(0, 0.05, n)
    cross = 1 / (1 + np.exp(-(2 * (2 * labels - 1) + rng.normal(0, 2.0, n))))
    return cosines, cross, labels


def test_features_are_cosine_and_logit() -> None:
    x = features([0.5, 0.9], [0.5, 0.880797077977882])
    assert x[:, 0].tolist() == [0.5, 0.9]
    assert x[:, 1] == pytest.approx([0.0, 2.0])
    assert np.isfinite(features([0.1, 0.2], [0.0, 1.0])).all()  # saturated sigmoids stay finite


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fusion_equals_sklearn(seed: int) -> None:
    cosines, cross, labels = _data(seed, 300)
    fit = fit_fusion(cosines, cross, labels)
    reference = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        np.column_stack([cosines, np.log(cross / (1 - cross))]), labels
    )
    test_cos, test_cross, _ = _data(seed + 100, 200)
    test_x = np.column_stack([test_cos, np.log(test_cross / (1 - test_cross))])
    expected = reference.predict_proba(test_x)[:, 1]
    assert fit.rule.probability(test_cos, test_cross) == pytest.approx(expected, abs=1e-10)
    assert np.array_equal(fit.rule.decide(test_cos, test_cross), reference.predict(test_x) == 1)
    # raw-space coefficients are sklearn's scaled-space ones divided by the feature scale
    scaler, regression = reference[0], reference[-1]
    assert fit.rule.coef == pytest.approx(regression.coef_[0] / scaler.scale_)
    assert fit.rule.threshold == 0.5


def test_fitted_threshold_comes_from_out_of_fold_probabilities() -> None:
    cosines, cross, labels = _data(3, 200)
    fit = fit_fusion(cosines, cross, labels, threshold="fitted", folds=4, seed=7)
    x = np.column_stack([cosines, np.log(cross / (1 - cross))])
    splitter = StratifiedKFold(n_splits=4, shuffle=True, random_state=7)
    oof = cross_val_predict(
        make_pipeline(StandardScaler(), LogisticRegression()), x, labels, cv=splitter, method="predict_proba"
    )[:, 1]
    threshold, accuracy = best_threshold(oof, labels)
    assert fit.rule.threshold == pytest.approx(threshold)
    assert fit.held_out_accuracy == pytest.approx(accuracy)
    assert fit.folds == 4 and fit.n_pairs == 200


class _Fixed:
    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def score(self, pairs: object) -> np.ndarray:
        return self.values


def test_rule_file_and_scorer(tmp_path: Path) -> None:
    cosines, cross, labels = _data(4, 100)
    fit = fit_fusion(cosines, cross, labels)
    identity = ModelIdentity("m", "/m", "f" * 64)
    path = save_rule(tmp_path / "fusion.json", TwoModelRule("fusion", identity, identity, rule_fields(fit.rule)))
    rule = fusion_rule(load_rule(path))
    assert rule == fit.rule
    pairs = [("a", "b")] * 100
    _, _, probabilities, decided = FusionScorer(rule, _Fixed(cosines), _Fixed(cross)).decide(pairs)
    assert np.array_equal(decided, fit.rule.decide(cosines, cross))
    assert probabilities == pytest.approx(fit.rule.probability(cosines, cross))
    with pytest.raises(InputError, match="not a fusion"):
        fusion_rule(TwoModelRule("cascade", identity, identity, {}))


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="each class"):
        fit_fusion([0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [1, 1, 0])
    with pytest.raises(InputError, match="half or fitted"):
        fit_fusion([0.1] * 6, [0.4] * 6, [1, 0] * 3, threshold="best")  # type: ignore[arg-type]
