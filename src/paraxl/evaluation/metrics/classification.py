"""Classification with logistic regression on frozen sentence embeddings (MTEB protocol).

Reference: Muennighoff et al. (2023), "MTEB: Massive Text Embedding Benchmark", EACL,
Classification tasks: the embeddings are features for ``sklearn.linear_model.LogisticRegression
(max_iter=100)`` with a fixed ``random_state``; the training set is undersampled to
``samples_per_label`` (default 8) examples per label, the experiment is repeated
``n_experiments`` (default 10) times with fresh samples, and the mean (and std) of accuracy and
macro-F1 over the experiments is reported. Embeddings are used as given (MTEB does not
normalise them either). Scores here are fractions in ``[0, 1]``, not x100.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from paraxl.evaluation.metrics._checks import FloatArray, IntArray
from paraxl.retrieval.checks import embeddings, same_dimension


class KShotScores(TypedDict):
    """Mean and (population) std over the experiments, and each experiment's scores."""

    accuracy_mean: float
    accuracy_std: float
    f1_macro_mean: float
    f1_macro_std: float
    experiments: list[dict[str, float]]  # one {"accuracy", "f1_macro"} per experiment


def _label_vector(labels: npt.ArrayLike, name: str) -> npt.NDArray[np.str_]:
    array = np.asarray(labels).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    # Labels are compared as strings; converting here makes 1 and "1" the same label in train and test.
    return array.astype(np.str_)


def k_shot_indices(labels: npt.ArrayLike, k: int, seed: int) -> IntArray:
    """Sorted indices of ``k`` examples per label, the same set for the same ``(labels, k, seed)``.

    As MTEB's undersampling: shuffle all indices (``np.random.default_rng(seed).permutation``)
    and keep, per label, the first ``k`` indices in shuffled order; a label with fewer than ``k``
    examples keeps all of them. Vectorised (a stable sort groups each label's shuffled indices).

    Args:
        labels: ``(n,)`` label of each example.
        k: examples per label, ``>= 1``.
        seed: seed of the shuffle.

    Returns:
        ``(sum_l min(k, count_l),)`` int64 indices into ``labels``, ascending.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    label_array = _label_vector(labels, "labels")
    shuffled = np.random.default_rng(seed).permutation(label_array.size)
    _, codes = np.unique(label_array[shuffled], return_inverse=True)
    by_label = np.argsort(codes, kind="stable")  # positions in shuffled order, grouped by label
    sorted_codes = codes[by_label]
    group_start = np.searchsorted(sorted_codes, sorted_codes, side="left")
    rank_in_label = np.arange(sorted_codes.size) - group_start  # 0 for the first shuffled example of a label
    keep = shuffled[by_label[rank_in_label < k]]
    return np.sort(keep).astype(np.int64)


def _features_and_labels(
    train_x: npt.ArrayLike, train_y: npt.ArrayLike, test_x: npt.ArrayLike, test_y: npt.ArrayLike
) -> tuple[FloatArray, npt.NDArray[np.str_], FloatArray, npt.NDArray[np.str_]]:
    train_features = embeddings(train_x, "train_x")
    test_features = embeddings(test_x, "test_x")
    same_dimension(train_features, test_features, ("train_x", "test_x"))
    train_labels = _label_vector(train_y, "train_y")
    test_labels = _label_vector(test_y, "test_y")
    if train_labels.size != train_features.shape[0]:
        raise ValueError(f"train_x has {train_features.shape[0]} rows but train_y has {train_labels.size} labels")
    if test_labels.size != test_features.shape[0]:
        raise ValueError(f"test_x has {test_features.shape[0]} rows but test_y has {test_labels.size} labels")
    if np.unique(train_labels).size < 2:
        raise ValueError("train_y has a single label; a classifier needs at least 2")
    return train_features, train_labels, test_features, test_labels


def _fit_and_score(
    train_x: FloatArray,
    train_y: npt.NDArray[np.str_],
    test_x: FloatArray,
    test_y: npt.NDArray[np.str_],
    seed: int,
    max_iter: int,
) -> dict[str, float]:
    model = LogisticRegression(max_iter=max_iter, random_state=seed)
    model.fit(train_x, train_y)
    predicted = model.predict(test_x)
    return {
        "accuracy": float(accuracy_score(test_y, predicted)),
        # macro: every label counts equally, as MTEB's "f1"; a label never predicted scores 0.
        "f1_macro": float(f1_score(test_y, predicted, average="macro", zero_division=0)),
    }


def logreg_scores(
    train_x: npt.ArrayLike,
    train_y: npt.ArrayLike,
    test_x: npt.ArrayLike,
    test_y: npt.ArrayLike,
    seed: int = 0,
    max_iter: int = 100,
) -> dict[str, float]:
    """Fit ``LogisticRegression(max_iter, random_state=seed)`` on all training rows; score the test rows.

    Args:
        train_x: ``(n, d)`` training embeddings.
        train_y: ``(n,)`` training labels (strings; at least 2 distinct).
        test_x: ``(m, d)`` test embeddings.
        test_y: ``(m,)`` test labels.

    Returns:
        ``{"accuracy": ..., "f1_macro": ...}``, both in ``[0, 1]``.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    return _fit_and_score(*_features_and_labels(train_x, train_y, test_x, test_y), seed=seed, max_iter=max_iter)


def k_shot_scores(
    train_x: npt.ArrayLike,
    train_y: npt.ArrayLike,
    test_x: npt.ArrayLike,
    test_y: npt.ArrayLike,
    k: int = 8,
    n_experiments: int = 10,
    seed: int = 0,
) -> KShotScores:
    """MTEB's few-shot classification: ``n_experiments`` fits on ``k`` examples per label each.

    Experiment ``e`` trains on :func:`k_shot_indices` ``(train_y, k, seed + e)`` and fits
    ``LogisticRegression(max_iter=100, random_state=seed)``; every experiment scores the full test set.
    Deterministic for a given ``seed``.

    Returns:
        :class:`KShotScores`: mean and population std (``np.std``, as MTEB) of accuracy and macro-F1,
        plus the per-experiment scores.
    """
    if n_experiments < 1:
        raise ValueError(f"n_experiments must be >= 1, got {n_experiments}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    train_features, train_labels, test_features, test_labels = _features_and_labels(train_x, train_y, test_x, test_y)
    experiments: list[dict[str, float]] = []
    for experiment in range(n_experiments):
        # seed + e gives each experiment its own sample; default_rng hashes the seed (SeedSequence),
        # so neighbouring seeds give unrelated streams.
        chosen = k_shot_indices(train_labels, k, seed + experiment)
        experiments.append(
            _fit_and_score(
                train_features[chosen], train_labels[chosen], test_features, test_labels, seed=seed, max_iter=100
            )
        )
    accuracy = np.array([scores["accuracy"] for scores in experiments])
    f1 = np.array([scores["f1_macro"] for scores in experiments])
    return KShotScores(
        accuracy_mean=float(accuracy.mean()),
        accuracy_std=float(accuracy.std()),
        f1_macro_mean=float(f1.mean()),
        f1_macro_std=float(f1.std()),
        experiments=experiments,
    )
