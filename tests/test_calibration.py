"""paraxl.decision: calibration fitting against scikit-learn and naive oracles, JSON round trip, pair scoring."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from paraxl.decision.calibration import expected_calibration_error, fit_calibration
from paraxl.decision.decider import check_compatible
from paraxl.decision.pairs import decision_columns, read_calibration_pairs, read_pair_table
from paraxl.decision.scorers import score_pairs
from paraxl.errors import InputError, ModelFormatError
from paraxl.loading.calibration_file import CALIBRATION_FILE, Calibration, load_calibration, save_calibration
from paraxl.modeling.bi_encoder import BiEncoder


def logistic_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine-like scores in [0.6, 1.0] whose labels follow a logistic curve (Platt's own model)."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.6, 1.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(scores - 0.8) * 10))).astype(int)
    return scores, labels


def step_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Nine score levels; the paraphrase rate is flat 0.2 then jumps to flat 0.8.

    A sigmoid cannot be both steep at the jump and flat at 0.2 / 0.8 on the plateaus; a step function can.
    """
    rng = np.random.default_rng(seed)
    levels = np.linspace(0.1, 0.9, 9)
    rates = np.array([0.2] * 4 + [0.8] * 5)
    index = rng.integers(0, 9, n)
    return levels[index], (rng.random(n) < rates[index]).astype(int)


PROBE = np.array([-1.0, 0.0, 0.55, 0.6, 0.7, 0.8, 0.85, 0.95, 1.0, 2.0])  # inside and outside the fit range


# ------------------------------------------------------------------------------------------- oracles
def test_platt_equals_logistic_regression_on_the_standardised_scores() -> None:
    scores, labels = logistic_data(80, seed=1)
    calibration = fit_calibration(scores, labels, method="platt")
    mean, scale = scores.mean(), scores.std()  # StandardScaler: population standard deviation
    direct = LogisticRegression().fit(((scores - mean) / scale)[:, None], labels)
    expected = direct.predict_proba(((PROBE - mean) / scale)[:, None])[:, 1]
    assert calibration.method == "platt"
    np.testing.assert_allclose(calibration.probability(PROBE), expected, rtol=1e-6, atol=1e-9)


def test_isotonic_equals_isotonic_regression_including_clipping() -> None:
    scores, labels = logistic_data(80, seed=2)
    calibration = fit_calibration(scores, labels, method="isotonic")
    direct = IsotonicRegression(out_of_bounds="clip").fit(scores, labels)
    probe = np.concatenate([PROBE, scores[:10], np.asarray(calibration.isotonic_x)])  # also exactly at breakpoints
    assert calibration.method == "isotonic"
    np.testing.assert_allclose(calibration.probability(probe), direct.predict(probe), rtol=0, atol=1e-12)
    assert calibration.probability(np.array([-5.0]))[0] == direct.predict([scores.min()])[0]  # clipped below


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_rebuilt_from_json_gives_identical_probabilities(method: str, tmp_path: Path) -> None:
    scores, labels = logistic_data(60, seed=3)
    calibration = replace(
        fit_calibration(scores, labels, method=method), model_fingerprint="ab" * 32, backend="torch", prompt_name=""
    )
    document = json.loads(json.dumps(calibration.to_json()))
    rebuilt = Calibration.from_json(document, "memory")
    assert rebuilt == calibration
    np.testing.assert_array_equal(rebuilt.probability(PROBE), calibration.probability(PROBE))
    path = save_calibration(tmp_path, calibration)
    assert path == tmp_path / CALIBRATION_FILE
    loaded = load_calibration(tmp_path)
    assert loaded == calibration
    np.testing.assert_array_equal(loaded.probability(scores), calibration.probability(scores))
    np.testing.assert_array_equal(loaded.decide(scores), scores >= calibration.threshold)
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file


def brute_force_best_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of ``score >= t`` for t at every score and above all of them, best one."""
    best = 0.0
    for t in [*sorted(set(scores.tolist())), float("inf")]:
        correct = sum(int((s >= t) == bool(y)) for s, y in zip(scores, labels, strict=True))
        best = max(best, correct / len(scores))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_is_the_brute_force_best_accuracy(seed: int) -> None:
    scores, labels = logistic_data(70, seed=seed)
    scores = np.round(scores, 2)  # ties between pairs of both classes
    calibration = fit_calibration(scores, labels)
    best = brute_force_best_accuracy(scores, labels)
    assert calibration.threshold_accuracy == pytest.approx(best)
    assert np.mean(calibration.decide(scores) == labels.astype(bool)) == pytest.approx(best)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_picks_isotonic_for_a_step_relationship(seed: int) -> None:
    scores, labels = step_data(600, seed=seed)
    calibration = fit_calibration(scores, labels, method="auto")
    assert calibration.held_out["isotonic"].log_loss < calibration.held_out["platt"].log_loss
    assert calibration.method == "isotonic"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_picks_platt_for_small_noisy_logistic_data(seed: int) -> None:
    scores, labels = logistic_data(40, seed=seed)
    calibration = fit_calibration(scores, labels, method="auto")
    assert calibration.held_out["platt"].log_loss < calibration.held_out["isotonic"].log_loss
    assert calibration.method == "platt"
    # an explicit method is obeyed whatever the held-out losses say
    assert fit_calibration(scores, labels, method="isotonic").method == "isotonic"


def test_held_out_metrics_are_out_of_fold() -> None:
    """Recompute the held-out log loss of Platt by hand: fit on K-1 folds, predict the last."""
    from sklearn.model_selection import StratifiedKFold

    scores, labels = logistic_data(50, seed=4)
    calibration = fit_calibration(scores, labels, method="platt", folds=5, seed=7)
    predicted = np.empty(scores.size)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=7).split(scores[:, None], labels):
        fold = fit_calibration(scores[train], labels[train], method="platt", folds=2)
        predicted[test] = fold.probability(scores[test])
    assert calibration.held_out["platt"].log_loss == pytest.approx(log_loss(labels, predicted), rel=1e-5)
    assert calibration.held_out["platt"].ece == pytest.approx(naive_ece(predicted, labels), rel=1e-5)


def naive_ece(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    total = 0.0
    for i in range(bins):
        low, high = i / bins, (i + 1) / bins
        members = [
            (p, y)
            for p, y in zip(probabilities, labels, strict=True)
            if low <= p < high or (i == bins - 1 and p == 1.0)
        ]
        if members:
            mean_p = sum(p for p, _ in members) / len(members)
            mean_y = sum(y for _, y in members) / len(members)
            total += len(members) / len(probabilities) * abs(mean_y - mean_p)
    return total


def test_ece_matches_a_naive_binning_loop() -> None:
    rng = np.random.default_rng(0)
    probabilities = np.concatenate([rng.random(200), np.arange(11) / 10])  # bin edges included
    labels = (rng.random(probabilities.size) < probabilities).astype(int)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(naive_ece(probabilities, labels))
    assert expected_calibration_error([0.95, 0.95], [1, 1]) == pytest.approx(0.05)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 1.0, allow_nan=False), st.integers(0, 1)),
        min_size=1,
        max_size=40,
    )
)
def test_ece_matches_naive_loop_for_any_input(rows: list[tuple[float, int]]) -> None:
    probabilities = np.array([p for p, _ in rows])
    labels = np.array([y for _, y in rows])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(naive_ece(probabilities, labels))


def test_probability_and_decision_shapes() -> None:
    scores, labels = logistic_data(40, seed=5)
    for method in ("platt", "isotonic"):
        calibration = fit_calibration(scores, labels, method=method)
        probabilities = calibration.probability(PROBE)
        assert probabilities.shape == PROBE.shape and ((probabilities >= 0) & (probabilities <= 1)).all()
        assert np.isnan(calibration.probability(np.array([np.nan]))).all()
        assert calibration.decide(np.array([np.nan, calibration.threshold])).tolist() == [False, True]


# -------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        (np.linspace(0, 1, 20), np.ones(20, dtype=int), "all 20 labels are 1"),
        (np.linspace(0, 1, 9), np.array([0, 1] * 4 + [0]), "at least 10 labeled pairs"),
        (np.r_[np.linspace(0, 1, 19), np.nan], np.array([0, 1] * 10), "NaN or infinite (first at pair 20)"),
        (np.linspace(0, 1, 20), np.array([0, 1] * 9), "20 scores but 18 labels"),
        (np.linspace(0, 1, 20), np.array([0, 2] * 10), "labels must be 0 or 1"),
        (np.linspace(0, 1, 20), np.array([1] * 19 + [0]), "at least 2 pairs of each class"),
    ],
)
def test_bad_input_is_rejected(scores: np.ndarray, labels: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit_calibration(scores, labels)


def test_bad_options_are_rejected() -> None:
    scores, labels = logistic_data(30, seed=0)
    with pytest.raises(InputError, match="unknown calibration method 'beta'"):
        fit_calibration(scores, labels, method="beta")
    with pytest.raises(InputError, match="folds must be at least 2"):
        fit_calibration(scores, labels, folds=1)


def test_folds_shrink_to_the_smaller_class() -> None:
    scores = np.linspace(0, 1, 20)
    labels = np.array([0] * 17 + [1] * 3)
    calibration = fit_calibration(scores, labels, folds=5)
    assert calibration.folds == 3 and calibration.positives == 3 and calibration.n_pairs == 20


def test_missing_and_damaged_calibration_files(tmp_path: Path) -> None:
    assert load_calibration(tmp_path) is None
    (tmp_path / CALIBRATION_FILE).write_text("{not json")
    with pytest.raises(ModelFormatError, match=f"{CALIBRATION_FILE}: not valid JSON"):
        load_calibration(tmp_path)
    scores, labels = logistic_data(30, seed=0)
    good = fit_calibration(scores, labels).to_json()
    for key, value, message in [
        ("method", "beta", "'method' must be one of platt, isotonic"),
        ("threshold", "high", "'threshold' must be a finite number"),
        ("isotonic", {"x_thresholds": [0.2, 0.1], "y_thresholds": [0.0, 1.0]}, "must be ascending"),
        ("isotonic", {"x_thresholds": [0.1, 0.2], "y_thresholds": [0.0, 1.5]}, r"must lie in \[0, 1\]"),
        ("held_out", {"folds": 5, "seed": 0}, "'platt' must be an object"),
        ("version", 99, "newer than this paraxl reads"),
    ]:
        (tmp_path / CALIBRATION_FILE).write_text(json.dumps({**good, key: value}))
        with pytest.raises(ModelFormatError, match=message):
            load_calibration(tmp_path)


def test_check_compatible_refuses_other_weights_and_notes_other_backends() -> None:
    scores, labels = logistic_data(30, seed=0)
    calibration = replace(fit_calibration(scores, labels), model_fingerprint="a" * 64, backend="torch")
    assert check_compatible(calibration, "a" * 64, "torch", "m") is None
    with pytest.raises(ModelFormatError, match=r"different weights.*paraxl calibrate m"):
        check_compatible(calibration, "b" * 64, "torch", "m")
    note = check_compatible(calibration, "a" * 64, "onnx", "m")
    assert note is not None and "torch backend" in note and "onnx" in note


# ----------------------------------------------------------------------------------- pairs and files
def test_score_pairs_equals_encoding_each_side(tiny_encoder: BiEncoder) -> None:
    first = ["the cat sat", "der hund", "the cat sat", "le chat"]
    second = ["le chat", "the dog ran", "the mat", "le chat"]
    scores = score_pairs(tiny_encoder, first, second, batch_size=2)
    left, right = tiny_encoder.encode(first), tiny_encoder.encode(second)
    expected = [float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(left, right, strict=True)]
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert scores[3] == pytest.approx(1.0, abs=1e-5)
    none = score_pairs(tiny_encoder, first, second, prompt_name="")
    prefixed = tiny_encoder.encode(first, prompt_name="")
    assert float(none[0]) == pytest.approx(
        float(prefixed[0] @ tiny_encoder.encode(second, prompt_name="")[0]), abs=1e-5
    )
    assert score_pairs(tiny_encoder, [], []).shape == (0,)
    with pytest.raises(InputError, match="2 first sentences but 1 second"):
        score_pairs(tiny_encoder, ["a", "b"], ["c"])


def test_read_calibration_pairs_strict_and_without_placeholders(tmp_path: Path) -> None:
    good = tmp_path / "good.tsv"
    good.write_text(
        "id\tsentence1\tsentence2\tlabel\n1\tthe cat\tle chat\t1\n2\tNS\tthe dog\t0\n3\tthe dog\tder hund\t0\n"
    )
    lines = tmp_path / "more.jsonl"
    lines.write_text('{"sentence1": "a", "sentence2": "b", "label": true}\n')
    data = read_calibration_pairs([good, lines])
    assert data.first == ["the cat", "the dog", "a"] and data.labels.tolist() == [1, 0, 1]
    assert data.per_file == [2, 1] and data.skipped_untranslated == 1
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence1\tsentence2\tlabel\nthe cat\tle chat\t1\nthe dog\tder hund\tmaybe\n")
    with pytest.raises(InputError, match=r"bad\.tsv:3:"):
        read_calibration_pairs([bad])
    unlabeled = tmp_path / "unlabeled.tsv"
    unlabeled.write_text("sentence1\tsentence2\nthe cat\tle chat\n")
    with pytest.raises(InputError, match=r"unlabeled\.tsv:2: calibration needs a 'label' column"):
        read_calibration_pairs([unlabeled])


def test_pair_table_keeps_columns_and_renames_clashes(tmp_path: Path) -> None:
    named = tmp_path / "named.tsv"
    named.write_text('id\tsentence1\tsentence2\tlabel\nx1\tsaid "hi" \\ there\tle chat\t1\n')
    table = read_pair_table(named)
    assert table.columns == ["id", "sentence1", "sentence2", "label"]
    assert table.rows == [["x1", 'said "hi" \\ there', "le chat", "1"]] and table.first == ['said "hi" \\ there']
    assert decision_columns(table.columns) == [
        "id",
        "sentence1",
        "sentence2",
        "input_label",
        "score",
        "probability",
        "label",
    ]
    plain = tmp_path / "plain.tsv"
    plain.write_text("the cat\tle chat\nthe dog\tder hund\n")
    table = read_pair_table(plain)
    assert table.columns == ["sentence1", "sentence2"] and table.second == ["le chat", "der hund"]


def test_save_replaces_atomically(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    scores, labels = logistic_data(30, seed=0)
    save_calibration(folder, fit_calibration(scores, labels, method="platt"))
    save_calibration(folder, fit_calibration(scores, labels, method="isotonic"))
    loaded = load_calibration(folder)
    assert loaded is not None and loaded.method == "isotonic"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_unwritable_model_folder_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only folder (a shared hub cache) is simulated: as root, chmod would not stop the write."""
    from contextlib import contextmanager

    import paraxl.io.atomic as module  # save_calibration writes through write_json_atomic -> atomic_path

    @contextmanager
    def refuse(target: Path, suffix: str = "") -> Iterator[Path]:
        raise PermissionError(13, "Permission denied")
        yield target  # pragma: no cover

    monkeypatch.setattr(module, "atomic_path", refuse)
    scores, labels = logistic_data(30, seed=0)
    with pytest.raises(InputError, match=r"cannot write the calibration into the model folder \(Permission denied\)"):
        save_calibration(tmp_path, fit_calibration(scores, labels))
