"""benchmarks/bench_eval.py on the tiny model and miniature data; ``compare_results`` by hand."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from paraxl.evaluation.compare import compare_results, reported_text
from paraxl.evaluation.results import read_result
from paraxl.evaluation.session import EvalRequest, run_evaluation

from .eval_fixtures import write_benchmark_data
from .scripts import load_benchmark_script


def test_reported_text_follows_the_summary() -> None:
    assert reported_text("pair_classification", 0.57731) == "57.73"
    assert reported_text("geometry", 0.03712) == "0.037"
    assert reported_text("sts", 69.8649) == "69.86"
    assert reported_text("retrieval", None) == "–"


def test_compare_results_flags_a_number_that_prints_differently(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_benchmark_data(tmp_path / "data")
    request = EvalRequest(str(tiny_model_dir), tasks="pawsx", data_dir=data, output_dir=tmp_path / "out", plots=False)
    document = read_result(
        run_evaluation(dataclasses.replace(request, backend="torch", use_cache=False)).output_dir / "pawsx.json"
    )
    same = compare_results(document, document)
    assert all(c.identical and c.difference == 0 for c in same)
    assert [c.name for c in same][:2] == ["main", "per_language/en"] and len(same) == 1 + 7 + 49
    record = document.scores
    assert record.headline is not None
    moved = dataclasses.replace(
        record,
        headline=record.headline + 1e-4,
        per_language={**record.per_language, "de": record.per_language["de"] + 0.01},
    )
    changed = compare_results(document, dataclasses.replace(document, scores=moved))
    differing = {c.name for c in changed if not c.identical}
    assert "per_language/de" in differing and changed[0].difference == pytest.approx(0.0001)


def test_bench_eval_passes_against_a_torch_reference(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_benchmark_data(tmp_path / "data")
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    reference = tmp_path / "reference"
    run_evaluation(
        EvalRequest(str(model), tasks="sts,bucc", data_dir=data, output_dir=reference, backend="torch", plots=False)
    )
    script = load_benchmark_script("bench_eval")
    results = tmp_path / "results"
    script.main(
        [
            *("--model", str(model), "--data-dir", str(data), "--tasks", "sts,bucc", "--reference", str(reference)),
            *("--results-dir", str(results), "--run-dir", str(tmp_path / "runs"), "--no-plots", "--cold"),
        ]
    )
    report = json.loads((results / "eval_suite_auto_sts-bucc.json").read_text())
    assert report["run"]["exit_code"] == 0 and "backend: ONNX fp32" in report["run"]["backend_line"]
    assert report["main_scores_identical"] is True and report["other_scores_differing"] == []
    assert [row["task"] for row in report["tasks"]] == ["sts", "bucc"]
    assert all(row["backend"] == "onnx" and row["texts_encoded"] > 0 for row in report["tasks"])
    assert "**PASS**" in (results / "eval_suite_auto_sts-bucc.md").read_text()
    assert not (model / "onnx").exists()
