"""benchmarks/plot_experiments.py: the K curve reads the right cells of a JSON; the histograms find their runs."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from .scripts import load_benchmark_script


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_benchmark_script("plot_experiments")


def _row(tatoeba: float, bucc: float | None) -> dict[str, Any]:
    return {
        "Tatoeba-36 acc.": {"mean": tatoeba},
        "BUCC zh-en F1": None if bucc is None else {"mean": bucc},
    }


def test_k_curve_plots_the_k_variants_against_flat_references(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants = {
        "off-the-shelf": _row(0.80, None),
        "single-positive": _row(0.82, 0.70),
        "mpcl-K15": _row(0.86, 0.75),
        "mpcl-K2": _row(0.83, 0.71),
        "mpcl-K4": _row(0.84, 0.72),
        "mpcl-K4-log-sum-prob": _row(0.1, 0.1),  # not a K point
    }
    (tmp_path / "t.json").write_text(json.dumps({"variants": variants}), encoding="utf-8")
    drawn: dict[str, Any] = {}

    def fake_line_plot(x: list[int], series: dict[str, list[float]], path: Path, **_: Any) -> Path:
        drawn.update(x=x, series=series)
        return path

    monkeypatch.setattr(script, "line_plot", fake_line_plot)
    assert script.k_curve(tmp_path, tmp_path / "plots", table="t") == tmp_path / "plots" / "mpcl_k_curve.png"
    assert drawn["x"] == [2, 4, 15]
    series = drawn["series"]
    assert series["MPCL Tatoeba-36"] == pytest.approx([83.0, 84.0, 86.0])
    assert series["MPCL BUCC F1"] == pytest.approx([71.0, 72.0, 75.0])
    assert series["single-positive Tatoeba-36"] == pytest.approx([82.0] * 3)
    assert "off-the-shelf BUCC F1" not in series  # no value: no line
    assert series["off-the-shelf Tatoeba-36"] == pytest.approx([80.0] * 3)


def test_k_curve_draws_a_real_png_and_skips_missing_tables(script: ModuleType, tmp_path: Path) -> None:
    assert script.k_curve(tmp_path, tmp_path / "plots", table="absent") is None
    variants = {"mpcl-K2": _row(0.5, 0.4), "mpcl-K4": _row(0.6, 0.5)}
    (tmp_path / "t.json").write_text(json.dumps({"variants": variants}), encoding="utf-8")
    path = script.k_curve(tmp_path, tmp_path / "plots", table="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "t.json").write_text(json.dumps({"variants": {"mpcl-K2": _row(0.5, 0.4)}}), encoding="utf-8")
    assert script.k_curve(tmp_path, tmp_path / "plots", table="t") is None  # one K: no curve


def test_best_names_a_table_or_defaults_to_the_main_one(script: ModuleType) -> None:
    assert script.compared_runs("paraxl-am", 43) == [
        ("pawsx-main", "off-the-shelf", 42),
        ("pawsx-main", "paraxl-am", 43),
    ]
    assert script.compared_runs("pawsx-long/am-1", 42)[1] == ("pawsx-long", "am-1", 42)


def test_by_language_adds_the_long_and_push_tables_rows(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def table(**rows: float | None) -> dict[str, Any]:
        variants = {
            name: {"per_language": {} if acc is None else {"en": {"mean": acc}, "de": {"mean": acc - 0.1}}}
            for name, acc in rows.items()
        }
        return {"variants": variants}

    assert script.by_language(tmp_path, tmp_path / "plots") is None  # no main table: no plot
    (tmp_path / "pawsx-main.json").write_text(json.dumps(table(empty=None)), encoding="utf-8")
    assert script.by_language(tmp_path, tmp_path / "plots") is None  # no per-language scores: no plot
    (tmp_path / "pawsx-main.json").write_text(json.dumps(table(shelf=0.6, empty=None)), encoding="utf-8")
    (tmp_path / "pawsx-long.json").write_text(json.dumps(table(long=0.7)), encoding="utf-8")
    drawn: dict[str, Any] = {}

    def fake_heatmap(matrix: list[list[float]], rows: list[str], columns: list[str], path: Path, **_: Any) -> Path:
        drawn.update(matrix=matrix, rows=rows, columns=columns)
        return path

    monkeypatch.setattr(script, "heatmap", fake_heatmap)
    script.by_language(tmp_path, tmp_path / "plots")
    # "empty" has no per-language scores; pawsx-push is absent
    assert drawn["rows"] == ["pawsx-main: shelf", "pawsx-long: long"]
    assert drawn["columns"] == ["en", "de", "mean"]
    assert drawn["matrix"] == [pytest.approx([60.0, 50.0, 55.0]), pytest.approx([70.0, 60.0, 65.0])]


def test_by_language_leaves_the_mean_blank_when_a_language_is_missing(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = {"a": {"per_language": {"en": {"mean": 0.6}, "de": {"mean": 0.5}}}}
    long = {"b": {"per_language": {"en": {"mean": 0.7}}}}
    (tmp_path / "pawsx-main.json").write_text(json.dumps({"variants": main}), encoding="utf-8")
    (tmp_path / "pawsx-long.json").write_text(json.dumps({"variants": long}), encoding="utf-8")
    drawn: dict[str, Any] = {}

    def fake_heatmap(matrix: list[list[float]], *_: Any, **__: Any) -> Path:
        drawn.update(matrix=matrix)
        return tmp_path

    monkeypatch.setattr(script, "heatmap", fake_heatmap)
    script.by_language(tmp_path, tmp_path / "plots")
    second = drawn["matrix"][1]
    assert second[0] == pytest.approx(70.0) and np.isnan(second[1]) and np.isnan(second[2])
    monkeypatch.undo()  # the real heatmap draws the NaN cells blank
    path = script.by_language(tmp_path, tmp_path / "plots")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scale_sweep_takes_the_best_margins_runs_of_seed_42(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(margin: float, scale: float, val: float, test: float, seed: int = 42) -> dict[str, Any]:
        pawsx = {"validation_accuracy": val, "test_accuracy": test}
        loss = {"kind": "additive_margin", "margin": margin, "scale": scale}
        return {"config": {"loss": loss}, "seed": seed, "scores": {"pawsx": pawsx}}

    runs = [run(0.2, 40.0, 0.6, 0.5), run(0.2, 10.0, 0.7, 0.65), run(0.2, 20.0, 0.8, 0.75)]
    runs += [run(0.3, 10.0, 0.1, 0.1), run(0.2, 10.0, 0.1, 0.1, seed=43)]  # other margin, other seed: left out
    (tmp_path / "pawsx-margin.json").write_text(json.dumps({"runs": runs[:1]}), encoding="utf-8")
    assert script.scale_sweep(tmp_path, tmp_path / "plots") is None  # one scale: no curve
    (tmp_path / "pawsx-margin.json").write_text(json.dumps({"runs": runs}), encoding="utf-8")
    drawn: dict[str, Any] = {}

    def fake_line_plot(x: list[float], series: dict[str, list[float]], path: Path, **kwargs: Any) -> Path:
        drawn.update(x=x, series=series, **kwargs)
        return path

    monkeypatch.setattr(script, "line_plot", fake_line_plot)
    assert script.scale_sweep(tmp_path, tmp_path / "plots") == tmp_path / "plots" / "scale_sweep.png"
    assert drawn["x"] == [10.0, 20.0, 40.0] and drawn["log_x"] is True
    assert drawn["series"]["validation"] == pytest.approx([70.0, 80.0, 60.0])
    assert drawn["series"]["test (7-language mean)"] == pytest.approx([65.0, 75.0, 50.0])


def test_bi_vs_cross_sets_the_best_against_the_cross_encoders_last_epoch(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def rows(**accuracies: float) -> dict[str, Any]:
        return {"variants": {name: {"per_language": {"en": {"mean": acc}}} for name, acc in accuracies.items()}}

    assert script.bi_vs_cross(tmp_path, "pawsx-long/am-1", tmp_path / "plots") is None  # no cross-encoder yet
    epochs = [{"epoch": 1, "test_accuracy": {"en": 0.7}, "test_accuracy_mean": 0.7}]
    epochs.append({"epoch": 2, "test_accuracy": {"en": 0.8}, "test_accuracy_mean": 0.8})
    (tmp_path / "cross_encoder_pawsx.json").write_text(json.dumps({"evaluations": epochs}), encoding="utf-8")
    (tmp_path / "pawsx-main.json").write_text(json.dumps(rows(**{"off-the-shelf": 0.5, "st-mnrl": 0.55})))
    (tmp_path / "pawsx-long.json").write_text(json.dumps(rows(**{"am-1": 0.75, "other": 0.1})), encoding="utf-8")
    drawn: dict[str, Any] = {}

    def fake_bars(first: dict[str, float], path: Path, *, label: str, series: dict[str, Any], **kw: Any) -> Path:
        drawn.update(first=first, label=label, series=series, **kw)
        return path

    monkeypatch.setattr(script, "language_bars", fake_bars)
    script.bi_vs_cross(tmp_path, "pawsx-long/am-1", tmp_path / "plots")
    assert drawn["label"] == "off-the-shelf" and drawn["first"] == pytest.approx({"en": 50.0})
    assert list(drawn["series"]) == ["st-mnrl (pawsx-main)", "am-1 (pawsx-long, best)", "cross-encoder (epoch 2)"]
    assert drawn["series"]["am-1 (pawsx-long, best)"] == pytest.approx({"en": 75.0})
    assert drawn["series"]["cross-encoder (epoch 2)"] == pytest.approx({"en": 80.0})
    assert drawn["baseline"] == pytest.approx(80.0 * 0.93)  # bar 2's line


def _write_pawsx_details(folder: Path, positives: list[float], negatives: list[float]) -> None:
    folder.mkdir(parents=True)
    details = {
        "test_scores": {"en": positives + negatives},
        "test_labels": {"en": [1] * len(positives) + [0] * len(negatives)},
    }
    (folder / "pawsx.json").write_text(json.dumps({"details": details}), encoding="utf-8")


def test_histograms_read_the_results_copy_when_the_run_folder_is_gone(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, results = tmp_path / "runs", tmp_path / "results"
    # off-the-shelf still has its run folder; the best model only its copy under results/
    _write_pawsx_details(runs / "pawsx-main" / "off-the-shelf" / "seed-42" / "eval", [0.9], [0.8, 0.7])
    _write_pawsx_details(results / "pawsx-long" / "best-seed-42", [0.6, 0.5], [0.1])
    _write_pawsx_details(results / "pawsx-main" / "off-the-shelf-seed-42", [0.0], [0.0])  # the run folder wins
    drawn: dict[str, Any] = {}

    def fake_grid(panels: dict[str, Any], path: Path, **_: Any) -> Path:
        drawn.update(panels)
        return path

    monkeypatch.setattr(script, "similarity_histogram_grid", fake_grid)
    assert script.histograms(runs, results, "pawsx-long/best", 42, tmp_path / "plots") is not None
    shelf_pos, shelf_neg = drawn["off-the-shelf (seed 42)"]
    best_pos, best_neg = drawn["best (seed 42)"]
    assert (shelf_pos.tolist(), shelf_neg.tolist()) == ([0.9], [0.8, 0.7])
    assert (best_pos.tolist(), best_neg.tolist()) == ([0.6, 0.5], [0.1])
    # neither a run folder nor a copy: no plot, rather than a half-empty one
    assert script.histograms(runs, results, "pawsx-long/absent", 42, tmp_path / "plots") is None
