"""Each evaluation task end to end on miniature data files with a deterministic mock encoder.

Every main score is checked against an independent computation (brute-force threshold search
with scikit-learn, scipy, an independently fitted classifier) and against golden values.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from paraxl.data.readers import PAWSX_LANGUAGES, read_pawsx_pairs
from paraxl.evaluation.loaders.bucc import read_bucc
from paraxl.evaluation.loaders.tatoeba import TATOEBA_XTREME36
from paraxl.evaluation.metrics.bitext import split_by_hash
from paraxl.evaluation.tasks.base import EvalContext, TaskResult
from paraxl.evaluation.tasks.bitext import BuccTask, TatoebaTask
from paraxl.evaluation.tasks.classification import MtopTask, Sib200Task
from paraxl.evaluation.tasks.geometry import AlignmentUniformityTask
from paraxl.evaluation.tasks.pawsx import PawsxTask
from paraxl.evaluation.tasks.registry import TASKS
from paraxl.evaluation.tasks.sts import StsTask, sts22_task
from paraxl.retrieval import ratio_margin_candidates

from .eval_fixtures import BagOfWordsEmbedder, write_benchmark_data, write_user_data


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_benchmark_data(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def results(bench_dir: Path) -> dict[str, TaskResult]:
    context = EvalContext(data_dir=bench_dir)
    embedder = BagOfWordsEmbedder()
    tasks = (PawsxTask(), AlignmentUniformityTask(), BuccTask(), TatoebaTask(), StsTask(), Sib200Task())
    return {task.spec.name: task.run(embedder, context) for task in tasks}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _cosines(first: list[str], second: list[str]) -> np.ndarray:
    embedder = BagOfWordsEmbedder()
    return np.sum(_unit(embedder.embed(first).astype(np.float64)) * _unit(embedder.embed(second)), axis=1)


def _brute_force_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Best accuracy over every midpoint, by explicit loop (lowest threshold on ties)."""
    values = np.unique(scores)
    candidates = [values[0] - 1.0, *((values[:-1] + values[1:]) / 2), values[-1] + 1.0]
    best = (candidates[0], -1.0)
    for threshold in candidates:
        accuracy = accuracy_score(labels, (scores >= threshold).astype(int))
        if accuracy > best[1]:
            best = (threshold, accuracy)
    return best


def test_pawsx_matches_brute_force_threshold_search(bench_dir: Path, results: dict[str, TaskResult]) -> None:
    scores = results["pawsx"].scores
    pairs = {split: read_pawsx_pairs(bench_dir, split, PAWSX_LANGUAGES, "resplit") for split in ("validation", "test")}

    def split_scores(split: str, language: str) -> tuple[np.ndarray, np.ndarray]:
        rows = pairs[split][language]
        return _cosines([p.first for p in rows], [p.second for p in rows]), np.array([p.label for p in rows])

    pooled = [split_scores("validation", language) for language in PAWSX_LANGUAGES]
    threshold, _ = _brute_force_threshold(
        np.concatenate([s for s, _ in pooled]), np.concatenate([labels for _, labels in pooled])
    )
    assert scores["pooled_threshold"] == pytest.approx(threshold, abs=1e-6)
    accuracies = []
    for language in PAWSX_LANGUAGES:
        test_scores, test_labels = split_scores("test", language)
        expected = accuracy_score(test_labels, (test_scores >= threshold).astype(int))
        assert scores["monolingual"][language]["accuracy"] == pytest.approx(expected)
        own, _ = _brute_force_threshold(*split_scores("validation", language))
        own_accuracy = accuracy_score(test_labels, (test_scores >= own).astype(int))
        assert scores["monolingual"][language]["accuracy_own_threshold"] == pytest.approx(own_accuracy)
        assert scores["monolingual"][language]["oracle_accuracy_fit_on_test"] == pytest.approx(
            _brute_force_threshold(test_scores, test_labels)[1]
        )
        accuracies.append(expected)
    assert results["pawsx"].main_score == pytest.approx(np.mean(accuracies))
    assert scores["monolingual"]["de"]["untranslated_test_pairs"] == 1


def test_pawsx_cross_lingual_cells(results: dict[str, TaskResult]) -> None:
    cross = results["pawsx"].scores["cross_lingual"]
    # 16 test ids; ko flipped one label (dropped with every other language); de's one NS is a sentence2
    assert cross["n_test"]["en"]["fr"] == 16
    assert cross["n_test"]["en"]["ko"] == 15 and cross["n_test"]["ko"]["en"] == 15
    assert cross["n_test"]["ko"]["ko"] == 16
    assert cross["n_test"]["en"]["de"] == 15 and cross["n_test"]["de"]["en"] == 16
    assert cross["dropped_test_pairs"]["en-de"] == 1
    off = [cross["accuracy"][a][b] for a, b in itertools.permutations(PAWSX_LANGUAGES, 2)]
    assert cross["mean_cross_lingual"] == pytest.approx(np.mean(off))


def test_pawsx_en_to_xx_own_threshold_by_hand(bench_dir: Path, results: dict[str, TaskResult]) -> None:
    """en sentence1 + X sentence2 matched by id (same label, no NS), threshold fitted on validation en->X."""

    def cells(split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        pairs = read_pawsx_pairs(bench_dir, split, PAWSX_LANGUAGES, "resplit")
        out = {}
        for language in PAWSX_LANGUAGES[1:]:
            by_id = {p.key: p for p in pairs[language]}
            kept = [
                (a, by_id[a.key])
                for a in pairs["en"]
                if a.key in by_id and by_id[a.key].label == a.label and "NS" not in (a.first, by_id[a.key].second)
            ]
            scores = _cosines([a.first for a, _ in kept], [b.second for _, b in kept])
            out[language] = (scores, np.array([a.label for a, _ in kept]))
        return out

    fit, test = cells("validation"), cells("test")
    threshold, _ = _brute_force_threshold(
        np.concatenate([s for s, _ in fit.values()]), np.concatenate([y for _, y in fit.values()])
    )
    got = results["pawsx"].scores["cross_lingual"]["en_to_xx_own_threshold"]
    assert got["threshold"] == pytest.approx(threshold, abs=1e-6)
    expected = {lang: accuracy_score(y, (s >= threshold).astype(int)) for lang, (s, y) in test.items()}
    assert got["accuracy"] == pytest.approx(expected)
    assert got["mean"] == pytest.approx(np.mean(list(expected.values())))


def test_alignment_uniformity_by_hand(bench_dir: Path, results: dict[str, TaskResult]) -> None:
    english = read_pawsx_pairs(bench_dir, "test", ("en",))["en"]
    positives = [p for p in english if p.label == 1]
    embedder = BagOfWordsEmbedder()
    first = _unit(embedder.embed([p.first for p in positives]).astype(np.float64))
    second = _unit(embedder.embed([p.second for p in positives]).astype(np.float64))
    expected_alignment = np.mean([np.sum((a - b) ** 2) for a, b in zip(first, second, strict=True)])
    sentences = sorted({t for p in english for t in (p.first, p.second)})
    points = _unit(embedder.embed(sentences).astype(np.float64))
    distances = [np.sum((points[i] - points[j]) ** 2) for i, j in itertools.combinations(range(len(points)), 2)]
    expected_uniformity = np.log(np.mean(np.exp(-2 * np.array(distances))))
    got = results["align"].scores["per_language"]["en"]
    assert got["alignment_paraphrase"] == pytest.approx(expected_alignment, rel=1e-6)
    assert got["uniformity"] == pytest.approx(expected_uniformity, rel=1e-6)
    assert "alignment_translation_en" in results["align"].scores["per_language"]["de"]


def test_bucc_held_out_protocol_by_hand(bench_dir: Path, results: dict[str, TaskResult]) -> None:
    """Recompute both folds with explicit sets and a loop over thresholds (highest on ties)."""
    corpus = read_bucc(bench_dir, "zh-en", "sample")
    embedder = BagOfWordsEmbedder()
    mined = ratio_margin_candidates(
        embedder.embed(list(corpus.source_texts)), embedder.embed(list(corpus.target_texts))
    )
    candidates = [
        (corpus.source_ids[i], corpus.target_ids[j], float(score))
        for i, j, score in zip(mined.source_index, mined.target_index, mined.score, strict=True)
    ]
    half_a = {i for i, in_a in zip(corpus.source_ids, split_by_hash(list(corpus.source_ids)), strict=True) if in_a}

    def f1(predicted: set[tuple[str, str]], gold: set[tuple[str, str]]) -> float:
        correct = len(predicted & gold)
        return 0.0 if correct == 0 else 2 * correct / (len(predicted) + len(gold))

    held_out = []
    for fit_in_a in (True, False):
        fit = [c for c in candidates if (c[0] in half_a) == fit_in_a]
        test = [c for c in candidates if (c[0] in half_a) != fit_in_a]
        fit_gold = {g for g in corpus.gold if (g[0] in half_a) == fit_in_a}
        test_gold = {g for g in corpus.gold if (g[0] in half_a) != fit_in_a}
        values = sorted({c[2] for c in fit})
        cuts = [values[0] - 1, *((a + b) / 2 for a, b in itertools.pairwise(values)), values[-1] + 1]
        best = max(cuts, key=lambda t: (f1({c[:2] for c in fit if c[2] >= t}, fit_gold), t))
        held_out.append(f1({c[:2] for c in test if c[2] >= best}, test_gold))
    scores = results["bucc"].scores["per_pair"]["zh-en"]
    assert scores["n_gold"] == 10
    assert scores["f1"] == pytest.approx(np.mean(held_out))
    assert scores["oracle_f1_fit_on_gold"] == pytest.approx(1.0)  # every planted translation is found


def test_tatoeba_counts_the_swapped_lines(results: dict[str, TaskResult]) -> None:
    scores = results["tatoeba"].scores
    assert scores["n_languages"] == 112 and scores["n_xtreme36"] == 36
    assert scores["per_language"]["afr"]["accuracy_xx_to_en"] == pytest.approx(0.5)
    assert scores["per_language"]["afr"]["accuracy_en_to_xx"] == pytest.approx(0.5)
    others = [s["accuracy"] for lang, s in scores["per_language"].items() if lang != "afr"]
    assert others == [1.0] * 111
    assert results["tatoeba"].main_score == pytest.approx((111 + 0.5) / 112)


def test_tatoeba36_is_tatoeba_restricted_to_xtreme(bench_dir: Path, results: dict[str, TaskResult]) -> None:
    subset = TASKS["tatoeba36"].build().run(BagOfWordsEmbedder(), EvalContext(data_dir=bench_dir))
    full = results["tatoeba"].scores
    assert subset.task == "tatoeba36" and subset.scores["n_languages"] == 36
    assert subset.scores["per_language"] == {lang: full["per_language"][lang] for lang in TATOEBA_XTREME36}
    assert subset.main_score == pytest.approx(full["mean36_accuracy"])
    assert not TASKS["tatoeba36"].default  # a subset: ``all`` runs the full task only


def test_sts_matches_scipy(bench_dir: Path, results: dict[str, TaskResult]) -> None:
    rows = [line.split(",") for line in (bench_dir / "stsb_multi_mt" / "stsb-fr-test.csv").read_text().splitlines()]
    expected = 100 * spearmanr(_cosines([r[0] for r in rows], [r[1] for r in rows]), [float(r[2]) for r in rows])[0]
    sets = results["sts"].scores["stsb_multi_mt"]["sets"]
    assert sets["fr.test"]["spearman"] == pytest.approx(expected)
    n_sets = sum(len(block["sets"]) for block in results["sts"].scores.values() if isinstance(block, dict))
    assert n_sets == 6 + 11 + 10 + 1


def test_sib200_matches_an_independent_classifier(bench_dir: Path, results: dict[str, TaskResult]) -> None:
    def load(language: str, split: str) -> tuple[np.ndarray, list[str]]:
        lines = (bench_dir / "sib200" / language / f"{split}.tsv").read_text().splitlines()[1:]
        rows = [line.split("\t") for line in lines]
        return BagOfWordsEmbedder().embed([r[2] for r in rows]), [r[1] for r in rows]

    train_x, train_y = load("deu_Latn", "train")
    test_x, test_y = load("deu_Latn", "test")
    model = LogisticRegression(max_iter=100, random_state=0).fit(train_x, train_y)
    got = results["sib200"].scores["per_language"]["deu_Latn"]
    assert got["in_language_accuracy"] == pytest.approx(100 * accuracy_score(test_y, model.predict(test_x)))
    english_x, english_y = load("eng_Latn", "train")
    zero = LogisticRegression(max_iter=100, random_state=0).fit(english_x, english_y)
    assert got["zero_shot_accuracy"] == pytest.approx(100 * accuracy_score(test_y, zero.predict(test_x)))


# Golden main scores of the mock encoder on the fixture data (regenerate only on purpose).
GOLDEN = {
    "pawsx": 0.8660714285714286,
    "align": 0.17114478603221975,
    "bucc": 0.9285714285714286,
    "tatoeba": 0.9955357142857143,
    "sts": 87.53646831511004,
    "sib200": 58.333333333333336,
}


def test_golden_main_scores(results: dict[str, TaskResult]) -> None:
    for name, expected in GOLDEN.items():
        assert results[name].main_score == pytest.approx(expected, abs=1e-9), name


def test_user_data_tasks_mtop_and_sts22(tmp_path: Path) -> None:
    root = write_user_data(tmp_path)
    context = EvalContext(data_dir=root)
    mtop = MtopTask().run(BagOfWordsEmbedder(), context)
    assert set(mtop.scores["per_language"]) == {"en", "de"}
    assert mtop.scores["source_language"] == "en"
    assert mtop.main_score > 60  # 3 domains, words tell them apart
    sts22 = sts22_task().run(BagOfWordsEmbedder(), context)
    assert set(sts22.scores["sets"]) == {"de", "de-en"}
    assert all(s["n"] == 10 for s in sts22.scores["sets"].values())
    assert sts22.main_score > 50
