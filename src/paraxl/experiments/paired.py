"""Paired comparisons of two variants of a table, seed by seed: is one better, and by how much?

Two variants that ran the same seeds share everything but what the variant names (the data order,
the initialisation of anything new), so their difference at one seed is a paired sample and the
seed-to-seed noise that both share cancels. Per column: the differences at the seeds both ran, their
mean, sample standard deviation, the 95 % confidence interval of the mean difference (Student's t,
``n - 1`` degrees of freedom), how many seeds the variant won (in the column's better direction:
alignment is lower-is-better), and the two-sided paired t-test's p (``scipy.stats.ttest_rel``).
Non-finite scores are left out, as a missing one. With 3 seeds the interval is wide, which is the honest answer: a claim
is "held" when the interval lies above 0, "not shown" when it holds 0, and a claimed gain outside
the interval is one these runs rule out at that confidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scipy import stats

from paraxl.evaluation.scores import TaskScores
from paraxl.experiments.records import RunRecord

Scores = Mapping[str, TaskScores]  # one run's typed scores, by task


class TableColumn(Protocol):
    """What a paired comparison needs of a table column (:class:`paraxl.experiments.report.Column`)."""

    @property
    def title(self) -> str: ...
    @property
    def scale(self) -> float: ...
    @property
    def digits(self) -> int: ...
    @property
    def higher_is_better(self) -> bool: ...
    def value(self, scores: Scores) -> float | None: ...


@dataclass(frozen=True)
class PairedColumn:
    """One column's differences ``variant - against`` at the seeds both ran, in the column's units x scale."""

    title: str
    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    std: float | None  # None below two seeds
    low: float | None  # 95 % confidence interval of the mean difference; None below two seeds or without spread
    high: float | None
    wins: int  # seeds where the variant scored better (higher, or lower where lower is better)
    p_value: float | None  # two-sided paired t-test; None below two seeds or without spread
    higher_is_better: bool = True
    digits: int = 2  # the column's printed decimals

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "seeds": list(self.seeds), "differences": list(self.differences)}


def paired_column(
    title: str, seeds: Sequence[int], differences: Sequence[float], higher_is_better: bool = True, digits: int = 2
) -> PairedColumn:
    """Mean, sample std, t-interval, wins and paired-t p of one column's per-seed differences."""
    n = len(differences)
    # equal differences have no spread: exactly 0, not the float noise of (d - mean) that would give a
    # t-test with p ~ 1e-32 and a zero-width interval for three copies of one number
    spread = max(differences) != min(differences)
    mean = math.fsum(differences) / n if spread else differences[0]
    std = low = high = p_value = None
    if n > 1:
        std = math.sqrt(math.fsum((d - mean) ** 2 for d in differences) / (n - 1)) if spread else 0.0
    if std:
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        low, high = mean - half, mean + half
        # ttest_rel(a, b) tests mean(a - b) = 0; the differences against zeros is the same test
        p_value = float(stats.ttest_rel(list(differences), [0.0] * n).pvalue)
    wins = sum((d > 0) if higher_is_better else (d < 0) for d in differences)
    return PairedColumn(
        title, tuple(seeds), tuple(differences), mean, std, low, high, wins, p_value, higher_is_better, digits
    )


def paired_columns(
    records: Sequence[dict[str, Any]], columns: Sequence[TableColumn], variant: str, against: str
) -> list[PairedColumn]:
    """Every column both variants have at one or more shared seeds, in table order."""
    by_seed = {
        name: {record["seed"]: RunRecord.from_json(record).scores for record in records if record["variant"] == name}
        for name in (variant, against)
    }
    shared = sorted(set(by_seed[variant]) & set(by_seed[against]))
    found: list[PairedColumn] = []
    for column in columns:
        seeds, differences = _differences(column, shared, by_seed[variant], by_seed[against])
        if seeds:
            found.append(paired_column(column.title, seeds, differences, column.higher_is_better, column.digits))
    return found


def _differences(
    column: TableColumn, shared: list[int], mine: Mapping[int, Scores], theirs: Mapping[int, Scores]
) -> tuple[list[int], list[float]]:
    seeds: list[int] = []
    differences: list[float] = []
    for seed in shared:
        a, b = column.value(mine[seed]), column.value(theirs[seed])
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
            seeds.append(seed)
            differences.append((a - b) * column.scale)
    return seeds, differences


def _p_text(p_value: float | None) -> str:
    if p_value is None:
        return "-"
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"


def paired_markdown(variant: str, against: str, columns: Sequence[PairedColumn]) -> list[str]:
    """A table of one paired comparison: per column the differences, their mean, std, 95 % interval, wins, p."""
    if not columns:
        return ["", f"`{variant}` − `{against}`: no seed where both have a score."]
    lines = [
        "",
        f"Paired by seed, `{variant}` − `{against}` (column units; 95 % t-interval of the mean difference):",
        "",
    ]
    lines += ["| column | seeds | differences | mean | std | 95 % interval | wins | paired t p |", "|" + "---|" * 8]
    for c in columns:
        number = f"{{:+.{c.digits}f}}".format
        interval = "-" if c.low is None or c.high is None else f"[{number(c.low)}, {number(c.high)}]"
        cells = [
            c.title if c.higher_is_better else f"{c.title} (lower is better)",
            ", ".join(map(str, c.seeds)),
            ", ".join(number(d) for d in c.differences),
            number(c.mean),
            "-" if c.std is None else f"{c.std:.{c.digits}f}",
            interval,
            f"{c.wins} of {len(c.seeds)}",
            _p_text(c.p_value),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
