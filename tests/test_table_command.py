"""``paraxl table`` (and benchmarks/gpu_check.py's self-contained tiny model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from paraxl.cli.main import app

from .scripts import load_benchmark_script
from .test_experiments import VALID_TABLE, write_table
from .tiny import build_tiny_encoder

runner = CliRunner()


def test_table_command_is_listed_with_run_tables_options() -> None:
    result = runner.invoke(app, ["table", "--help"])
    assert result.exit_code == 0
    for option in ("--only", "--seeds", "--keep-models", "--data-dir", "--runs-dir", "--results-dir"):
        assert option in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--only", "am,nosuch"], "--only names unknown variants: nosuch"),
        (["--only", "infonce", "--seeds", "43,7"], "--seeds 7: not among the seeds of the selected variants"),
        (["--seeds", "4 2"], "expected comma-separated integers"),
    ],
)
def test_table_command_checks_the_selection_like_the_script(tmp_path: Path, extra: list[str], message: str) -> None:
    path = write_table(tmp_path, VALID_TABLE)
    runs = tmp_path / "runs"
    args = [str(path), "--data-dir", str(tmp_path), "--runs-dir", str(runs), "--results-dir", str(tmp_path / "r")]
    result = runner.invoke(app, ["table", *args, *extra])
    assert result.exit_code == 2 and message in result.output and "error:" in result.output
    assert not runs.exists() and not (tmp_path / "r").exists()


def test_table_command_names_a_missing_table(tmp_path: Path) -> None:
    result = runner.invoke(app, ["table", str(tmp_path / "absent.yaml"), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no such experiment table" in result.output


def test_gpu_checks_tiny_model_is_the_tests_tiny_model() -> None:
    script = load_benchmark_script("gpu_check")
    own, tests = script.tiny_encoder(seed=5).state_dict(), build_tiny_encoder(seed=5).state_dict()
    assert own.keys() == tests.keys() and all(torch.equal(own[name], tests[name]) for name in own)
    assert script.cached_vs_full(script.loss, device="cpu") < 1e-9  # asserts loss and every gradient on the way
