"""``paraxl table``: reproduce one experiment table (train its variants, evaluate them, write the report)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from paraxl.cli.common import app, cli_errors
from paraxl.experiments.command import DEFAULT_RESULTS_DIR, DEFAULT_RUNS_DIR


@app.command("table")
@cli_errors
def table_command(
    table: Annotated[Path, typer.Argument(help="experiment table (YAML), see experiments/")],
    data_dir: Annotated[Path | None, typer.Option(help="benchmark data (default: $PARAXL_DATA_DIR)")] = None,
    runs_dir: Annotated[Path, typer.Option(help="where each run trains and evaluates")] = DEFAULT_RUNS_DIR,
    results_dir: Annotated[Path, typer.Option(help="where <table>.json and .md go")] = DEFAULT_RESULTS_DIR,
    only: Annotated[str | None, typer.Option(help="comma-separated variant names to run (default: all)")] = None,
    seeds: Annotated[str | None, typer.Option(help="comma-separated seeds to run now (default: the table's)")] = None,
    keep_models: Annotated[bool, typer.Option("--keep-models", help="keep each run's trained model folder")] = False,
) -> None:
    """Train a table's variants at its seeds, evaluate them and write mean ± std per variant.

    Resumable: a finished run is read back, not rerun. The same as benchmarks/run_table.py.
    """
    from paraxl.experiments.command import TableRequest, run_table_request
    from paraxl.io.outputs import check_output

    check_output(runs_dir, "folder")
    check_output(results_dir, "folder")
    began = time.perf_counter()
    request = TableRequest(table, data_dir, runs_dir, results_dir, only, seeds, keep_models)
    json_path, md_path = run_table_request(request, log=lambda message: print(message, flush=True))
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path} in {time.perf_counter() - began:.0f} s")
