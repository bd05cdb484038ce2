"""Reproduce one experiment table: train its variants, evaluate them, write JSON + markdown.

    .venv/bin/python benchmarks/run_table.py experiments/pawsx-main.yaml --data-dir ../shared/data

The same as ``paraxl table experiments/pawsx-main.yaml`` (both call
:func:`paraxl.experiments.command.run_table_request`). Runs go to
``runs/experiments/<table>/<variant>/seed-<S>/`` (resumable: a finished run is read back, not
rerun); the table goes to ``benchmarks/results/experiments/<table>.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from paraxl.errors import ParaxlError
from paraxl.experiments.command import DEFAULT_RESULTS_DIR, DEFAULT_RUNS_DIR, TableRequest, run_table_request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=Path, help="experiment table (YAML), see experiments/")
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark data (default: $PARAXL_DATA_DIR)")
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR)
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument("--only", default=None, help="comma-separated variant names to run (default: all)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds to run now (default: the table's)")
    parser.add_argument("--keep-models", action="store_true", help="keep each run's trained model folder")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    request = TableRequest(
        args.table, args.data_dir, args.runs_dir, args.results_dir, args.only, args.seeds, args.keep_models
    )
    try:
        json_path, md_path = run_table_request(request, log=lambda m: print(m, flush=True))
    except ParaxlError as exc:  # bad table, data folder, model name, ...: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path} in {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
