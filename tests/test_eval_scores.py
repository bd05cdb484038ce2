"""Typed result records: every committed result and table loads through them, and they hold the JSON's numbers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from paraxl.errors import InputError
from paraxl.evaluation.readers import READERS, read_scores
from paraxl.evaluation.results import SCHEMA_VERSION, ResultDocument, read_result
from paraxl.evaluation.scores import TaskScores
from paraxl.evaluation.tasks.base import TaskResult
from paraxl.evaluation.tasks.registry import TASKS
from paraxl.experiments.records import TableDocument, summarize_task, summary_scores
from paraxl.experiments.report import COLUMNS, aggregate

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


RESULT_FILES = sorted(path for path in RESULTS.rglob("*.json") if "task" in _json(path))
VERSION_1_FILES = [path for path in RESULT_FILES if _json(path)["schema_version"] == 1]
TABLE_FILES = sorted(path for path in (RESULTS / "experiments").glob("*.json") if "runs" in _json(path))


def test_the_committed_files_are_found() -> None:
    assert len(RESULT_FILES) >= 20 and {p.stem for p in RESULT_FILES} >= {"pawsx", "align", "bucc", "tatoeba", "sts"}
    assert {p.stem for p in TABLE_FILES} >= {"pawsx-main", "pawsx-long", "xnli-mpcl-short"}


def test_every_task_has_a_reader() -> None:
    assert set(READERS) == set(TASKS)


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_committed_result_loads_and_round_trips(path: Path) -> None:
    raw = _json(path)
    document = read_result(path)
    assert raw["schema_version"] in (1, 2) and document.schema_version == raw["schema_version"]
    assert document.task.name == raw["task"]["name"] and document.model.fingerprint == raw["model"]["fingerprint"]
    assert document.main_score == raw["main_score"] and document.protocol == raw["protocol"]
    assert document.raw_scores == raw["scores"] and document.details == raw["details"]
    written = document.to_json()
    if raw["schema_version"] == 2:  # written by this version: it writes back the same document, byte for byte
        assert written == raw and list(written) == list(raw)
        return
    # version 2 = version 1 plus the score record; every other key and value unchanged, in the same order
    assert written.pop("score_record") == document.scores.to_json()
    assert written.pop("schema_version") == SCHEMA_VERSION == 2
    assert list(written) == [key for key in raw if key != "schema_version"] and written == {
        key: value for key, value in raw.items() if key != "schema_version"
    }
    assert ResultDocument.from_json(document.to_json()) == replace(document, schema_version=2)


@pytest.mark.parametrize("path", VERSION_1_FILES[:3] + VERSION_1_FILES[-3:], ids=lambda p: p.stem)
def test_a_schema_1_and_a_schema_2_document_give_the_same_record(path: Path) -> None:
    version_1 = _json(path)
    version_2 = ResultDocument.from_json(version_1).to_json()
    assert version_2["schema_version"] == 2 and "score_record" not in version_1
    first, second = ResultDocument.from_json(version_1), ResultDocument.from_json(version_2)
    assert first.scores == second.scores == TaskScores.from_json(version_2["score_record"])
    assert json.loads(json.dumps(version_2)) == version_2  # strict JSON


@pytest.mark.parametrize("version", [0, 3, None, "2"])
def test_other_schema_versions_are_refused(version: Any) -> None:
    document = _json(RESULT_FILES[0]) | {"schema_version": version}
    with pytest.raises(InputError, match="schema version"):
        ResultDocument.from_json(document)


def test_a_document_missing_a_part_is_an_input_error() -> None:
    document = _json(RESULT_FILES[0])
    del document["model"]
    with pytest.raises(InputError, match="not a paraxl result file"):
        ResultDocument.from_json(document, Path("x.json"))


def _committed(folder: str, task: str) -> tuple[dict[str, Any], TaskScores]:
    path = RESULTS / "eval" / folder / f"{task}.json"
    return _json(path)["scores"], read_result(path).scores


def test_pawsx_record_holds_the_json_numbers() -> None:
    raw, record = _committed("e5-small-resplit", "pawsx")
    assert record.headline == raw["mean"]["accuracy"]
    assert record.per_language == {lang: row["accuracy"] for lang, row in raw["monolingual"].items()}
    assert record.extras["validation_accuracy"] == raw["pooled_fit_accuracy"]
    assert record.extras["threshold"] == raw["pooled_threshold"] and record.extras["protocol"] == "resplit"
    cross = raw["cross_lingual"]
    assert record.per_subset["de-ja"] == cross["accuracy"]["de"]["ja"] and len(record.per_subset) == 49
    assert record.extras["cross_lingual_accuracy"] == cross["mean_cross_lingual"]
    assert record.extras["en_to_xx_accuracy"] == cross["mean_en_to_xx"]


def test_other_records_hold_the_json_numbers() -> None:
    raw, record = _committed("e5-small-resplit", "sts")
    assert record.per_subset == {group: raw[group]["mean_spearman"] for group in ("sts17", "stsb_multi_mt",
                                 "stsb_cross_lingual", "korsts")}  # fmt: skip
    raw, record = _committed("e5-small-resplit", "bucc")
    assert record.per_subset == {"zh-en": raw["per_pair"]["zh-en"]["f1"]}
    raw, record = _committed("e5-small-resplit", "tatoeba")
    assert record.per_language["afr"] == raw["per_language"]["afr"]["accuracy"] and len(record.per_language) == 112
    assert record.extras["mean36_accuracy"] == raw["mean36_accuracy"]
    raw, record = _committed("e5-small-resplit", "sib200")
    assert record.extras["zero_shot_accuracy"] == raw["mean"]["zero_shot_accuracy"]
    assert record.per_language["arb_Arab"] == raw["per_language"]["arb_Arab"]["in_language_accuracy"]
    raw, record = _committed("e5-small-resplit", "align")
    assert record.extras["uniformity"] == raw["mean"]["uniformity"]
    assert record.per_language["de"] == raw["per_language"]["de"]["alignment_paraphrase"]


def test_sts_over_one_folder_reads_its_sets() -> None:
    record = read_scores("sts22", {"sets": {"de-en": {"spearman": 50.0, "n": 3}}, "mean_spearman": 50.0}, 50.0)
    assert record == TaskScores(50.0, {}, {"de-en": 50.0}, {})


def test_an_unknown_task_keeps_its_headline_and_missing_parts_are_left_out() -> None:
    assert read_scores("gone", {"anything": 1}, 0.5) == TaskScores(0.5)
    assert read_scores("pawsx", {}, None) == TaskScores(
        None, {}, {}, {"protocol": None, "validation_accuracy": None, "threshold": None}
    )


def test_a_task_result_gives_its_record() -> None:
    result = TaskResult("bucc", 0.5, {"per_pair": {"zh-en": {"f1": 0.5}}, "split": "sample"}, [])
    assert result.record == TaskScores(0.5, {}, {"zh-en": 0.5}, {"split": "sample"})


@pytest.mark.parametrize("path", [p for p in RESULT_FILES if "e5-small-resplit" in str(p)], ids=lambda p: p.stem)
def test_a_run_summary_reads_back_to_the_same_numbers(path: Path) -> None:
    document = read_result(path)
    summary = json.loads(json.dumps(summarize_task(document)))  # as a record.json holds it
    again = summary_scores(document.task.name, summary)
    assert again.headline == document.scores.headline
    if document.task.task_type in ("pair_classification", "retrieval"):
        assert again.per_language == document.scores.per_language


@pytest.mark.parametrize("path", TABLE_FILES, ids=lambda p: p.stem)
def test_every_committed_table_loads_and_its_rows_match_its_runs(path: Path) -> None:
    raw = _json(path)
    table = TableDocument.from_json(raw)
    assert table.table == raw["table"] and list(table.variants) == list(raw["variants"])
    assert [(run.variant, run.seed) for run in table.runs] == [(run["variant"], run["seed"]) for run in raw["runs"]]
    for run, raw_run in zip(table.runs, raw["runs"], strict=True):
        assert set(run.scores) == set(raw_run["scores"])
        if "pawsx" in raw_run["scores"]:
            assert run.scores["pawsx"].headline == raw_run["scores"]["pawsx"]["test_accuracy"]
            assert (
                run.scores["pawsx"].extras["validation_accuracy"] == raw_run["scores"]["pawsx"]["validation_accuracy"]
            )
    regenerated = aggregate(raw["runs"])  # the typed reading reproduces every column the runs hold
    for name, row in table.variants.items():
        for column in COLUMNS:
            stats, fresh = row.columns.get(column.title), regenerated[name][column.title]
            if stats is not None and fresh is not None:
                assert stats.mean == pytest.approx(fresh["mean"]) and stats.n == fresh["n"]
