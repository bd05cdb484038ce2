"""evaluation/pawsx_protocol.py: the PAWS-X threshold protocol on any PairScorer (oracles: loops, sklearn)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import PAWSX_LANGUAGES, read_pawsx_pairs
from paraxl.errors import InputError
from paraxl.evaluation.pawsx_protocol import evaluate_pawsx, read_labelled
from paraxl.evaluation.tasks.registry import TASKS

from .training_helpers import fake_pawsx

LANGUAGES = ("en", "de", "fr")


class HashScorer:
    """A deterministic pair scorer: a score in [0, 1) from a hash of the pair (+0.3 for a shared word)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.calls.append(len(pairs))
        return np.array([pair_score(a, b) for a, b in pairs], dtype=np.float64)


def pair_score(first: str, second: str) -> float:
    noise = int.from_bytes(hashlib.sha256(f"{first}|{second}".encode()).digest()[:4], "little") / 2**32
    return 0.7 * noise + 0.3 * bool(set(first.split()[:2]) & set(second.split()[:2]))


def brute_force(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Best accuracy over every midpoint by explicit loop; the lowest threshold on ties."""
    values = np.unique(scores)
    best = (values[0] - 1.0, -1.0)
    for threshold in [values[0] - 1.0, *((values[:-1] + values[1:]) / 2), values[-1] + 1.0]:
        accuracy = float(np.mean((scores >= threshold) == labels.astype(bool)))
        if accuracy > best[1]:
            best = (float(threshold), accuracy)
    return best


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[LabeledPair]]]:
    root = fake_pawsx(tmp_path_factory.mktemp("pawsx"))
    return {split: read_pawsx_pairs(root, split, LANGUAGES) for split in ("validation", "test")}


def scored(pairs: list[LabeledPair]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([pair_score(p.first, p.second) for p in pairs]), np.array([p.label for p in pairs])


def test_monolingual_scores_match_a_brute_force_search(data: dict[str, dict[str, list[LabeledPair]]]) -> None:
    result = evaluate_pawsx(HashScorer(), data["validation"], data["test"])
    fit = [scored(data["validation"][lang]) for lang in LANGUAGES]
    threshold, fit_accuracy = brute_force(np.concatenate([s for s, _ in fit]), np.concatenate([y for _, y in fit]))
    assert result.pooled_threshold == pytest.approx(threshold) and result.pooled_fit_accuracy == fit_accuracy
    for lang in LANGUAGES:
        scores, labels = scored(data["test"][lang])
        language = result.monolingual[lang]
        predicted = (scores >= threshold).astype(int)
        assert language.at_pooled.accuracy == accuracy_score(labels, predicted)
        assert language.at_pooled.f1 == pytest.approx(f1_score(labels, predicted))
        own, _ = brute_force(*scored(data["validation"][lang]))
        assert language.own_threshold == pytest.approx(own)
        assert language.at_own.accuracy == accuracy_score(labels, (scores >= own).astype(int))
        assert language.oracle_accuracy_fit_on_test == brute_force(scores, labels)[1]
        assert language.majority_class == max(labels.mean(), 1 - labels.mean())
        kept = np.array(["NS" not in (p.first, p.second) for p in data["test"][lang]])
        assert language.untranslated_test_pairs == 1
        assert language.accuracy_without_untranslated == accuracy_score(labels[kept], predicted[kept])
        fit_scores, fit_labels = scored(data["validation"][lang])
        assert result.fit_accuracy[lang] == accuracy_score(fit_labels, (fit_scores >= threshold).astype(int))
    sweeps = result.sweeps("test")
    assert (
        set(sweeps) == set(LANGUAGES) and sweeps["en"].best()[1] == result.monolingual["en"].oracle_accuracy_fit_on_test
    )


def test_fit_only_scores_the_fit_pairs_in_one_call(data: dict[str, dict[str, list[LabeledPair]]]) -> None:
    scorer = HashScorer()
    result = evaluate_pawsx(scorer, data["validation"])
    assert scorer.calls == [sum(len(rows) for rows in data["validation"].values())]
    assert result.monolingual == {} and result.test == {} and result.en_row is None
    assert set(result.fit_accuracy) == set(LANGUAGES)


def test_grouping_sets_the_calls_and_never_the_numbers(data: dict[str, dict[str, list[LabeledPair]]]) -> None:
    sizes = {split: [len(data[split][lang]) for lang in LANGUAGES] for split in data}
    results, seen = {}, []
    for grouping in ("by_language", "by_split", "together"):
        scorer = HashScorer()
        progress: list[str] = []
        results[grouping] = evaluate_pawsx(
            scorer, data["validation"], data["test"], grouping=grouping, progress=progress.append
        )
        seen.append((scorer.calls, progress))
    interleaved = [n for pair in zip(sizes["validation"], sizes["test"], strict=True) for n in pair]
    assert seen[0] == (interleaved, list(LANGUAGES))
    assert seen[1] == ([sum(sizes["validation"]), sum(sizes["test"])], [])
    assert seen[2] == ([sum(sizes["validation"]) + sum(sizes["test"])], [])
    for grouping in ("by_split", "together"):
        assert results[grouping].monolingual == results["by_language"].monolingual


def test_en_row_alone_equals_the_matrix_en_row(data: dict[str, dict[str, list[LabeledPair]]]) -> None:
    scorer = HashScorer()
    row = evaluate_pawsx(scorer, data["validation"], data["test"], cross_lingual="en_row")
    # monolingual fit + test, then the en->X fit cells and test cells: one call each
    assert len(scorer.calls) == 4 and row.matrix is None and row.en_row is not None
    matrix = evaluate_pawsx(HashScorer(), data["validation"], data["test"], cross_lingual="matrix")
    assert matrix.matrix is not None and matrix.en_row == row.en_row
    assert set(row.en_row.accuracy) == {"de", "fr"}
    # en's NS row (sentence1 "NS") is dropped from every en->X cell; the other ids all match
    assert row.en_row.dropped_test == {"de": 1, "fr": 1}
    assert row.en_row.n_test["de"] == len(data["test"]["en"]) - 1
    cells = [(p.first, q.second, p.label) for p, q in zip(data["test"]["en"], data["test"]["de"], strict=True)]
    kept = [(a, b, y) for a, b, y in cells if a != "NS"]
    scores = np.array([pair_score(a, b) for a, b, _ in kept])
    expected = accuracy_score([y for *_, y in kept], (scores >= row.en_row.threshold).astype(int))
    assert row.en_row.accuracy["de"] == expected
    assert row.en_row.mean == pytest.approx(np.mean(list(row.en_row.accuracy.values())))


def test_a_pair_without_a_label_is_an_error_at_its_line(data: dict[str, dict[str, list[LabeledPair]]]) -> None:
    broken = dict(data["validation"])
    first = broken["de"][0]
    broken["de"] = [replace(first, label=None), *broken["de"][1:]]
    with pytest.raises(InputError, match="need a label column"):
        evaluate_pawsx(HashScorer(), broken)


def test_read_labelled_refuses_an_empty_split(tmp_path: Path) -> None:
    root = fake_pawsx(tmp_path / "data")
    (root / "pawsx" / "resplit" / "fr" / "test.tsv").write_text("id\tsentence1\tsentence2\tlabel\n")
    assert len(read_labelled(root, "test", ("en",), "resplit")["en"]) == 33
    with pytest.raises(InputError, match="no pairs in PAWS-X resplit/fr/test"):
        read_labelled(root, "test", ("en", "fr"), "resplit")


def test_the_registry_builds_pawsx_tasks_with_the_protocol() -> None:
    for name in ("pawsx", "align"):
        assert TASKS[name].build("official").protocol == "official"  # type: ignore[attr-defined]
        assert TASKS[name].build().protocol == "resplit"  # type: ignore[attr-defined]
    assert TASKS["bucc"].build("official").spec.name == "bucc"
    assert PAWSX_LANGUAGES[0] == "en"
