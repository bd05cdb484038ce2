"""Thresholds are finite and in the score's range (issue 27, weak: ``pi --threshold nan|inf|5``, ``mine``).

A cosine threshold outside [-1, 1] can never (or always) be met, and NaN compares false with every
score: each ran silently before, deciding "not paraphrase" for everything. ``pi``, ``serve`` and
``mine`` share one check (:func:`paraxl.decision.threshold.check_threshold`).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.decision.decider import FixedThreshold
from paraxl.decision.threshold import check_threshold
from paraxl.errors import InputError

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, out: str, err: str, expected: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err


@pytest.fixture()
def model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "5", "1.5", "-1.01"])
def test_pi_refuses_a_threshold_outside_the_cosine_range(model: Path, value: str) -> None:
    code, out, err = run("pi", str(model), "the cat", "le chat", "--threshold", value)
    assert_one_line_error(code, out, err, "--threshold is a cosine similarity in [-1, 1]")


@pytest.mark.parametrize("value", ["-1", "1"])
def test_pi_takes_the_ends_of_the_cosine_range(model: Path, value: str) -> None:
    code, out, err = run("pi", str(model), "the cat", "le chat", "--threshold", value)
    assert code == 0, err
    assert f"(threshold {float(value):.4f})" in out


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_serve_refuses_a_non_finite_threshold(model: Path, value: str) -> None:
    code, out, err = run("serve", str(model), "--threshold", value)
    assert_one_line_error(code, out, err, "--threshold is a cosine similarity in [-1, 1]")


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1"])
def test_mine_refuses_a_margin_threshold_that_is_not_finite_and_positive(
    model: Path, tmp_path: Path, value: str
) -> None:
    source, target = tmp_path / "a.txt", tmp_path / "b.txt"
    source.write_text("the cat\nthe dog\n", encoding="utf-8")
    target.write_text("le chat\nder hund\n", encoding="utf-8")
    out_path = tmp_path / "pairs.tsv"
    code, out, err = run("mine", str(source), str(target), "-o", str(out_path), "-m", str(model), "--threshold", value)
    assert_one_line_error(code, out, err, "--threshold is a ratio margin in (0, inf)")
    assert not out_path.exists()


def test_check_threshold_and_fixed_threshold_refuse_nan() -> None:
    assert check_threshold(0.5, "--threshold", -1.0, 1.0, "a cosine similarity") == 0.5
    for bad in (math.nan, math.inf, 1.0000001):
        with pytest.raises(InputError, match="cosine similarity in"):
            check_threshold(bad, "--threshold", -1.0, 1.0, "a cosine similarity")
    with pytest.raises(InputError, match=r"in \(0, inf\), got 0"):
        check_threshold(0.0, "--threshold", 0.0, math.inf, "a ratio margin", low_open=True)
    with pytest.raises(InputError, match="got nan"):
        FixedThreshold(math.nan)
