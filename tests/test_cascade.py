"""The bi/cross cascade: fitting equals a naive oracle, the band's extremes equal each model, and
fitting never sees the pairs it is scored on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from paraxl.decision.cascade import CascadeRule, CascadeScorer, cascade_rule, fit_cascade, rule_fields
from paraxl.decision.threshold import best_threshold
from paraxl.decision.two_model_file import ModelIdentity, TwoModelRule, load_rule, save_rule
from paraxl.errors import InputError, ModelFormatError


def _data(seed: int, n: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    cosines = 0.8 + 0.05 * labels + rng.normal(0, 0.06, n)
    if ties:
        cosines = np.round(cosines, 2)  # many equal cosines: a band cannot split them
    cross = 1 / (1 + np.exp(-(3 * (2 * labels - 1) + rng.normal(0, 2.5, n))))
    return cosines, cross, labels


def _naive(cosines: np.ndarray, cross: np.ndarray, labels: np.ndarray, width: int) -> tuple[int, int]:
    """Every band [u_a, u_b] of distinct cosines (and the empty one), decided pair by pair:
    (best correct count, its pair count), ties to fewer pairs."""
    t_bi, _ = best_threshold(cosines, labels)
    t_cross, _ = best_threshold(cross, labels)
    values = sorted(set(cosines.tolist()))
    bands = [(1.0, 0.0)] + [(values[a], values[b]) for a in range(len(values)) for b in range(a, len(values))]
    best = (-1, 0)
    for low, high in bands:
        correct = 0
        sent = 0
        for cos, ce, gold in zip(cosines, cross, labels, strict=True):
            inside = low <= cos <= high
            sent += inside
            decision = ce >= t_cross if inside else cos >= t_bi
            correct += int(decision == bool(gold))
        if sent <= width and (correct, -sent) > (best[0], -best[1]):
            best = (correct, sent)
    return best


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (1, True), (2, False), (3, True)])
@pytest.mark.parametrize("budget", [0.0, 0.1, 0.3, 0.55, 1.0])
def test_fit_equals_the_naive_oracle(seed: int, ties: bool, budget: float) -> None:
    cosines, cross, labels = _data(seed, 40, ties)
    fit = fit_cascade(cosines, cross, labels, budget=budget)
    correct, sent = _naive(cosines, cross, labels, int(np.floor(budget * 40 + 1e-9)))
    assert fit.accuracy == pytest.approx(correct / 40)
    assert fit.budget == pytest.approx(sent / 40)
    # the rule applied pair by pair gives the accuracy and budget it reports
    assert np.mean(fit.rule.decide(cosines, cross) == labels.astype(bool)) == pytest.approx(fit.accuracy)
    assert np.mean(fit.rule.in_band(cosines)) == pytest.approx(fit.budget)


def test_target_accuracy_takes_the_smallest_budget() -> None:
    cosines, cross, labels = _data(5, 60)
    budgets = [fit_cascade(cosines, cross, labels, budget=k / 60) for k in range(61)]
    target = budgets[40].accuracy
    fit = fit_cascade(cosines, cross, labels, target_accuracy=target)
    smallest = min(k for k, candidate in enumerate(budgets) if candidate.accuracy >= target - 1e-12)
    assert fit.accuracy >= target - 1e-12
    assert fit.budget == pytest.approx(budgets[smallest].budget)
    with pytest.raises(InputError, match=r"not reachable.*best cascade reaches"):
        fit_cascade(cosines, cross, labels, target_accuracy=min(1.0, max(b.accuracy for b in budgets) + 0.01))


class _Recorder:
    """A PairScorer that returns fixed scores per pair and records what it was asked to score."""

    def __init__(self, scores: dict[tuple[str, str], float]) -> None:
        self.scores = scores
        self.calls: list[list[tuple[str, str]]] = []

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.calls.append(list(pairs))
        return np.array([self.scores[pair] for pair in pairs], dtype=np.float64)


def _scorers(cosines: np.ndarray, cross: np.ndarray) -> tuple[list[tuple[str, str]], _Recorder, _Recorder]:
    pairs = [(f"a{i}", f"b{i}") for i in range(cosines.size)]
    return pairs, _Recorder(dict(zip(pairs, cosines, strict=True))), _Recorder(dict(zip(pairs, cross, strict=True)))


def test_empty_band_is_the_bi_encoder_and_full_band_the_cross_encoder() -> None:
    val_cos, val_cross, val_labels = _data(7, 80)
    test_cos, test_cross, _ = _data(8, 50)
    pairs, bi, cross = _scorers(test_cos, test_cross)
    empty = fit_cascade(val_cos, val_cross, val_labels, budget=0.0)
    decided = CascadeScorer(empty.rule, bi, cross).decide(pairs)
    assert np.array_equal(decided.labels, test_cos >= empty.rule.bi_threshold)
    assert decided.decided_by == ["bi"] * 50 and cross.calls == []  # the cross-encoder never ran
    # the full band, widened to cover test cosines beyond the validation range
    full = CascadeRule(-2.0, 2.0, empty.rule.bi_threshold, empty.rule.cross_threshold)
    decided = CascadeScorer(full, bi, cross).decide(pairs)
    assert np.array_equal(decided.labels, test_cross >= full.cross_threshold)
    assert decided.decided_by == ["cross"] * 50 and decided.cross_share == 1.0
    fitted_full = fit_cascade(val_cos, val_cross, val_labels, budget=1.0)
    assert fitted_full.rule.cross_threshold == best_threshold(val_cross, val_labels)[0]


def test_cross_encoder_scores_only_in_band_pairs() -> None:
    val_cos, val_cross, val_labels = _data(9, 100)
    fit = fit_cascade(val_cos, val_cross, val_labels, budget=0.3)
    test_cos, test_cross, _ = _data(10, 70)
    pairs, bi, cross = _scorers(test_cos, test_cross)
    decided = CascadeScorer(fit.rule, bi, cross).decide(pairs)
    inside = fit.rule.in_band(test_cos)
    assert cross.calls == [[pair for pair, flag in zip(pairs, inside, strict=True) if flag]]
    assert np.isnan(decided.cross_scores[~inside]).all()
    assert [who == "cross" for who in decided.decided_by] == inside.tolist()
    assert np.array_equal(decided.labels, fit.rule.decide(test_cos, test_cross))


def test_fitting_takes_validation_only_and_scoring_takes_no_labels() -> None:
    """The fit sees only the validation arrays it is given (same input, same rule; other labels,
    another rule); applying the rule takes bare pairs, so test labels cannot reach it. (The CLI test
    proves ``cascade fit`` never opens the test files: there they are poisoned.)"""
    val_cos, val_cross, val_labels = _data(11, 90)
    fit = fit_cascade(val_cos, val_cross, val_labels, budget=0.3)
    assert fit == fit_cascade(val_cos.copy(), val_cross.copy(), val_labels.copy(), budget=0.3)
    assert fit_cascade(val_cos, val_cross, 1 - val_labels, budget=0.3).rule != fit.rule
    test_cos, test_cross, _ = _data(12, 40)
    pairs, bi, cross = _scorers(test_cos, test_cross)
    decided = CascadeScorer(fit.rule, bi, cross).decide(pairs)
    assert np.array_equal(decided.labels, fit.rule.decide(test_cos, test_cross))


def test_bad_inputs_are_clear() -> None:
    with pytest.raises(InputError, match="either"):
        fit_cascade([0.1], [0.2], [1])
    with pytest.raises(InputError, match="budget"):
        fit_cascade([0.1], [0.2], [1], budget=1.5)
    with pytest.raises(InputError, match="differ"):
        fit_cascade([0.1, 0.2], [0.2], [1], budget=0.5)


def _identity(name: str) -> ModelIdentity:
    return ModelIdentity(spec=name, folder=f"/models/{name}", fingerprint=name * 8, prompt_name="")


def test_rule_file_round_trips_and_refuses_other_models(tmp_path: Path) -> None:
    cosines, cross, labels = _data(13, 50)
    fit = fit_cascade(cosines, cross, labels, budget=0.2)
    stored = TwoModelRule("cascade", _identity("bi"), _identity("ce"), rule_fields(fit.rule), {"budget": 0.2})
    path = save_rule(tmp_path / "cascade.json", stored)
    loaded = load_rule(path)
    assert cascade_rule(loaded) == fit.rule
    loaded.check_models("bi" * 8, "ce" * 8)
    with pytest.raises(ModelFormatError, match=r"bi-encoder bi .*other weights"):
        loaded.check_models("x" * 16, "ce" * 8)
    with pytest.raises(ModelFormatError, match="cross-encoder ce"):
        loaded.check_models("bi" * 8, "x" * 16)
    (tmp_path / "bad.json").write_text('{"format": "something"}')
    with pytest.raises(ModelFormatError, match="not a paraxl cascade"):
        load_rule(tmp_path / "bad.json")


def test_the_rule_file_records_backends_and_int8_against_fp32_gets_one_note(tmp_path: Path) -> None:
    """The backend each model was fitted on round-trips (older files: None); ``backend_note`` speaks
    only where int8 meets fp32 scores (torch and the fp32 export are one kind; an unrecorded
    cross-encoder was fitted on torch, an unrecorded bi-encoder is not compared)."""
    from dataclasses import replace

    from paraxl.decision.rule_decider import backend_note

    rule = {"lo": 0.0, "hi": 0.5, "bi_threshold": 0.3, "cross_threshold": 0.5}
    bi, ce = replace(_identity("bi"), backend="onnx"), replace(_identity("ce"), backend="torch")
    loaded = load_rule(save_rule(tmp_path / "r.json", TwoModelRule("cascade", bi, ce, rule)))
    assert (loaded.bi.backend, loaded.cross.backend) == ("onnx", "torch")
    older = load_rule(save_rule(tmp_path / "old.json", TwoModelRule("cascade", _identity("bi"), _identity("ce"), rule)))
    assert older.bi.backend is None and older.cross.backend is None

    for bi_backend, cross_backend in [("torch", "torch"), ("onnx", "onnx"), ("torch", "onnx")]:
        assert backend_note(loaded, bi_backend, cross_backend) is None
    note = backend_note(loaded, "torch", "onnx-int8")
    assert note is not None and "\n" not in note
    assert "cross-encoder scores on onnx-int8 but the rule was fitted on its torch scores" in note
    assert "bi-encoder" not in note and "own fingerprint" in note
    both = backend_note(loaded, "onnx-int8", "onnx-int8")
    assert both is not None and "bi-encoder scores on onnx-int8" in both and "\n" not in both
    assert backend_note(older, "onnx-int8", "torch") is None  # the bi-encoder's fitting backend is unknown
    assert backend_note(older, "torch", "onnx-int8") is not None  # an unrecorded cross-encoder ran on torch
    int8_fit = TwoModelRule("cascade", bi, replace(ce, backend="onnx-int8"), rule)
    assert backend_note(int8_fit, "onnx", "onnx-int8") is None
    assert "fitted on its onnx-int8 scores" in (backend_note(int8_fit, "onnx", "torch") or "")
