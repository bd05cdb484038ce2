"""Evaluation metrics against independent oracles: naive loops, scipy and scikit-learn."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from paraxl.evaluation.metrics import classification, geometry
from paraxl.evaluation.metrics.classification import k_shot_indices, k_shot_scores, logreg_scores
from paraxl.evaluation.metrics.geometry import alignment, uniformity
from paraxl.evaluation.metrics.pair_classification import best_f1_threshold, pair_classification_scores
from paraxl.evaluation.metrics.retrieval import nearest_neighbor_accuracy
from paraxl.evaluation.metrics.sts import pearson_x100, spearman_x100
from paraxl.retrieval import topk

# ---------------------------------------------------------------- pair classification


def naive_pair_scores(scores: list[float], labels: list[int], threshold: float) -> dict[str, float]:
    """Confusion counts and AP by explicit loops (AP = sum over distinct cuts of (R_n - R_{n-1}) P_n)."""
    tp = fp = fn = tn = 0
    for score, label in zip(scores, labels, strict=True):
        predicted = score >= threshold
        tp += predicted and label == 1
        fp += predicted and label == 0
        fn += (not predicted) and label == 1
        tn += (not predicted) and label == 0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    positives = sum(labels)
    average_precision, previous_recall = 0.0, 0.0
    for cut in sorted(set(scores), reverse=True):
        hits = sum(1 for s, lab in zip(scores, labels, strict=True) if s >= cut and lab == 1)
        taken = sum(1 for s in scores if s >= cut)
        average_precision += (hits / positives - previous_recall) * (hits / taken)
        previous_recall = hits / positives
    return {
        "accuracy": (tp + tn) / len(scores),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "average_precision": average_precision,
    }


pair_rows = st.lists(
    st.tuples(st.sampled_from([-0.5, 0.0, 0.1, 0.25, 0.3, 0.9]) | st.floats(-1, 1), st.integers(0, 1)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(pair_rows, st.floats(-1, 1))
def test_pair_classification_scores_match_naive_loops(rows: list[tuple[float, int]], threshold: float) -> None:
    scores = [score for score, _ in rows]
    labels = [label for _, label in rows]
    assume(any(labels))
    result = pair_classification_scores(np.array(scores), np.array(labels), threshold)
    expected = naive_pair_scores(scores, labels, threshold)
    for name, value in expected.items():
        assert getattr(result, name) == pytest.approx(value), name
    assert result.threshold == threshold


@settings(max_examples=40, deadline=None)
@given(pair_rows)
def test_best_f1_threshold_matches_loop_over_all_cuts(rows: list[tuple[float, int]]) -> None:
    scores = np.array([score for score, _ in rows])
    labels = np.array([label for _, label in rows])
    assume(labels.any())
    cuts = [*scores.tolist(), np.inf]  # every distinct way of cutting "score >= cut"
    expected = max(f1_score(labels, (scores >= cut).astype(int), zero_division=0) for cut in cuts)
    threshold, f1 = best_f1_threshold(scores, labels)
    assert f1 == pytest.approx(expected)
    assert pair_classification_scores(scores, labels, threshold).f1 == pytest.approx(f1)  # the midpoint realises it


def test_best_f1_ties_go_to_the_lowest_threshold() -> None:
    # everything positive: F1 = 2*2/(4+2); only the top score: F1 = 2*1/(1+2); equal
    threshold, f1 = best_f1_threshold([0.1, 0.2, 0.3, 0.4], [1, 0, 0, 1])
    assert f1 == pytest.approx(2 / 3)
    assert threshold < 0.1


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1], [1, 0], "labels"),
        ([], [], "empty"),
        ([np.nan, 0.2], [1, 0], "non-finite"),
        ([0.1], [2], "0 or 1"),
        ([0.1, 0.2], [0, 0], "no positive"),
    ],
)
def test_pair_classification_bad_inputs(scores: list[float], labels: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pair_classification_scores(scores, labels, 0.0)
    with pytest.raises(ValueError, match=message):
        best_f1_threshold(scores, labels)


def test_pair_classification_rejects_non_finite_threshold() -> None:
    with pytest.raises(ValueError, match="threshold"):
        pair_classification_scores([0.1, 0.2], [0, 1], float("nan"))


# ---------------------------------------------------------------- geometry


def unit_rows(x: np.ndarray) -> np.ndarray:
    normalised: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return normalised


def naive_uniformity(x: np.ndarray, t: float) -> float:
    points = unit_rows(x)
    terms = [
        math.exp(-t * float(np.sum((points[i] - points[j]) ** 2)))
        for i in range(len(points))
        for j in range(i + 1, len(points))
    ]
    return math.log(sum(terms) / len(terms))


@pytest.mark.parametrize("t", [0.5, 2.0, 10.0])
def test_uniformity_matches_pdist_and_naive_loop(t: float) -> None:
    x = np.random.default_rng(0).normal(size=(40, 8))
    expected = math.log(np.mean(np.exp(-t * pdist(unit_rows(x), "sqeuclidean"))))
    assert uniformity(x, t=t) == pytest.approx(expected, abs=1e-10)
    assert uniformity(x, t=t) == pytest.approx(naive_uniformity(x, t), abs=1e-10)


@pytest.mark.parametrize("rows", [1, 3, 7, 39])
def test_uniformity_row_blocks_agree(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    x = np.random.default_rng(1).normal(size=(40, 8)).astype(np.float32)
    expected = uniformity(x)
    monkeypatch.setattr(geometry, "row_chunk", lambda columns: rows)
    assert uniformity(x) == pytest.approx(expected, abs=1e-10)


def test_uniformity_known_values() -> None:
    assert uniformity(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-12)  # all points identical
    assert uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-8.0)  # antipodal, t=2: -t * 4
    # large t: exp(-t * 4) underflows to 0 in float64, the log-sum-exp does not
    assert uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]]), t=500.0) == pytest.approx(-2000.0)
    # three points at 120 degrees: every squared distance is 3
    triangle = np.array([[1.0, 0.0], [-0.5, math.sqrt(3) / 2], [-0.5, -math.sqrt(3) / 2]])
    assert uniformity(triangle, t=1.0) == pytest.approx(-3.0)


def test_uniformity_sample_replays_the_documented_draws() -> None:
    x = np.random.default_rng(2).normal(size=(50, 6))  # 1225 distinct pairs
    points = unit_rows(x)
    rng = np.random.default_rng(7)
    first = rng.integers(0, 50, size=300)
    second = rng.integers(0, 49, size=300)
    second = second + (second >= first)
    assert (first != second).all()
    terms = [math.exp(-2.0 * float(np.sum((points[i] - points[j]) ** 2))) for i, j in zip(first, second, strict=True)]
    assert uniformity(x, max_pairs=300, seed=7) == pytest.approx(math.log(sum(terms) / 300), abs=1e-10)
    assert uniformity(x, max_pairs=300, seed=7) == uniformity(x, max_pairs=300, seed=7)
    assert uniformity(x, max_pairs=300, seed=8) != uniformity(x, max_pairs=300, seed=7)
    # enough samples estimate the exact value; a cap above the pair count is exact
    assert uniformity(x, max_pairs=100_000, seed=0) == pytest.approx(uniformity(x), abs=0.02)
    assert uniformity(x, max_pairs=1225) == uniformity(x)


def test_alignment_matches_naive_loop_and_known_values() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 5))
    for alpha in (1.0, 2.0, 3.5):
        expected = np.mean(
            [np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b)) ** alpha for a, b in zip(x, y, strict=True)]
        )
        assert alignment(x, y, alpha=alpha) == pytest.approx(expected)
    assert alignment(x, 3.0 * x) == pytest.approx(0.0, abs=1e-12)  # identical directions
    assert alignment(x, -x, alpha=3.0) == pytest.approx(8.0)  # antipodal: 2^alpha


def test_geometry_does_not_mutate_inputs() -> None:
    x = np.random.default_rng(4).normal(size=(10, 4)).astype(np.float32)
    y = np.random.default_rng(5).normal(size=(10, 4))
    x_copy, y_copy = x.copy(), y.copy()
    alignment(x, y)
    uniformity(x)
    uniformity(y, max_pairs=5)
    nearest_neighbor_accuracy(x, y)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(y, y_copy)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: alignment(np.ones((3, 2)), np.ones((4, 2))), "shape"),
        (lambda: alignment(np.ones((3, 2)), np.ones((3, 2)), alpha=0), "alpha"),
        (lambda: alignment(np.zeros((3, 2)), np.ones((3, 2))), "zero vector"),
        (lambda: alignment(np.ones(3), np.ones(3)), "2-d"),
        (lambda: uniformity(np.ones((1, 2))), "at least 2"),
        (lambda: uniformity(np.ones((0, 2))), "empty"),
        (lambda: uniformity(np.array([[1.0, np.inf], [1.0, 0.0]])), "non-finite"),
        (lambda: uniformity(np.ones((3, 2)), t=-1.0), "t must"),
        (lambda: uniformity(np.ones((3, 2)), max_pairs=0), "max_pairs"),
    ],
)
def test_geometry_bad_inputs(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


# ---------------------------------------------------------------- retrieval


def naive_nn_accuracy(queries: np.ndarray, corpus: np.ndarray) -> float:
    correct = 0
    for i, query in enumerate(queries):
        best, best_j = -math.inf, -1
        for j, row in enumerate(corpus):
            cosine = float(query @ row) / float(np.linalg.norm(query) * np.linalg.norm(row))
            if cosine > best:  # strict: the first (lowest) index keeps a tie
                best, best_j = cosine, j
        correct += best_j == i
    return correct / len(queries)


@pytest.mark.parametrize("rows", [None, 1, 4])
def test_nearest_neighbor_accuracy_matches_double_loop(monkeypatch: pytest.MonkeyPatch, rows: int | None) -> None:
    if rows is not None:
        monkeypatch.setattr(topk, "row_chunk", lambda columns, block_elements: rows)
    rng = np.random.default_rng(6)
    source = rng.normal(size=(25, 6))
    target = source + rng.normal(scale=0.8, size=source.shape)  # noisy translations: some are missed
    expected = naive_nn_accuracy(source, target)
    assert 0 < expected < 1
    assert nearest_neighbor_accuracy(source, target) == pytest.approx(expected)
    assert nearest_neighbor_accuracy(target, source) == pytest.approx(naive_nn_accuracy(target, source))
    distractors = np.vstack([target, rng.normal(size=(10, 6))])
    assert nearest_neighbor_accuracy(source, distractors) == pytest.approx(naive_nn_accuracy(source, distractors))


def test_nearest_neighbor_ties_go_to_the_lower_index() -> None:
    same = np.array([[1.0, 0.0], [2.0, 0.0]])  # both rows point the same way
    assert nearest_neighbor_accuracy(same, same) == 0.5  # query 1 retrieves row 0


def test_nearest_neighbor_bad_inputs() -> None:
    with pytest.raises(ValueError, match="corpus has 2 rows"):
        nearest_neighbor_accuracy(np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="dimension"):
        nearest_neighbor_accuracy(np.ones((2, 2)), np.ones((2, 3)))


# ---------------------------------------------------------------- STS


def average_ranks(values: list[float]) -> list[float]:
    ranks = [0.0] * len(values)
    for i, value in enumerate(values):
        below = sum(1 for other in values if other < value)
        equal = sum(1 for other in values if other == value)
        ranks[i] = below + (equal + 1) / 2  # 1-based average rank of a tie group
    return ranks


def naive_pearson(a: list[float], b: list[float]) -> float:
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    covariance = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True))
    return covariance / math.sqrt(sum((x - mean_a) ** 2 for x in a) * sum((y - mean_b) ** 2 for y in b))


def test_sts_correlations_match_naive_formulas() -> None:
    rng = np.random.default_rng(8)
    gold = rng.integers(0, 6, size=40).astype(float).tolist()  # ratings 0..5 with many ties
    predicted = (np.array(gold) + rng.normal(scale=1.5, size=40)).round(1).tolist()
    assert pearson_x100(predicted, gold) == pytest.approx(100 * naive_pearson(predicted, gold))
    expected_spearman = 100 * naive_pearson(average_ranks(predicted), average_ranks(gold))
    assert spearman_x100(predicted, gold) == pytest.approx(expected_spearman)
    assert spearman_x100(gold, gold) == pytest.approx(100.0)
    assert spearman_x100([1, 2, 3], [3, 2, 1]) == pytest.approx(-100.0)


@pytest.mark.parametrize(
    ("predicted", "gold", "message"),
    [
        ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], "predicted scores are constant"),
        ([1.0, 2.0, 3.0], [2.0, 2.0, 2.0], "gold scores are constant"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], "2 predicted scores but 3 gold"),
        ([1.0], [1.0], "at least 2"),
        ([], [], "empty"),
        ([1.0, np.nan], [1.0, 2.0], "non-finite"),
    ],
)
def test_sts_bad_inputs(predicted: list[float], gold: list[float], message: str) -> None:
    for metric in (spearman_x100, pearson_x100):
        with pytest.raises(ValueError, match=message):
            metric(predicted, gold)


# ---------------------------------------------------------------- classification


def blobs(seed: int, per_label: list[int], dim: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters, one per label, overlapping enough that accuracy is below 1."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(len(per_label), dim))
    x = np.vstack(
        [centre + rng.normal(scale=1.2, size=(count, dim)) for centre, count in zip(centres, per_label, strict=True)]
    )
    y = np.array([f"label-{index}" for index, count in enumerate(per_label) for _ in range(count)])
    order = rng.permutation(len(y))
    return x[order], y[order]


def test_k_shot_indices_counts_determinism_and_mteb_replay() -> None:
    labels = np.array(["a"] * 20 + ["b"] * 3 + ["c"] * 9)
    chosen = k_shot_indices(labels, k=8, seed=5)
    assert Counter(labels[chosen].tolist()) == {"a": 8, "b": 3, "c": 8}  # "b" has fewer than k: keeps all
    assert np.all(np.diff(chosen) > 0) and chosen.dtype == np.int64
    np.testing.assert_array_equal(chosen, k_shot_indices(labels, k=8, seed=5))
    assert not np.array_equal(chosen, k_shot_indices(labels, k=8, seed=6))
    # MTEB's loop: walk a shuffled order and keep an index while its label has fewer than k
    counts: Counter[str] = Counter()
    expected = []
    for index in np.random.default_rng(5).permutation(len(labels)):
        if counts[labels[index]] < 8:
            counts[labels[index]] += 1
            expected.append(index)
    np.testing.assert_array_equal(chosen, sorted(expected))


def test_logreg_scores_match_an_independent_fit() -> None:
    train_x, train_y = blobs(0, [40, 30, 20])
    test_x, test_y = blobs(1, [25, 25, 25])
    scores = logreg_scores(train_x, train_y, test_x, test_y, seed=3)
    model = LogisticRegression(max_iter=100, random_state=3).fit(train_x, train_y)
    predicted = model.predict(test_x)
    assert scores["accuracy"] == pytest.approx(accuracy_score(test_y, predicted))
    assert scores["f1_macro"] == pytest.approx(f1_score(test_y, predicted, average="macro"))
    assert 0.3 < scores["accuracy"] < 1.0


def test_k_shot_scores_are_the_mean_of_independent_experiments() -> None:
    train_x, train_y = blobs(2, [30, 30, 5])
    test_x, test_y = blobs(3, [20, 20, 20])
    result = k_shot_scores(train_x, train_y, test_x, test_y, k=4, n_experiments=5, seed=11)
    assert len(result["experiments"]) == 5
    for experiment, scores in enumerate(result["experiments"]):
        chosen = k_shot_indices(train_y, 4, 11 + experiment)
        assert scores == pytest.approx(logreg_scores(train_x[chosen], train_y[chosen], test_x, test_y, seed=11))
    accuracies = [scores["accuracy"] for scores in result["experiments"]]
    assert result["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert result["accuracy_std"] == pytest.approx(np.std(accuracies))
    f1s = [scores["f1_macro"] for scores in result["experiments"]]
    assert result["f1_macro_mean"] == pytest.approx(np.mean(f1s))
    assert result["f1_macro_std"] == pytest.approx(np.std(f1s))
    assert result == k_shot_scores(train_x, train_y, test_x, test_y, k=4, n_experiments=5, seed=11)


def test_classification_bad_inputs() -> None:
    x, y = blobs(4, [5, 5])
    with pytest.raises(ValueError, match="single label"):
        logreg_scores(x, np.array(["a"] * 10), x, y)
    with pytest.raises(ValueError, match="train_y has 9 labels"):
        logreg_scores(x, y[:9], x, y)
    with pytest.raises(ValueError, match="dimension"):
        logreg_scores(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match="k must be"):
        k_shot_indices(y, 0, 0)
    with pytest.raises(ValueError, match="n_experiments"):
        k_shot_scores(x, y, x, y, n_experiments=0)
    assert classification.KShotScores.__required_keys__ >= {"accuracy_mean", "experiments"}
