"""``paraxl profiles``: several models' profiles in one table, mean ± std over seed folders.

Oracles: the numbers typed out of the committed result files by key (never through the profile's
paths), numpy's mean and ddof=1 standard deviation, plain subtraction for the changes.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.errors import InputError
from paraxl.evaluation.profile import PROFILE
from paraxl.evaluation.profile_table import (
    ProfileTable,
    parse_row,
    profile_cell,
    profile_row,
    profiles_markdown,
)

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "eval"
BASE = RESULTS / "e5-small-resplit"  # the bundled model: pawsx, tatoeba, bucc, sts, sib200, align
TUNED = RESULTS / "pawsx-1ep-bf16-seed42"  # paper 1's one-epoch model, every profile task

runner = CliRunner()


def bucc_f1(folder: Path) -> float:
    return float(json.loads((folder / "bucc.json").read_text(encoding="utf-8"))["scores"]["per_pair"]["zh-en"]["f1"])


def seed_folder(tmp_path: Path, name: str, bucc: float, drop: tuple[str, ...] = ()) -> Path:
    """A copy of the tuned model's folder as another seed would give: its own fingerprint, BUCC F1 ``bucc``."""
    folder = tmp_path / name
    shutil.copytree(TUNED, folder, ignore=shutil.ignore_patterns(*(f"{task}.json" for task in drop)))
    for path in folder.glob("*.json"):
        document: dict[str, Any] = copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))
        if "task" not in document:
            continue
        document["model"]["fingerprint"] = f"fingerprint-of-{name}"
        if path.name == "bucc.json":
            document["scores"]["per_pair"]["zh-en"]["f1"] = bucc
        path.write_text(json.dumps(document), encoding="utf-8")
    return folder


def test_one_folder_rows_hold_the_committed_numbers_and_the_changes_subtract() -> None:
    table = ProfileTable((profile_row("base", [BASE]), profile_row("tuned", [TUNED])), reference="base")
    base, tuned = table.rows
    assert base.cells["bucc_zh_en"].mean == pytest.approx(100 * bucc_f1(BASE), rel=1e-12)
    assert tuned.cells["bucc_zh_en"].mean == pytest.approx(100 * bucc_f1(TUNED), rel=1e-12)
    assert base.cells["bucc_zh_en"].std is None and base.cells["bucc_zh_en"].count == 1
    expected_change = 100 * bucc_f1(TUNED) - 100 * bucc_f1(BASE)
    assert table.change(tuned, "bucc_zh_en") == pytest.approx(expected_change, rel=1e-12)
    assert table.change(base, "bucc_zh_en") == 0.0
    assert table.best("bucc_zh_en") == {"base"}  # 86.94 against 63.67
    assert base.cells["pawsx_en_xx"].mean is None  # the base folder has no en -> xx cell
    assert table.change(tuned, "pawsx_en_xx") is None
    assert base.folders[0].spec == "bundled:multilingual-e5-small"
    assert tuned.folders[0].protocol == base.folders[0].protocol == "resplit"


def test_seed_folders_give_mean_and_sample_std_and_a_partial_column_says_so(tmp_path: Path) -> None:
    f1s = [0.61, 0.655, 0.702]
    folders = [seed_folder(tmp_path, f"seed-{i}", f1, drop=("sts",) if i == 2 else ()) for i, f1 in enumerate(f1s)]
    row = profile_row("tuned", folders)
    bucc = row.cells["bucc_zh_en"]
    assert bucc.mean == pytest.approx(np.mean(np.array(f1s) * 100), rel=1e-12)
    assert bucc.std == pytest.approx(np.std(np.array(f1s) * 100, ddof=1), rel=1e-12)
    assert (bucc.count, bucc.of) == (3, 3)
    korsts = row.cells["korsts"]  # two of three folders have sts.json
    assert (korsts.count, korsts.of) == (2, 3) and korsts.std == 0.0
    # a "2 of 3" cell never competes for best: the base row is best on KorSTS though lower
    against_base = ProfileTable((row, profile_row("base", [BASE])))
    assert against_base.best("korsts") == {"base"} and against_base.best("bucc_zh_en") == {"base"}
    markdown = profiles_markdown(ProfileTable((row,)))
    assert f"{np.mean(np.array(f1s) * 100):.2f} ± {np.std(np.array(f1s) * 100, ddof=1):.2f}" in markdown
    assert "(2 of 3)" in markdown


def test_ties_are_all_best_and_a_column_nobody_has_has_no_best(tmp_path: Path) -> None:
    copy_of_tuned = tmp_path / "copy"
    shutil.copytree(TUNED, copy_of_tuned)  # another folder of the same results: a tie, in another row
    table = ProfileTable((profile_row("a", [TUNED]), profile_row("b", [copy_of_tuned]), profile_row("base", [BASE])))
    assert table.best("sib200_in") == {"a", "b"}
    assert ProfileTable((profile_row("alone", [TUNED]),)).best("sib200_in") == set()  # one row: no best
    cell = profile_cell([None, None])
    assert (cell.mean, cell.std, cell.count, cell.of) == (None, None, 0, 2)
    document = table.to_json()
    assert [c["key"] for c in document["columns"]] == [c.key for c in PROFILE]
    cells = {row["name"]: row["cells"]["sib200_in"] for row in document["rows"]}
    assert cells["a"]["best"] and cells["b"]["best"] and not cells["base"]["best"]
    assert cells["a"]["change"] is None  # no reference row


def test_one_model_twice_in_a_row_is_refused(tmp_path: Path) -> None:
    copy_of_tuned = tmp_path / "copy"
    shutil.copytree(TUNED, copy_of_tuned)
    for folders in ([TUNED, TUNED], [TUNED, copy_of_tuned]):
        with pytest.raises(InputError, match="the same model as") as caught:
            profile_row("tuned", folders)
        assert caught.value.path == str(folders[1])


def without_fingerprints(source: Path, target: Path, spec: dict[str, str] | None = None) -> Path:
    """A copy of ``source``'s result files whose model records have no fingerprint (older results)."""
    target.mkdir()
    for path in source.glob("*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        if "task" in document:
            document["model"]["fingerprint"] = None
            document["model"]["spec"] = (spec or {}).get(path.stem, document["model"]["spec"])
        (target / path.name).write_text(json.dumps(document), encoding="utf-8")
    return target


def test_results_without_a_fingerprint_are_told_apart_by_spec(tmp_path: Path) -> None:
    same = profile_row("same", [without_fingerprints(TUNED, tmp_path / "same")])
    assert same.folders[0].fingerprint is None and same.cells["bucc_zh_en"].count == 1
    mixed = without_fingerprints(TUNED, tmp_path / "mixed", {"bucc": "another-model"})
    with pytest.raises(InputError, match="two models: 'another-model' here"):
        profile_row("mixed", [mixed])


def test_a_folder_of_two_models_is_refused_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(TUNED, folder)
    shutil.copy(BASE / "bucc.json", folder / "bucc.json")
    with pytest.raises(InputError, match="two models") as caught:
        profile_row("mixed", [folder])
    assert caught.value.path == str(folder / "bucc.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [("nofolder", "NAME=FOLDER"), ("=a", "NAME=FOLDER"), ("name=", "NAME=FOLDER"), ("name=,", "NAME=FOLDER")],
)
def test_malformed_rows_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_row(text)


def test_parse_row_splits_seed_folders() -> None:
    assert parse_row(" multi = a, b ,c") == ("multi", [Path("a"), Path("b"), Path("c")])


def test_duplicate_names_an_unknown_reference_and_empty_folders_are_refused(tmp_path: Path) -> None:
    row = profile_row("a", [TUNED])
    with pytest.raises(InputError, match="distinct names"):
        ProfileTable((row, row))
    with pytest.raises(InputError, match="reference row 'zz'"):
        ProfileTable((row,), reference="zz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no result files"):
        profile_row("e", [tmp_path / "empty"])
    with pytest.raises(InputError, match="no such directory"):
        profile_row("m", [tmp_path / "missing"])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "sts.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not a paraxl result file"):
        profile_row("b", [tmp_path / "broken"])


def test_cli_prints_and_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "out"
    other = seed_folder(tmp_path, "seed-43", bucc_f1(TUNED))  # a second seed with the same BUCC F1
    result = runner.invoke(
        app,
        ["profiles", "--row", f"base={BASE}", "--row", f"tuned={TUNED},{other}", "--reference", "base", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "Change against base" in result.output
    document = json.loads((out / "profiles.json").read_text(encoding="utf-8"))
    tuned = document["rows"][1]
    assert tuned["name"] == "tuned" and len(tuned["folders"]) == 2
    assert tuned["cells"]["bucc_zh_en"]["std"] == 0.0  # two seeds of one F1
    change = tuned["cells"]["bucc_zh_en"]["change"]
    assert change == pytest.approx(100 * (bucc_f1(TUNED) - bucc_f1(BASE)), rel=1e-12)
    assert (out / "profiles.md").read_text(encoding="utf-8") in result.output


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["profiles", "--row", f"x={tmp_path / 'nowhere'}"])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output
    assert str(tmp_path / "nowhere") in result.output
