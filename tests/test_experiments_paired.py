"""Paired seed-by-seed comparisons of two table variants.

Oracles: scipy's ``ttest_rel`` on the two variants' raw scores (not their differences) with its own
``confidence_interval``, numpy's ddof=1 std, and the committed run records' numbers read by key.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from paraxl.errors import InputError
from paraxl.experiments.paired import paired_column, paired_columns, paired_markdown
from paraxl.experiments.report import COLUMNS, write_report
from paraxl.experiments.tables import load_table

from .test_experiments import VALID_TABLE, write_table

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "benchmarks" / "results" / "experiments" / "xnli-mpcl-core.json"


def core_runs() -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads(CORE.read_text(encoding="utf-8"))["runs"]
    return runs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paired_column_equals_scipys_paired_t_test_on_the_raw_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3 + seed
    a = rng.normal(90, 1, n)
    b = a - rng.normal(0.3, 0.5, n)
    column = paired_column("x", list(range(n)), list(a - b))
    reference = stats.ttest_rel(a, b)
    interval = reference.confidence_interval(0.95)
    assert column.mean == pytest.approx(float(np.mean(a - b)), rel=1e-12)
    assert column.std == pytest.approx(float(np.std(a - b, ddof=1)), rel=1e-12)
    assert column.p_value == pytest.approx(float(reference.pvalue), rel=1e-9)
    assert (column.low, column.high) == (pytest.approx(interval.low, rel=1e-9), pytest.approx(interval.high, rel=1e-9))
    assert column.wins == int(np.sum(a > b))


def test_one_seed_or_equal_differences_give_no_test() -> None:
    one = paired_column("x", [42], [0.5])
    assert (one.mean, one.std, one.low, one.high, one.p_value, one.wins) == (0.5, None, None, None, None, 1)
    same = paired_column("x", [1, 2, 3], [-0.2, -0.2, -0.2])
    assert (same.mean, same.std, same.p_value, same.low, same.high, same.wins) == (-0.2, 0.0, None, None, None, 0)


def test_wins_follow_the_columns_better_direction() -> None:
    lower = paired_column("alignment", [1, 2, 3], [-0.1, -0.05, 0.02], higher_is_better=False, digits=3)
    assert lower.wins == 2  # two seeds lowered it, which is better for alignment
    assert paired_column("acc", [1, 2, 3], [-0.1, -0.05, 0.02]).wins == 1
    text = "\n".join(paired_markdown("a", "b", [lower]))
    assert "alignment (lower is better)" in text and "-0.100, -0.050, +0.020" in text


def test_paired_columns_of_the_committed_paper_2_runs_read_the_records_by_key() -> None:
    runs = core_runs()
    columns = {c.title: c for c in paired_columns(runs, COLUMNS, "mpcl-K2", "single-positive")}
    assert set(columns) == {c.title for c in COLUMNS if c.task in {"tatoeba36", "bucc"}}

    def score(variant: str, seed: int, task: str) -> float:
        run = next(r for r in runs if r["variant"] == variant and r["seed"] == seed)
        return float(run["scores"][task]["main_score"])

    seeds = sorted(
        {r["seed"] for r in runs if r["variant"] == "mpcl-K2"}
        & {r["seed"] for r in runs if r["variant"] == "single-positive"}
    )
    bucc = columns["BUCC zh-en F1"]
    assert list(bucc.seeds) == seeds
    expected = [100 * (score("mpcl-K2", s, "bucc") - score("single-positive", s, "bucc")) for s in seeds]
    assert list(bucc.differences) == pytest.approx(expected, rel=1e-12)
    # unknown variants give nothing
    assert paired_columns(runs, COLUMNS, "off-the-shelf", "nowhere") == []


def test_a_seed_missing_a_run_or_a_score_is_left_out() -> None:
    runs = core_runs()
    seeds = sorted({r["seed"] for r in runs if r["variant"] == "mpcl-K2"})
    assert len(seeds) >= 2
    dropped_run = [r for r in runs if not (r["variant"] == "mpcl-K2" and r["seed"] == seeds[-1])]
    for column in paired_columns(dropped_run, COLUMNS, "mpcl-K2", "single-positive"):
        assert seeds[-1] not in column.seeds
    no_bucc = copy.deepcopy(runs)
    for run in no_bucc:
        if run["variant"] == "mpcl-K2" and run["seed"] == seeds[0]:
            del run["scores"]["bucc"]
    columns = {c.title: c for c in paired_columns(no_bucc, COLUMNS, "mpcl-K2", "single-positive")}
    assert seeds[0] not in columns["BUCC zh-en F1"].seeds
    assert seeds[0] in columns["Tatoeba-36 acc."].seeds


def test_markdown_and_json_of_a_report_carry_the_comparison(tmp_path: Path) -> None:
    json_path, md_path = write_report("core", "t", core_runs(), tmp_path, [("mpcl-K2", "single-positive")])
    document = json.loads(json_path.read_text(encoding="utf-8"))
    (paired,) = document["paired"]
    assert (paired["variant"], paired["against"]) == ("mpcl-K2", "single-positive")
    bucc = next(c for c in paired["columns"] if c["title"] == "BUCC zh-en F1")
    text = md_path.read_text(encoding="utf-8")
    assert "Paired by seed, `mpcl-K2` − `single-positive`" in text
    assert f"| BUCC zh-en F1 | {', '.join(map(str, bucc['seeds']))} |" in text
    assert "no seed where both" in "\n".join(paired_markdown("a", "b", []))
    _, plain = write_report("plain", "t", core_runs(), tmp_path)
    assert "Paired" not in plain.read_text(encoding="utf-8")
    assert "paired" not in json.loads((tmp_path / "plain.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("paired", "message"),
    [
        ("[{variant: am, against: nothing}]", "'nothing' is not a variant"),
        ("[{variant: am, against: am}]", "against itself"),
        ("[{variant: am}]", "paired.0.against"),
        ("[{variant: am, against: off-the-shelf}]", "'off-the-shelf' is not trained per seed"),
    ],
)
def test_bad_paired_blocks_name_the_problem_and_the_file(tmp_path: Path, paired: str, message: str) -> None:
    path = write_table(tmp_path, VALID_TABLE + f"paired: {paired}\n")
    with pytest.raises(InputError, match=message) as caught:
        load_table(path)
    assert caught.value.path == str(path)


def test_a_valid_paired_block_loads() -> None:
    table = load_table(REPO / "experiments" / "xnli-mpcl-core.yaml")
    assert [(p.variant, p.against) for p in table.spec.paired] == [("mpcl-K2", "single-positive")]
