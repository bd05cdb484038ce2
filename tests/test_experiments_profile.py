"""Experiment tables and the evaluation profile: `eval: {tasks: profile}`, run records, the table markdown.

Oracle: the profile of the committed evaluation of the bundled model (tests/test_eval_profile.py
checks those numbers against the result files by hand); means, stds and deltas as plain arithmetic.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from paraxl.errors import InputError
from paraxl.evaluation.profile import PROFILE, profile_values
from paraxl.evaluation.results import read_result
from paraxl.evaluation.runner import parse_task_list
from paraxl.evaluation.session import EvalOutcome, EvalRequest
from paraxl.experiments import runner
from paraxl.experiments.records import RunRecord, TableDocument
from paraxl.experiments.report import aggregate, markdown
from paraxl.experiments.tables import load_table

from .test_experiments import VALID_TABLE, write_table

COMMITTED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "eval" / "e5-small-resplit"
NONE_TABLE = """\
name: shelf
base: configs/base.yaml
eval: {tasks: "TASKS"}
variants:
  - {name: off-the-shelf, trainer: none}
"""


def test_profile_is_a_task_list_of_tables_and_a_typo_fails_at_load(tmp_path: Path) -> None:
    table = load_table(write_table(tmp_path / "a", VALID_TABLE.replace("tasks: pawsx", "tasks: profile")))
    assert table.spec.eval.tasks == "profile"
    path = write_table(tmp_path / "b", VALID_TABLE.replace("tasks: pawsx", "tasks: 'profile,tatoba'"))
    with pytest.raises(InputError, match=r"eval\.tasks: unknown task\(s\) tatoba") as caught:
        load_table(path)
    assert caught.value.path == str(path)


@pytest.mark.parametrize(("tasks", "profiled"), [("profile", True), ("pawsx,bucc", False)])
def test_a_run_record_carries_the_profile_when_its_eval_ran_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tasks: str, profiled: bool
) -> None:
    table = load_table(write_table(tmp_path / "repo", NONE_TABLE.replace("TASKS", tasks)))
    documents = [read_result(path) for path in sorted(COMMITTED.glob("*.json"))]
    asked: list[EvalRequest] = []

    def committed_results(request: EvalRequest, log: Any = None) -> EvalOutcome:
        # the bundled model's committed results stand in for a 45-minute evaluation
        asked.append(request)
        names = parse_task_list(request.tasks)
        return EvalOutcome(tmp_path, [doc for doc in documents if doc.task.name in names], [])

    monkeypatch.setattr(runner, "run_evaluation", committed_results)
    variant = table.spec.variants[0]
    record = runner.run_one(table, variant, 42, tmp_path / "runs", tmp_path, log=lambda line: None)
    assert asked[0].tasks == tasks and asked[0].base is None  # a table compares its variants itself
    saved = json.loads((tmp_path / "runs" / "shelf" / "off-the-shelf" / "seed-42" / "record.json").read_text())
    assert saved == record
    if not profiled:
        assert "profile" not in record and RunRecord.from_json(record).profile is None
        return
    expected = profile_values(documents)
    assert record["profile"] == expected and list(expected) == [c.key for c in PROFILE]
    assert record["profile"]["sts_cross"] == pytest.approx(59.83, abs=0.005)  # STS17 cross + stsb en-xx sets
    assert RunRecord.from_json(record).profile == expected


def profiled(variant: str, seed: int, trainer: str, values: dict[str, float | None]) -> dict[str, Any]:
    profile: dict[str, float | None] = {c.key: None for c in PROFILE} | values
    return {"variant": variant, "trainer": trainer, "seed": seed, "training": None, "scores": {}, "profile": profile}


RECORDS = [
    profiled("off-the-shelf", 42, "none", {"pawsx_test": 57.0, "tatoeba112": 69.0}),
    profiled("am", 42, "paraxl", {"pawsx_test": 68.0, "tatoeba112": 60.0}),
    profiled("am", 43, "paraxl", {"pawsx_test": 70.0, "tatoeba112": 58.0}),
]


def test_aggregate_and_markdown_show_the_profile_and_its_change() -> None:
    variants = aggregate(RECORDS)
    am = variants["am"]["profile"]
    assert am["pawsx_test"]["mean"] == pytest.approx(69.0) and am["pawsx_test"]["std"] == pytest.approx(
        statistics.stdev([68.0, 70.0])
    )
    assert am["bucc_zh_en"] is None
    # the JSON round trip keeps the profile apart from the table's columns
    row = TableDocument.from_json(json.loads(json.dumps({"variants": variants, "runs": RECORDS}))).variants["am"]
    assert row.profile["tatoeba112"] is not None and row.profile["tatoeba112"].mean == pytest.approx(59.0)
    assert "profile" not in row.columns

    lines = markdown("t", variants).splitlines()
    start = lines.index("Evaluation profile (points, mean over seeds; higher is better):")
    header = lines[start + 2].strip("| ").split(" | ")
    assert header == ["variant", "PAWS-X test acc. (acc. %)", "Tatoeba-112 acc. (acc. %)"]  # columns with values
    assert lines[start + 4] == "| off-the-shelf | 57.00 | 69.00 |"
    assert lines[start + 5] == f"| am | 69.00 ± {statistics.stdev([68.0, 70.0]):.2f} | 59.00 ± 1.41 |"
    change = lines.index("Change against `off-the-shelf` (points; gained > 0, lost < 0):")
    assert lines[change + 4] == "| am | +12.00 | -10.00 |" and len(lines) == change + 5


def test_a_profile_mean_over_fewer_seeds_says_so() -> None:
    without = {k: v for k, v in profiled("am", 44, "paraxl", {}).items() if k != "profile"}  # no profile
    lines = markdown("t", aggregate([*RECORDS, without])).splitlines()
    row = next(line for line in lines if line.startswith("| am | 69.00"))
    assert row == f"| am | 69.00 ± {statistics.stdev([68.0, 70.0]):.2f} (2 of 3 seeds) | 59.00 ± 1.41 (2 of 3 seeds) |"
    assert "| off-the-shelf | 57.00 | 69.00 |" in lines  # all of its seeds: no note


def test_tables_without_the_profile_have_no_profile_section() -> None:
    plain = [{k: v for k, v in record.items() if k != "profile"} for record in RECORDS]
    variants = aggregate(plain)
    assert all("profile" not in row for row in variants.values())
    assert "Evaluation profile" not in markdown("t", variants)
    # no untrained variant: the profile, but no change table
    text = markdown("t", aggregate(RECORDS[1:]))
    assert "Evaluation profile" in text and "Change against" not in text
