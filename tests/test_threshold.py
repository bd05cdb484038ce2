"""Threshold sweep against a naive loop with scikit-learn's accuracy as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score

from paraxl.decision.threshold import accuracy_at, accuracy_sweep, best_threshold


def naive_best(scores: np.ndarray, labels: np.ndarray) -> float:
    """Try every score (and +inf) as the cut; the best accuracy of ``score >= cut``."""
    cuts = [*scores.tolist(), np.inf]
    return max(accuracy_score(labels, (scores >= cut).astype(int)) for cut in cuts)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([-0.5, 0.0, 0.1, 0.25, 0.3, 0.9]) | st.floats(-1, 1), st.integers(0, 1)),
        min_size=1,
        max_size=40,
    )
)
def test_best_threshold_matches_naive_loop(rows: list[tuple[float, int]]) -> None:
    scores = np.array([score for score, _ in rows])
    labels = np.array([label for _, label in rows])
    threshold, accuracy = best_threshold(scores, labels)
    assert accuracy == pytest.approx(naive_best(scores, labels))
    assert accuracy_at(scores, labels, threshold) == pytest.approx(accuracy)  # the midpoint realises it


def test_sweep_covers_all_positive_and_all_negative() -> None:
    sweep = accuracy_sweep([0.2, 0.4, 0.6], [0, 1, 1])
    assert sweep.accuracy[0] == pytest.approx(2 / 3)  # everything predicted positive
    assert sweep.accuracy[-1] == pytest.approx(1 / 3)  # everything predicted negative
    assert sweep.best() == (pytest.approx(0.3), 1.0)
    assert np.all(np.diff(sweep.thresholds) > 0)


def test_ties_go_to_the_lowest_threshold() -> None:
    threshold, accuracy = best_threshold([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0])
    assert accuracy == 0.5
    assert threshold < 0.1


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [([0.1], [1, 0], "labels"), ([], [], "no scores"), ([np.nan], [1], "finite"), ([0.1], [2], "0 or 1")],
)
def test_bad_inputs_are_named(scores: list[float], labels: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        best_threshold(scores, labels)


def test_neighbouring_floats_are_still_separated() -> None:
    """Found by hypothesis: the midpoint of 0.0 and 5e-324 rounds to 0.0 and could not separate them."""
    _, accuracy = best_threshold([0.0, 5e-324], [0, 1])
    assert accuracy == 1.0
