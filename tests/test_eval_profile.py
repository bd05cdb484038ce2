"""The evaluation profile: columns read from real result files, the before/after, the recorded base, the CLI.

Oracles: the committed result files' own JSON numbers, picked out by hand (typed-out keys, plain
means), never through the profile's paths; deltas as plain subtractions.
"""

from __future__ import annotations

import copy
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from paraxl.cli.eval_command import comparison_table
from paraxl.cli.main import app
from paraxl.evaluation.base_model import recorded_base
from paraxl.evaluation.profile import (
    PROFILE,
    PROFILE_TASKS,
    ProfileColumn,
    column_value,
    compare_profiles,
    profile_json,
    profile_values,
)
from paraxl.evaluation.report import summary_markdown
from paraxl.evaluation.results import ResultDocument, read_result
from paraxl.evaluation.runner import parse_task_list
from paraxl.evaluation.tasks.registry import TASKS

from .eval_fixtures import write_benchmark_data
from .tiny import save_tiny

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
BASE_FOLDER = RESULTS / "eval" / "e5-small-resplit"  # the bundled model, every default task but official PAWS-X
FINE_TUNED_PAWSX = RESULTS / "experiments" / "pawsx-long" / "am-megabatch-1-epoch-seed-42" / "pawsx.json"


def raw(task: str) -> dict[str, Any]:
    return dict(json.loads((BASE_FOLDER / f"{task}.json").read_text(encoding="utf-8")))


def documents(folder: Path = BASE_FOLDER) -> list[ResultDocument]:
    return [read_result(path) for path in sorted(folder.glob("*.json"))]


def with_scores(task: str, scores: dict[str, Any]) -> ResultDocument:
    """A real result document of ``task`` whose ``scores`` are replaced (the shape of a result file)."""
    document = raw(task) if (BASE_FOLDER / f"{task}.json").is_file() else raw("tatoeba")
    document = copy.deepcopy(document)
    document["task"]["name"] = task
    document["scores"] = scores
    return ResultDocument.from_json(document)


def close(found: float | None, expected: float | None) -> bool:
    """Both missing, or equal to 1e-12 relative."""
    if found is None or expected is None:
        return found is expected
    return found == pytest.approx(expected, rel=1e-12)


def by_key(key: str) -> ProfileColumn:
    return next(c for c in PROFILE if c.key == key)


# ---------------------------------------------------------------- the columns


def test_profile_columns_hold_the_committed_results_numbers() -> None:
    pawsx, tatoeba, bucc, sts, sib = (raw(t)["scores"] for t in ("pawsx", "tatoeba", "bucc", "sts", "sib200"))
    others = ("de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh")
    cross_sets = [
        sts["sts17"]["sets"]["track2.ar-en"]["spearman"],
        sts["sts17"]["sets"]["track4a.es-en"]["spearman"],
        sts["sts17"]["sets"]["track4b.es-en"]["spearman"],
        *(sts["stsb_cross_lingual"]["sets"][f"en-{x}.test"]["spearman"] for x in others),
    ]
    expected = {
        "pawsx_test": 100 * pawsx["mean"]["accuracy"],
        "pawsx_en_xx": None,  # this file predates the en -> xx row at its own threshold
        "tatoeba112": 100 * statistics.fmean(row["accuracy"] for row in tatoeba["per_language"].values()),
        "tatoeba36": 100 * tatoeba["mean36_accuracy"],
        "bucc_zh_en": 100 * bucc["per_pair"]["zh-en"]["f1"],
        "sts_mono": statistics.fmean(s["spearman"] for s in sts["stsb_multi_mt"]["sets"].values()),
        "sts_cross": statistics.fmean(cross_sets),
        "korsts": sts["korsts"]["sets"]["ko.test"]["spearman"],
        "sib200_in": sib["mean"]["in_language_accuracy"],
        "sib200_zero": statistics.fmean(
            row["zero_shot_accuracy"] for lang, row in sib["per_language"].items() if lang != "eng_Latn"
        ),
    }
    values = profile_values(documents())
    assert list(values) == [c.key for c in PROFILE] == list(expected)
    assert all(close(values[key], expected[key]) for key in expected), values
    assert len(cross_sets) == 13 and values["tatoeba112"] == pytest.approx(69.2363, abs=1e-4)  # RESULTS.md


def test_the_en_to_xx_column_reads_bi_and_cross_encoder_results() -> None:
    fine_tuned = read_result(FINE_TUNED_PAWSX)
    own = json.loads(FINE_TUNED_PAWSX.read_text())["scores"]["cross_lingual"]["en_to_xx_own_threshold"]["mean"]
    assert profile_values([fine_tuned])["pawsx_en_xx"] == pytest.approx(100 * own)
    # a cross-encoder's pawsx result keeps the en -> X row under "en_to_xx" (no matrix)
    cross_encoder = with_scores("pawsx", {"mean": {"accuracy": 0.8}, "en_to_xx": {"mean": 0.75}})
    assert profile_values([cross_encoder])["pawsx_en_xx"] == pytest.approx(75.0)


def test_tatoeba36_falls_back_to_its_own_task_and_missing_numbers_stay_missing() -> None:
    only36 = with_scores("tatoeba36", {"mean_accuracy": 0.9, "per_language": {}})
    values = profile_values([only36])
    assert values["tatoeba36"] == pytest.approx(90.0) and values["tatoeba112"] is None
    both = [with_scores("tatoeba", {"mean_accuracy": 0.5, "mean36_accuracy": 0.7}), only36]
    assert profile_values(both)["tatoeba36"] == pytest.approx(70.0)  # the first source found wins
    # a NaN written as null, a missing set, no sets: missing, never 0 and never an error
    sts = {
        "stsb_multi_mt": {"sets": {"en.test": {"spearman": None}}},
        "sts17": {"sets": {"track2.ar-en": {"spearman": 50.0}}},
        "stsb_cross_lingual": {"sets": {}},
    }
    values = profile_values([with_scores("sts", sts)])
    assert values["sts_mono"] is None and values["sts_cross"] is None and values["korsts"] is None
    assert column_value(by_key("bucc_zh_en"), {"bucc": {"per_pair": {"zh-en": {"f1": "n/a"}}}}) is None


def test_an_sts_result_without_some_sets_leaves_their_columns_missing() -> None:
    """A partial result (an sts file without one cross-lingual set or one language) is no mean over fewer sets."""
    full = raw("sts")["scores"]
    assert profile_values([with_scores("sts", full)])["sts_cross"] is not None
    partial = copy.deepcopy(full)
    del partial["stsb_cross_lingual"]["sets"]["en-zh.test"]
    del partial["stsb_multi_mt"]["sets"]["ja.test"]
    values = profile_values([with_scores("sts", partial)])
    assert values["sts_cross"] is None and values["sts_mono"] is None
    assert close(values["korsts"], full["korsts"]["sets"]["ko.test"]["spearman"])


def test_profile_tasks_are_registered_and_parse() -> None:
    assert PROFILE_TASKS == ("pawsx", "tatoeba", "bucc", "sts", "sib200")
    assert all(source.task in TASKS for c in PROFILE for source in c.sources)
    assert parse_task_list("profile") == list(PROFILE_TASKS)
    assert parse_task_list("align, profile,pawsx") == ["align", *PROFILE_TASKS]
    assert parse_task_list("all") == ["pawsx", "align", "bucc", "tatoeba", "sts", "sib200"]  # unchanged


# ---------------------------------------------------------------- before/after


def test_before_after_values_deltas_and_missing_columns() -> None:
    base = documents()
    fine_tuned = [read_result(FINE_TUNED_PAWSX)]  # paper 1's loss, one epoch: PAWS-X only
    comparison = compare_profiles(fine_tuned, base, "--base")
    rows = {row.column.key: row for row in comparison.rows}
    ft, shelf = json.loads(FINE_TUNED_PAWSX.read_text())["scores"], raw("pawsx")["scores"]
    assert rows["pawsx_test"].base == pytest.approx(100 * shelf["mean"]["accuracy"])
    assert rows["pawsx_test"].model == pytest.approx(100 * ft["mean"]["accuracy"])
    gained = 100 * ft["mean"]["accuracy"] - 100 * shelf["mean"]["accuracy"]
    assert rows["pawsx_test"].delta == pytest.approx(gained) and gained > 10
    assert rows["pawsx_en_xx"].base is None and rows["pawsx_en_xx"].model is not None
    assert rows["pawsx_en_xx"].delta is None
    assert rows["bucc_zh_en"].base == pytest.approx(100 * raw("bucc")["scores"]["per_pair"]["zh-en"]["f1"])
    assert rows["bucc_zh_en"].model is None and rows["bucc_zh_en"].delta is None
    assert comparison.base is not None and comparison.base.spec == "bundled:multilingual-e5-small"

    saved = json.loads(json.dumps(profile_json(fine_tuned, comparison), allow_nan=False))
    columns = {entry["key"]: entry for entry in saved["comparison"]["columns"]}
    assert columns["pawsx_test"]["delta"] == pytest.approx(gained) and columns["tatoeba112"]["model"] is None
    assert saved["comparison"]["base"]["source"] == "--base"
    assert {entry["key"]: entry["value"] for entry in saved["columns"]} == profile_values(fine_tuned)

    summary = summary_markdown(fine_tuned, comparison)
    line = next(line for line in summary.splitlines() if line.startswith("| PAWS-X test acc."))
    assert line == (
        f"| PAWS-X test acc. | acc. % | {100 * shelf['mean']['accuracy']:.2f} | {100 * ft['mean']['accuracy']:.2f} "
        f"| {gained:+.2f} |"
    )
    assert "| BUCC zh-en F1 | F1 % | 86.94 | - | - |" in summary

    console = Console(width=200, record=True, markup=False)
    console.print(comparison_table(comparison))
    printed = console.export_text()
    assert f"{gained:+.2f}" in printed and "before / after" in printed
    bucc = next(line for line in printed.splitlines() if "BUCC zh-en F1" in line)
    assert [cell.strip() for cell in bucc.strip("│ ").split("│")] == ["BUCC zh-en F1", "F1 %", "86.94", "-", "-"]


def test_a_base_without_results_shows_dashes() -> None:
    comparison = compare_profiles(documents(), [], "recorded")
    assert comparison.base is None and all(row.base is None and row.delta is None for row in comparison.rows)
    with pytest.raises(ValueError, match="model's result documents"):
        compare_profiles([], documents(), "--base")


# ---------------------------------------------------------------- the base recorded by training


def training_config(model: str, output_dir: str) -> str:
    return json.dumps({"model": {"name": model}, "loss": {"kind": "info_nce"}, "output_dir": output_dir})


def test_recorded_base_is_read_beside_the_model_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "work" / "runs" / "mine"
    for folder in (run / "final", run / "best", run / "checkpoints" / "step-4" / "model"):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text('{"model_type": "bert"}')  # the transformer's own config
    (run / "config.json").write_text(training_config("bundled:multilingual-e5-small", "runs/mine"))
    for folder in (run / "final", run / "best", run / "checkpoints" / "step-4" / "model"):
        found = recorded_base(str(folder))
        assert found is not None and found.spec == "bundled:multilingual-e5-small"
        assert found.record == (run / "config.json").resolve()
    # a relative base is found from anywhere: re-rooted at the folder training ran in (from output_dir)
    (tmp_path / "work" / "models" / "start").mkdir(parents=True)
    (run / "config.json").write_text(training_config("models/start", "runs/mine"))
    monkeypatch.chdir(tmp_path)
    found = recorded_base(str(run / "final"))
    assert found is not None and Path(found.spec) == tmp_path / "work" / "models" / "start"
    # not a paraxl training config, not a folder, a bundled spec: no base
    (run / "config.json").write_text('{"model": {"name": "x"}}')
    assert recorded_base(str(run / "final")) is None
    (run / "config.json").write_text("{broken")
    assert recorded_base(str(run / "final")) is None
    assert recorded_base(str(tmp_path / "nope")) is None and recorded_base("bundled:multilingual-e5-small") is None


def test_recorded_base_of_a_multi_task_run_and_not_of_a_model_inside_another_run(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "multi"
    (run / "final").mkdir(parents=True)
    record = {"model": {"name": "bundled:multilingual-e5-small"}, "tasks": [{"name": "a"}], "output_dir": "runs/multi"}
    (run / "config.json").write_text(json.dumps(record))  # a multi-task record: `tasks`, no top-level `loss`
    found = recorded_base(str(run / "final"))
    assert found is not None and found.spec == "bundled:multilingual-e5-small"
    # model folders that this run did not write: a copy under it, a model dropped into its checkpoints
    (run / "config.json").write_text(training_config("bundled:multilingual-e5-small", "runs/multi"))
    elsewhere = (run / "teacher" / "final", run / "exports" / "mine", run / "checkpoints" / "mine", run / "final" / "x")
    for folder in elsewhere:
        folder.mkdir(parents=True)
        assert recorded_base(str(folder)) is None, folder


# ---------------------------------------------------------------- paraxl eval


runner = CliRunner()


def _eval(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["eval", *args])
    return result.exit_code, result.output


@pytest.fixture()
def fine_tuned_run(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run folder as paraxl's trainer leaves it: config.json naming the tiny model, final/ with other weights."""
    monkeypatch.setenv("PARAXL_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    save_tiny(run / "final", seed=1)
    (run / "config.json").write_text(training_config(str(tiny_model_dir), str(run)))
    return run


def test_eval_compares_a_trained_folder_with_its_recorded_base(
    fine_tuned_run: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    bench = write_benchmark_data(tmp_path / "data")
    out, base_out = tmp_path / "out", tmp_path / "base-out"
    common = ["--data-dir", str(bench), "--no-plots", "--backend", "torch", "--base-output-dir", str(base_out)]
    code, output = _eval(str(fine_tuned_run / "final"), "--tasks", "pawsx,bucc", "-o", str(out), *common)
    assert code == 0, output
    assert "before / after" in output and "recorded by training" in output and f"loading {tiny_model_dir} " in output

    model_docs = [read_result(out / f"{task}.json") for task in ("pawsx", "bucc")]
    base_docs = [read_result(base_out / f"{task}.json") for task in ("pawsx", "bucc")]
    assert {doc.model.folder for doc in base_docs} == {str(tiny_model_dir)}
    assert model_docs[0].model.fingerprint != base_docs[0].model.fingerprint
    saved = json.loads((out / "profile.json").read_text())
    after, before = profile_values(model_docs), profile_values(base_docs)
    for entry in saved["comparison"]["columns"]:
        key = entry["key"]
        assert close(entry["model"], after[key]) and close(entry["base"], before[key])
        if after[key] is None:
            assert key not in ("pawsx_test", "bucc_zh_en") and entry["delta"] is None
        else:
            assert entry["delta"] == pytest.approx(after[key] - before[key])
    assert saved["comparison"]["base"]["spec"] == str(tiny_model_dir)
    assert "## profile" in (out / "summary.md").read_text() and (base_out / "summary.md").is_file()

    # again, one task more: the base's two results are reused as they are, only sts is new for it
    created = {task: read_result(base_out / f"{task}.json").provenance.created_utc for task in ("pawsx", "bucc")}
    code, output = _eval(str(fine_tuned_run / "final"), "--tasks", "pawsx,bucc,sts", "-o", str(out), *common)
    assert code == 0, output
    assert "evaluating sts" in " ".join(output.split())
    assert {t: read_result(base_out / f"{t}.json").provenance.created_utc for t in created} == created
    saved = json.loads((out / "profile.json").read_text())
    assert {e["key"]: e["delta"] is not None for e in saved["comparison"]["columns"]}["korsts"]
    # every task present: the base is not even loaded
    code, output = _eval(str(fine_tuned_run / "final"), "--tasks", "pawsx", "-o", str(out), *common)
    assert code == 0 and "reusing its results" in output and f"loading {tiny_model_dir} " not in output
    # other data: the base's results of the first data are not reused
    other = write_benchmark_data(tmp_path / "other-data", seed=1)
    swapped = [*common[2:], "--data-dir", str(other), "--tasks", "bucc", "-o", str(out)]
    code, output = _eval(str(fine_tuned_run / "final"), *swapped)
    assert code == 0 and "base " + str(tiny_model_dir) + ": evaluating bucc" in output


def test_before_after_compares_only_results_of_the_same_data(
    fine_tuned_run: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    first, second = write_benchmark_data(tmp_path / "data"), write_benchmark_data(tmp_path / "other-data", seed=1)
    out, base_out = tmp_path / "out", tmp_path / "base-out"
    common = ["--no-plots", "--backend", "torch", "--tasks", "bucc"]
    # the model's bucc from the first data; the base's bucc from the second
    code, output = _eval(str(fine_tuned_run / "final"), "--no-base", "--data-dir", str(first), "-o", str(out), *common)
    assert code == 0, output
    code, output = _eval(str(tiny_model_dir), "--data-dir", str(second), "-o", str(base_out), *common)
    assert code == 0, output
    # a before/after on the second data that runs pawsx only: bucc is in both folders, of different data
    code, output = _eval(str(fine_tuned_run / "final"), "--data-dir", str(second), "-o", str(out),
                         "--base-output-dir", str(base_out), *common[:-1], "pawsx")  # fmt: skip
    assert code == 0, output
    columns = {e["key"]: e for e in json.loads((out / "profile.json").read_text())["comparison"]["columns"]}
    assert columns["pawsx_test"]["delta"] is not None
    assert columns["bucc_zh_en"]["base"] is not None and columns["bucc_zh_en"]["model"] is None
    assert columns["bucc_zh_en"]["delta"] is None  # not the first data's model against the second's base


def test_eval_base_options(fine_tuned_run: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    bench = write_benchmark_data(tmp_path / "data")
    out = tmp_path / "out"
    common = ["--data-dir", str(bench), "--no-plots", "--backend", "torch", "--tasks", "bucc", "-o", str(out)]
    code, output = _eval(str(fine_tuned_run / "final"), "--no-base", *common)
    assert code == 0, output
    saved = json.loads((out / "profile.json").read_text())
    assert saved["comparison"] is None and "before / after" not in output
    assert saved["columns"][4]["key"] == "bucc_zh_en" and saved["columns"][4]["value"] is not None

    # an explicit base: any model; here the fine-tuned folder's own base, into a folder of its own
    other = tmp_path / "other-base"
    code, output = _eval(str(tiny_model_dir), "--base", str(fine_tuned_run / "final"), "--base-output-dir",
                         str(other), *common)  # fmt: skip
    assert code == 0, output
    assert json.loads((out / "profile.json").read_text())["comparison"]["base"]["source"] == "--base"

    code, output = _eval(str(fine_tuned_run / "final"), "--base", str(tiny_model_dir), "--no-base", *common)
    assert code == 2 and "contradict" in output
    code, output = _eval(str(fine_tuned_run / "final"), "--base", str(tmp_path / "missing"), *common)
    assert code == 2 and "no such folder" in output
    code, output = _eval(str(fine_tuned_run / "final"), "--base-output-dir", str(out), *common)
    assert code == 2 and "--base-output-dir" in output


def test_a_recorded_base_that_is_gone_is_a_warning(fine_tuned_run: Path, tmp_path: Path) -> None:
    bench = write_benchmark_data(tmp_path / "data")
    (fine_tuned_run / "config.json").write_text(training_config(str(tmp_path / "deleted"), str(fine_tuned_run)))
    out = tmp_path / "out"
    code, output = _eval(str(fine_tuned_run / "final"), "--tasks", "bucc", "--data-dir", str(bench), "--no-plots",
                         "--backend", "torch", "-o", str(out))  # fmt: skip
    assert code == 0, output
    assert "WARNING: no before/after" in output and "--base" in output
    assert json.loads((out / "profile.json").read_text())["comparison"] is None
