"""PNG plots of evaluation results.

Pure functions: each takes arrays or mappings, writes one PNG atomically (a reader sees
the old file or the complete new one), and returns the path. Figures are built with
``matplotlib.figure.Figure`` and the Agg canvas directly, so no global pyplot state is
created or touched. Inputs are validated before anything is drawn; a bad input raises
``ValueError`` and leaves no file at the target.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from paraxl.evaluation.plot_inputs import (
    FloatArray,
    bin_count,
    check_format,
    checked_values,
    finite,
    same_length,
    vector,
)
from paraxl.io.atomic import atomic_path

PathLike = str | os.PathLike[str]

_DPI = 100
_MARKER_LIMIT = 40  # draw point markers on lines with at most this many points


# --------------------------------------------------------------------------- helpers


def _figure(width: float = 6.4, height: float = 4.8) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: PathLike) -> Path:
    """Write ``figure`` to ``path`` as PNG atomically, release it, return the path."""
    target = Path(path)
    try:
        with atomic_path(target, suffix=".png") as tmp:
            figure.savefig(tmp, format="png", dpi=_DPI)
    finally:
        figure.clear()
    return target


def _marker(size: int) -> str | None:
    return "o" if size <= _MARKER_LIMIT else None


def _nearest(thresholds: FloatArray, accuracy: FloatArray, threshold: float) -> float:
    """Accuracy of the sweep point whose threshold is nearest ``threshold``."""
    return float(accuracy[int(np.argmin(np.abs(thresholds - threshold)))])


# --------------------------------------------------------------------------- threshold curve


def _curves(
    thresholds: npt.ArrayLike | Mapping[str, npt.ArrayLike],
    accuracy: npt.ArrayLike | Mapping[str, npt.ArrayLike],
    label: str,
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """Named ``(thresholds, accuracy)`` pairs, each sorted by threshold, accuracy in [0, 1]."""
    if isinstance(thresholds, Mapping) != isinstance(accuracy, Mapping):
        raise ValueError("thresholds and accuracy must both be arrays or both be mappings")
    if isinstance(thresholds, Mapping) and isinstance(accuracy, Mapping):
        if not thresholds:
            raise ValueError("no curves given")
        if set(thresholds) != set(accuracy):
            raise ValueError(f"curve names differ: thresholds {sorted(thresholds)} vs accuracy {sorted(accuracy)}")
        pairs = {str(name): (thresholds[name], accuracy[name]) for name in thresholds}
    else:
        pairs = {label: (thresholds, accuracy)}  # type: ignore[dict-item]
    curves: dict[str, tuple[FloatArray, FloatArray]] = {}
    for name, (raw_x, raw_y) in pairs.items():
        x = vector(f"thresholds[{name}]", raw_x)
        y = vector(f"accuracy[{name}]", raw_y)
        same_length(f"thresholds[{name}]", x, f"accuracy[{name}]", y)
        if (y < 0).any() or (y > 1).any():
            raise ValueError(f"accuracy[{name}]: expected fractions in [0, 1]")
        order = np.argsort(x, kind="stable")
        curves[name] = (x[order], y[order])
    return curves


def threshold_curve(
    thresholds: npt.ArrayLike | Mapping[str, npt.ArrayLike],
    accuracy: npt.ArrayLike | Mapping[str, npt.ArrayLike],
    chosen_threshold: float,
    path: PathLike,
    *,
    title: str,
    oracle_threshold: float | None = None,
    label: str = "accuracy",
    xlim: tuple[float, float] | None = None,
) -> Path:
    """Accuracy (%, y) against decision threshold (x), with the chosen threshold marked.

    ``accuracy`` holds fractions in [0, 1] (as ``ThresholdSweep`` gives them). Pass
    mappings name → array for both ``thresholds`` and ``accuracy`` to overlay several
    curves (e.g. one per language); ``chosen_threshold`` (fitted on validation data) is
    still one value, and each curve's accuracy at it goes into its legend entry. The
    accuracy "at" a threshold is that of the nearest sweep point. ``oracle_threshold``
    (fitted on test data) is drawn dashed. ``xlim`` narrows the x-axis (sweeps carry
    far-out end points).
    """
    curves = _curves(thresholds, accuracy, label)
    chosen = finite("chosen_threshold", chosen_threshold)
    oracle = None if oracle_threshold is None else finite("oracle_threshold", oracle_threshold)
    single = not isinstance(thresholds, Mapping)

    figure = _figure()
    axes = figure.add_subplot()
    for name, (x, y) in curves.items():
        at_chosen = _nearest(x, y, chosen)
        curve_label = name if single else f"{name} ({100 * at_chosen:.1f}% at chosen)"
        (line,) = axes.plot(x, 100 * y, label=curve_label, marker=_marker(x.size), markersize=3)
        axes.plot([chosen], [100 * at_chosen], marker="o", color=line.get_color(), linestyle="none")
    if single:
        (x, y) = next(iter(curves.values()))
        chosen_label = f"chosen t={chosen:.3f} ({100 * _nearest(x, y, chosen):.1f}%)"
    else:
        chosen_label = f"chosen t={chosen:.3f}"
    axes.axvline(chosen, color="black", linewidth=1.2, label=chosen_label)
    if oracle is not None:
        oracle_label = f"oracle (fit on test) t={oracle:.3f}"
        if single:
            (x, y) = next(iter(curves.values()))
            oracle_label += f" ({100 * _nearest(x, y, oracle):.1f}%)"
        axes.axvline(oracle, color="grey", linestyle="--", linewidth=1.2, label=oracle_label)
    if xlim is not None:
        axes.set_xlim(finite("xlim[0]", xlim[0]), finite("xlim[1]", xlim[1]))
    axes.set_title(title)
    axes.set_xlabel("threshold")
    axes.set_ylabel(f"{label} (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


# --------------------------------------------------------------------------- histograms


def _draw_histograms(
    axes: Axes, positive: FloatArray, negative: FloatArray, bins: int, threshold: float | None
) -> None:
    edges = np.histogram_bin_edges(np.concatenate([positive, negative]), bins=bins).tolist()
    axes.hist(
        negative, bins=edges, density=True, alpha=0.5, color="tab:red", label=f"non-paraphrase (n={negative.size})"
    )
    axes.hist(positive, bins=edges, density=True, alpha=0.5, color="tab:blue", label=f"paraphrase (n={positive.size})")
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle="--", linewidth=1.2, label=f"threshold {threshold:.3f}")


def similarity_histograms(
    positive_scores: npt.ArrayLike,
    negative_scores: npt.ArrayLike,
    path: PathLike,
    *,
    title: str,
    threshold: float | None = None,
    bins: int = 50,
) -> Path:
    """Overlaid density histograms of similarity scores: paraphrase vs non-paraphrase pairs.

    Both groups share the same bin edges. ``threshold`` adds a dashed vertical line.
    """
    positive = vector("positive_scores", positive_scores)
    negative = vector("negative_scores", negative_scores)
    cut = None if threshold is None else finite("threshold", threshold)
    count = bin_count(bins)

    figure = _figure()
    axes = figure.add_subplot()
    _draw_histograms(axes, positive, negative, count, cut)
    axes.set_title(title)
    axes.set_xlabel("cosine similarity")
    axes.set_ylabel("density")
    axes.legend(fontsize="small")
    return _save(figure, path)


def similarity_histogram_grid(
    panels: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]],
    path: PathLike,
    *,
    title: str,
    threshold: float | None = None,
    bins: int = 50,
) -> Path:
    """Small multiples of :func:`similarity_histograms`: one panel per name (e.g. language).

    ``panels`` maps name → ``(positive_scores, negative_scores)``; panels share the x-axis.
    """
    if not panels:
        raise ValueError("panels: empty")
    data: dict[str, tuple[FloatArray, FloatArray]] = {}
    for name, pair in panels.items():
        if len(pair) != 2:
            raise ValueError(f"panels[{name}]: expected (positive_scores, negative_scores)")
        data[str(name)] = (
            vector(f"panels[{name}] positive scores", pair[0]),
            vector(f"panels[{name}] negative scores", pair[1]),
        )
    cut = None if threshold is None else finite("threshold", threshold)
    count = bin_count(bins)

    columns = min(4, len(data))
    rows = math.ceil(len(data) / columns)
    figure = _figure(3.2 * columns, 2.6 * rows + 0.6)
    grid = figure.subplots(rows, columns, sharex=True, squeeze=False)
    cells = [axes for row in grid for axes in row]
    for axes, (name, (positive, negative)) in zip(cells, data.items(), strict=False):
        _draw_histograms(axes, positive, negative, count, cut)
        axes.set_title(name, fontsize="medium")
    for axes in cells[len(data) :]:
        axes.set_visible(False)
    for column in range(columns):  # the lowest visible panel of each column carries the x-axis labels
        lowest = grid[rows - 1, column] if grid[rows - 1, column].get_visible() else grid[rows - 2, column]
        lowest.xaxis.set_tick_params(labelbottom=True)
        lowest.set_xlabel("cosine similarity")
    for row in grid:
        row[0].set_ylabel("density")
    handles, labels = cells[0].get_legend_handles_labels()
    labels = [text.split(" (n=")[0] for text in labels]  # per-panel counts do not hold for the others
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small")
    figure.suptitle(title)
    return _save(figure, path)


# --------------------------------------------------------------------------- bars


def language_bars(
    values: Mapping[str, float],
    path: PathLike,
    *,
    title: str,
    ylabel: str,
    baseline: float | None = None,
    series: Mapping[str, Mapping[str, float]] | None = None,
    label: str = "value",
    baseline_label: str = "baseline",
    fmt: str = "{:.1f}",
) -> Path:
    """One bar per language (key of ``values``), its value written above it.

    With ``series`` (name, e.g. model or protocol → language → value) the bars are
    grouped per language: ``values`` is the first series, named ``label``, then each of
    ``series`` in order. Languages follow the order of ``values``, then any new ones in
    ``series``; a series missing a language simply has no bar there. ``baseline`` draws
    a dashed horizontal line (e.g. the majority-class accuracy) named ``baseline_label``.
    """
    groups: dict[str, dict[str, float]] = {label: checked_values("values", values)}
    for name, mapping in (series or {}).items():
        if str(name) in groups:
            raise ValueError(f"series name {name!r} repeats (the values series is named {label!r})")
        groups[str(name)] = checked_values(f"series[{name}]", mapping)
    level = None if baseline is None else finite("baseline", baseline)
    check_format(fmt)

    languages: list[str] = []
    for mapping in groups.values():
        languages.extend(language for language in mapping if language not in languages)
    positions = np.arange(len(languages), dtype=np.float64)
    width = 0.8 / len(groups)

    figure = _figure(max(6.4, 0.45 * len(languages) * len(groups) + 1.5), 4.8)
    axes = figure.add_subplot()
    grouped = series is not None and len(groups) > 1
    for index, (name, mapping) in enumerate(groups.items()):
        offset = (index - (len(groups) - 1) / 2) * width
        present = [i for i, language in enumerate(languages) if language in mapping]
        heights = [mapping[languages[i]] for i in present]
        bars = axes.bar(positions[present] + offset, heights, width=width, label=name if grouped else None)
        if not grouped:
            axes.bar_label(bars, labels=[fmt.format(value) for value in heights], fontsize="small", padding=2)
    if level is not None:
        axes.axhline(
            level, color="black", linestyle="--", linewidth=1.2, label=f"{baseline_label} ({fmt.format(level)})"
        )
    axes.set_xticks(positions, languages)
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.grid(axis="y", alpha=0.3)
    axes.margins(y=0.1)
    if grouped:  # beside the plot: several series would cover bars
        figure.legend(loc="outside right upper", fontsize="small")
    elif level is not None:
        axes.legend(fontsize="small")
    return _save(figure, path)


# --------------------------------------------------------------------------- heatmap


def heatmap(
    matrix: npt.ArrayLike,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: PathLike,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    fmt: str = "{:.1f}",
) -> Path:
    """Annotated heatmap with a colour bar (e.g. cross-lingual accuracy, rows = sentence-1 language).

    NaN cells mean "no value" and are drawn light grey without a number; infinities are
    rejected, and at least one cell must hold a value.
    """
    try:
        grid = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"matrix: not numeric ({error})") from error
    if grid.ndim != 2:
        raise ValueError(f"matrix: expected 2-D, got shape {grid.shape}")
    if grid.size == 0:
        raise ValueError("matrix: empty")
    if grid.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"matrix has shape {grid.shape} but there are {len(row_labels)} row and {len(col_labels)} column labels"
        )
    if np.isinf(grid).any():
        raise ValueError("matrix: contains infinite values (use NaN for missing cells)")
    known = ~np.isnan(grid)
    if not known.any():
        raise ValueError("matrix: every cell is NaN")
    check_format(fmt)

    low, high = float(grid[known].min()), float(grid[known].max())
    norm = Normalize(vmin=low, vmax=high if high > low else low + 1.0)
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")
    rows, columns = grid.shape
    figure = _figure(max(4.0, 0.75 * columns + 2.5), max(3.5, 0.6 * rows + 1.8))
    axes = figure.add_subplot()
    image = axes.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
    figure.colorbar(image, ax=axes)
    for r in range(rows):
        for c in range(columns):
            if known[r, c]:
                red, green, blue, _ = cmap(norm(grid[r, c]))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                colour = "white" if dark else "black"
                axes.text(c, r, fmt.format(grid[r, c]), ha="center", va="center", fontsize="small", color=colour)
    axes.set_xticks(np.arange(columns), [str(label) for label in col_labels])
    axes.set_yticks(np.arange(rows), [str(label) for label in row_labels])
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    return _save(figure, path)


# --------------------------------------------------------------------------- line plot


def line_plot(
    x: npt.ArrayLike,
    series: Mapping[str, npt.ArrayLike],
    path: PathLike,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
) -> Path:
    """One line per named series over shared ``x`` (sweeps: margin, K, ...); ``log_x`` needs x > 0."""
    xs = vector("x", x)
    if not series:
        raise ValueError("series: empty")
    lines: dict[str, FloatArray] = {}
    for name, values in series.items():
        ys = vector(f"series[{name}]", values)
        same_length("x", xs, f"series[{name}]", ys)
        lines[str(name)] = ys
    if log_x and (xs <= 0).any():
        raise ValueError("x: log_x needs every x > 0")

    order = np.argsort(xs, kind="stable")
    figure = _figure()
    axes = figure.add_subplot()
    for name, ys in lines.items():
        axes.plot(xs[order], ys[order], marker=_marker(xs.size), markersize=4, label=name)
    if log_x:
        axes.set_xscale("log")
        # ticks at the measured points, written plainly (not 4x10^0)
        axes.set_xticks(xs.tolist(), [f"{value:g}" for value in xs.tolist()])
        axes.minorticks_off()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)
