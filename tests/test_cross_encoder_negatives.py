"""benchmarks/cross_encoder_negatives.py: the three kinds of pair, scores against sentence-transformers'
CrossEncoder, AUC against a naive pair count, bad input."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from paraxl.evaluation.pawsx_protocol import read_labelled

from .scripts import load_benchmark_script
from .test_cross_encoder_onnx import save_cross_encoder
from .training_helpers import fake_pawsx

negatives = load_benchmark_script("cross_encoder_negatives")


def naive_auc(positives: np.ndarray, others: np.ndarray) -> float:
    """P(a positive outscores a negative), ties one half: the AUC's definition."""
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(positives, others))
    return wins / (len(positives) * len(others))


def test_unrelated_pairs_join_sentences_of_two_ids_and_ns_rows_are_left_out(tmp_path: Path) -> None:
    rows = read_labelled(fake_pawsx(tmp_path / "data"), "test", ["en"], "resplit")["en"]
    kinds = negatives.kind_pairs(rows, limit=100, shift=3)
    gold = {(row.first, row.second): row.key for row in rows}
    first_of = {row.first: row.key for row in rows if row.label == 1}
    assert len(kinds["paraphrase"]) == len(kinds["unrelated"]) == sum(row.label == 1 for row in rows)
    assert len(kinds["word swap"]) == sum(row.label == 0 and row.first != "NS" for row in rows)
    for first, second in kinds["unrelated"]:
        assert (first, second) not in gold  # never a labelled pair
        source = next(key for (one, two), key in gold.items() if two == second)
        assert source != first_of[first]  # the sentence2 of another id
    assert all("NS" not in pair for pairs in kinds.values() for pair in pairs)


def test_the_report_matches_sentence_transformers_scores_and_a_naive_auc(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    data = fake_pawsx(tmp_path / "data")
    model = save_cross_encoder(tiny_model_dir, tmp_path / "ce")
    out = tmp_path / "out"
    argv = ["--model", str(model), "--data-dir", str(data), "--languages", "en,de", "--limit", "10", "--shift", "2"]
    assert negatives.main([*argv, "--name", "n", "--output-dir", str(out)]) == 0

    rows = json.loads((out / "n.json").read_text())["rows"]
    assert [(row["model"], row["language"]) for row in rows] == [("ce", "en"), ("ce", "de")]
    reference = CrossEncoder(str(model))
    for row in rows:
        labelled = read_labelled(data, "test", [row["language"]], "resplit")[row["language"]]
        scores = {
            kind: reference.predict(pairs, convert_to_numpy=True)
            for kind, pairs in negatives.kind_pairs(labelled, 10, 2).items()
        }
        for kind, values in scores.items():
            assert row["kinds"][kind]["pairs"] == len(values)
            assert row["kinds"][kind]["mean"] == pytest.approx(float(values.mean()), abs=1e-6)
            assert row["kinds"][kind]["above_half"] == pytest.approx(float((values > 0.5).mean()))
        assert row["auc_vs_word_swap"] == pytest.approx(naive_auc(scores["paraphrase"], scores["word swap"]))
        assert row["auc_vs_unrelated"] == pytest.approx(naive_auc(scores["paraphrase"], scores["unrelated"]))
    assert "| ce | de |" in (out / "n.md").read_text()


def test_bad_input_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert negatives.main(["--model", str(tmp_path), "--data-dir", str(missing), "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert negatives.main(["--model", str(tmp_path), "--data-dir", str(missing), "--limit", "1"]) == 2
    assert "--limit must be at least 2" in capsys.readouterr().err
