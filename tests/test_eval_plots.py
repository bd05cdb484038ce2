"""Evaluation plots: valid PNGs, atomic writes, no pyplot figures, input validation."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from paraxl.evaluation import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RNG = np.random.default_rng(0)
POS = RNG.normal(0.8, 0.05, 200)
NEG = RNG.normal(0.6, 0.1, 300)
THRESHOLDS = np.linspace(0.0, 1.0, 41)
ACCURACY = 0.5 + 0.4 * np.exp(-((THRESHOLDS - 0.7) ** 2) / 0.02)
LANGS = ["en", "de", "es", "fr", "ja", "ko", "zh"]


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3
    assert image.shape[0] > 100 and image.shape[1] > 100
    # only the PNG itself is left in its folder: no temp files
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]


def assert_no_pyplot_figures() -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # the module never imports pyplot; if something else did, it must be clean
        assert pyplot.get_fignums() == []


def test_module_does_not_use_pyplot() -> None:
    source = Path(plots.__file__).read_text(encoding="utf-8")
    assert "pyplot" not in source.split('"""', 2)[2]  # past the module docstring


def test_threshold_curve_single(tmp_path: Path) -> None:
    target = tmp_path / "out" / "nested" / "threshold.png"  # parents are created
    result = plots.threshold_curve(
        THRESHOLDS, ACCURACY, 0.68, target, title="PAWS-X en", oracle_threshold=0.71, label="accuracy"
    )
    assert result == target
    assert_png(target)
    assert_no_pyplot_figures()


def test_threshold_curve_overlay_and_xlim(tmp_path: Path) -> None:
    thresholds = {lang: THRESHOLDS for lang in LANGS}
    accuracy = {lang: np.clip(ACCURACY - 0.02 * i, 0, 1) for i, lang in enumerate(LANGS)}
    target = tmp_path / "overlay.png"
    plots.threshold_curve(thresholds, accuracy, 0.7, target, title="per language", xlim=(0.2, 1.0))
    assert_png(target)


def test_threshold_curve_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "t.png"
    target.write_bytes(b"old")
    plots.threshold_curve([0.1, 0.5, 0.9], [0.5, 0.8, 0.6], 0.5, target, title="t")
    assert_png(target)


@pytest.mark.parametrize(
    ("thresholds", "accuracy", "chosen", "message"),
    [
        ([0.1, 0.2], [0.5], 0.1, "2 values but"),
        ([], [], 0.1, "empty"),
        ([0.1, np.nan], [0.5, 0.6], 0.1, "non-finite"),
        ([0.1, 0.2], [0.5, np.inf], 0.1, "non-finite"),
        ([0.1, 0.2], [50.0, 60.0], 0.1, r"\[0, 1\]"),
        ([0.1, 0.2], [0.5, 0.6], float("nan"), "chosen_threshold"),
        ({"en": [0.1]}, [0.5], 0.1, "both be arrays or both be mappings"),
        ({"en": [0.1]}, {"de": [0.5]}, 0.1, "curve names differ"),
        ({}, {}, 0.1, "no curves"),
        ({"en": [0.1, 0.2]}, {"en": [0.5]}, 0.1, "2 values but"),
    ],
)
def test_threshold_curve_rejects(
    tmp_path: Path, thresholds: object, accuracy: object, chosen: float, message: str
) -> None:
    target = tmp_path / "bad.png"
    with pytest.raises(ValueError, match=message):
        plots.threshold_curve(thresholds, accuracy, chosen, target, title="bad")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_similarity_histograms(tmp_path: Path) -> None:
    target = tmp_path / "hist.png"
    assert plots.similarity_histograms(POS, NEG, target, title="scores", threshold=0.72, bins=30) == target
    assert_png(target)
    # identical scores everywhere still make a valid plot
    other = tmp_path / "flat" / "hist.png"
    plots.similarity_histograms([0.5, 0.5], [0.5], other, title="flat")
    assert_png(other)
    assert_no_pyplot_figures()


@pytest.mark.parametrize(
    ("positive", "negative", "kwargs", "message"),
    [
        ([], [0.1], {}, "positive_scores: empty"),
        ([0.1], [0.2, np.nan], {}, "negative_scores: contains non-finite"),
        ([[0.1, 0.2]], [0.2], {}, "1-D"),
        ([0.1], [0.2], {"bins": 0}, "bins"),
        ([0.1], [0.2], {"threshold": float("inf")}, "threshold"),
    ],
)
def test_similarity_histograms_reject(
    tmp_path: Path, positive: object, negative: object, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plots.similarity_histograms(positive, negative, tmp_path / "bad.png", title="bad", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_similarity_histogram_grid(tmp_path: Path) -> None:
    panels = {lang: (POS + 0.01 * i, NEG) for i, lang in enumerate(LANGS)}  # 7 panels: 4 + 3, one hidden
    target = tmp_path / "grid.png"
    assert plots.similarity_histogram_grid(panels, target, title="per language", threshold=0.7, bins=20) == target
    assert_png(target)
    single = tmp_path / "one" / "grid.png"
    plots.similarity_histogram_grid({"en": (POS, NEG)}, single, title="one")
    assert_png(single)
    assert_no_pyplot_figures()


@pytest.mark.parametrize(
    ("panels", "message"),
    [
        ({}, "panels: empty"),
        ({"en": (POS, [])}, r"panels\[en\] negative scores: empty"),
        ({"en": (POS, NEG), "de": ([np.inf], NEG)}, r"panels\[de\] positive scores: contains non-finite"),
        ({"en": (POS,)}, "expected"),
    ],
)
def test_similarity_histogram_grid_rejects(tmp_path: Path, panels: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plots.similarity_histogram_grid(panels, tmp_path / "bad.png", title="bad")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_language_bars_single_and_grouped(tmp_path: Path) -> None:
    values = {lang: 80.0 + i for i, lang in enumerate(LANGS)}
    single = tmp_path / "a" / "bars.png"
    assert plots.language_bars(values, single, title="acc", ylabel="accuracy (%)", baseline=55.0) == single
    assert_png(single)
    series = {
        "zero-shot": {lang: 70.0 + i for i, lang in enumerate(LANGS)},
        "translate-train": {"en": 85.0, "de": 83.0, "xx": 60.0},  # missing languages, and a new one
    }
    grouped = tmp_path / "b" / "bars.png"
    plots.language_bars(values, grouped, title="acc", ylabel="accuracy (%)", series=series, label="fine-tuned")
    assert_png(grouped)
    assert_no_pyplot_figures()


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        ({}, {}, "values: empty"),
        ({"en": float("nan")}, {}, r"values\[en\]: must be finite"),
        ({"en": 1.0}, {"baseline": float("inf")}, "baseline"),
        ({"en": 1.0}, {"series": {"b": {}}}, r"series\[b\]: empty"),
        ({"en": 1.0}, {"series": {"b": {"en": float("inf")}}}, r"series\[b\]\[en\]"),
        ({"en": 1.0}, {"series": {"value": {"en": 2.0}}}, "repeats"),
        ({"en": 1.0}, {"fmt": "{:d}"}, "fmt"),
    ],
)
def test_language_bars_reject(
    tmp_path: Path, values: dict[str, float], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plots.language_bars(values, tmp_path / "bad.png", title="bad", ylabel="y", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_heatmap_with_nan_cells(tmp_path: Path) -> None:
    matrix = 70.0 + 20.0 * RNG.random((7, 7))
    matrix[2, 5] = np.nan
    target = tmp_path / "heat.png"
    result = plots.heatmap(
        matrix, LANGS, LANGS, target, title="cross-lingual", xlabel="sentence 2", ylabel="sentence 1", fmt="{:.0f}"
    )
    assert result == target
    assert_png(target)
    # a constant matrix and a non-square one are fine too
    other = tmp_path / "x" / "heat.png"
    plots.heatmap(np.full((2, 3), 5.0), ["a", "b"], ["c", "d", "e"], other, title="t", xlabel="x", ylabel="y")
    assert_png(other)
    assert_no_pyplot_figures()


@pytest.mark.parametrize(
    ("matrix", "rows", "cols", "kwargs", "message"),
    [
        (np.ones((2, 2)), ["a", "b", "c"], ["a", "b"], {}, "shape"),
        (np.ones((2, 2)), ["a", "b"], ["a"], {}, "shape"),
        (np.ones(3), ["a", "b", "c"], ["a"], {}, "2-D"),
        (np.ones((0, 0)), [], [], {}, "empty"),
        (np.array([[1.0, np.inf]]), ["a"], ["a", "b"], {}, "infinite"),
        (np.full((1, 2), np.nan), ["a"], ["a", "b"], {}, "every cell is NaN"),
        (np.ones((1, 1)), ["a"], ["a"], {"fmt": "{x}"}, "fmt"),
    ],
)
def test_heatmap_rejects(
    tmp_path: Path,
    matrix: np.ndarray,
    rows: list[str],
    cols: list[str],
    kwargs: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        plots.heatmap(matrix, rows, cols, tmp_path / "bad.png", title="t", xlabel="x", ylabel="y", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_line_plot(tmp_path: Path) -> None:
    k = np.array([1, 2, 4, 8, 16, 32])
    target = tmp_path / "k.png"
    series = {"recall@1": 0.5 + 0.01 * k, "recall@10": 0.7 + 0.005 * k}
    assert plots.line_plot(k, series, target, title="K curve", xlabel="K", ylabel="recall", log_x=True) == target
    assert_png(target)
    margins = np.linspace(0.0, 0.5, 200)  # many points: no markers
    other = tmp_path / "m" / "margin.png"
    plots.line_plot(margins, {"acc": np.sin(margins)}, other, title="margin", xlabel="margin", ylabel="acc")
    assert_png(other)
    assert_no_pyplot_figures()


@pytest.mark.parametrize(
    ("x", "series", "kwargs", "message"),
    [
        ([1.0, 2.0], {"a": [1.0]}, {}, "x has 2 values but series"),
        ([], {"a": []}, {}, "x: empty"),
        ([1.0], {}, {}, "series: empty"),
        ([1.0, np.nan], {"a": [1.0, 2.0]}, {}, "x: contains non-finite"),
        ([1.0, 2.0], {"a": [1.0, -np.inf]}, {}, r"series\[a\]: contains non-finite"),
        ([0.0, 1.0], {"a": [1.0, 2.0]}, {"log_x": True}, "log_x"),
    ],
)
def test_line_plot_rejects(tmp_path: Path, x: object, series: object, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plots.line_plot(x, series, tmp_path / "bad.png", title="t", xlabel="x", ylabel="y", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_failure_while_drawing_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")

    def broken_savefig(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    calls: list[Callable[[], object]] = [
        lambda: plots.line_plot([1.0], {"a": [1.0]}, target, title="t", xlabel="x", ylabel="y"),
        lambda: plots.similarity_histograms([0.1], [0.2], target, title="t"),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="disk full"):
            call()
        assert target.read_bytes() == b"old"
        assert [entry.name for entry in tmp_path.iterdir()] == ["keep.png"]
