"""``paraxl serve`` freezes what it loaded before serving, so full GC passes do not walk the model."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from paraxl.cli.main import app as cli_app


def test_serve_freezes_the_loaded_objects_before_uvicorn_runs(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen_at_run: list[int] = []

    def run(app: Any, **settings: Any) -> None:
        frozen_at_run.append(gc.get_freeze_count())
        gc.unfreeze()  # the test process keeps collecting its own garbage

    monkeypatch.setattr(uvicorn, "run", run)
    gc.unfreeze()
    before = gc.get_freeze_count()
    try:
        result = CliRunner().invoke(cli_app, ["serve", str(tiny_model_dir), "--threshold", "0.8"])
    finally:
        gc.unfreeze()
    assert result.exit_code == 0, result.output
    # the model's modules, tokenizer and the app are now in the permanent generation
    assert before == 0 and frozen_at_run and frozen_at_run[0] > 10_000


def test_freezing_leaves_later_garbage_collectable() -> None:
    from paraxl.serving.server import freeze_loaded_objects

    try:
        freeze_loaded_objects()
        assert gc.get_freeze_count() > 0
        cycle: list[Any] = []
        cycle.append(cycle)  # created after the freeze: still the collector's
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
