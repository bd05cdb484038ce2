"""Reproduce one experiment table: train its variants, evaluate them, write JSON + markdown.

    .venv/bin/python benchmarks/run_table.py experiments/pawsx-main.yaml --data-dir ../shared/data

Runs go to ``runs/experiments/<table>/<variant>/seed-<S>/`` (resumable: a finished run is
read back, not rerun); the table goes to ``benchmarks/results/experiments/<table>.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from paraxl.errors import InputError, ParaxlError
from paraxl.evaluation.session import resolve_data_dir
from paraxl.experiments.report import read_reported, write_report
from paraxl.experiments.runner import run_table
from paraxl.experiments.tables import load_table


def _parse_seeds(text: str, table: Path) -> set[int]:
    """``--seeds 42,43`` -> {42, 43}; anything else is a one-line error, not a ValueError."""
    try:
        return {int(seed) for seed in text.split(",")}
    except ValueError:
        raise InputError(f"--seeds {text!r}: expected comma-separated integers, e.g. 42,43", table) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=Path, help="experiment table (YAML), see experiments/")
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark data (default: $PARAXL_DATA_DIR)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/experiments"))
    parser.add_argument("--results-dir", type=Path, default=Path("benchmarks/results/experiments"))
    parser.add_argument("--only", default=None, help="comma-separated variant names to run (default: all)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds to run now (default: the table's)")
    parser.add_argument("--keep-models", action="store_true", help="keep each run's trained model folder")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        table = load_table(args.table)
        data_dir = resolve_data_dir(args.data_dir)
        only = set(args.only.split(",")) if args.only else None
        unknown = (only or set()) - {variant.name for variant in table.spec.variants}
        if unknown:
            raise InputError(f"--only names unknown variants: {', '.join(sorted(unknown))}", args.table)
        seeds = _parse_seeds(args.seeds, args.table) if args.seeds else None
        # a seed the table does not list would select nothing, silently: the table is the
        # reproducible record of what runs, so the seed goes into it, not onto a command line
        listed = {seed for v in table.spec.variants if only is None or v.name in only for seed in table.seeds(v)}
        if seeds is not None and seeds - listed:
            missing = ", ".join(str(seed) for seed in sorted(seeds - listed))
            raise InputError(
                f"--seeds {missing}: not among the seeds of the selected variants ({sorted(listed)}); "
                "add it to the table's `seeds`",
                args.table,
            )
        records = run_table(
            table,
            args.runs_dir,
            data_dir,
            only=only,
            seeds=seeds,
            keep_models=args.keep_models,
            reported=read_reported(args.results_dir / f"{table.spec.name}.json"),
            log=lambda m: print(m, flush=True),
        )
    except ParaxlError as exc:  # bad table, data folder, model name, ...: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    json_path, md_path = write_report(table.spec.name, table.spec.title, records, args.results_dir)
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path} in {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
