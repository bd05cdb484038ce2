"""Reproduce one experiment table: check the selection, run it, write the report.

The one implementation behind ``paraxl table`` and ``benchmarks/run_table.py``. Runs go to
``runs_dir/<table>/<variant>/seed-<S>/`` (resumable: a finished run is read back, not rerun);
the table goes to ``results_dir/<table>.{json,md}``. Every check (table file, data folder,
``only`` and ``seeds``) runs before anything trains, so a typo costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paraxl.errors import InputError
from paraxl.evaluation.session import resolve_data_dir
from paraxl.experiments.report import read_reported, write_report
from paraxl.experiments.runner import run_table
from paraxl.experiments.tables import Table, load_table

DEFAULT_RUNS_DIR = Path("runs/experiments")
DEFAULT_RESULTS_DIR = Path("benchmarks/results/experiments")


@dataclass(frozen=True)
class TableRequest:
    """What to run: ``only`` and ``seeds`` as given on a command line (comma-separated), None for all."""

    table: Path
    data_dir: Path | None = None  # None: $PARAXL_DATA_DIR
    runs_dir: Path = DEFAULT_RUNS_DIR
    results_dir: Path = DEFAULT_RESULTS_DIR
    only: str | None = None
    seeds: str | None = None
    keep_models: bool = False


def parse_seeds(text: str, table: Path) -> set[int]:
    """``--seeds 42,43`` -> {42, 43}; anything else is a one-line error, not a ValueError."""
    try:
        return {int(seed) for seed in text.split(",")}
    except ValueError:
        raise InputError(f"--seeds {text!r}: expected comma-separated integers, e.g. 42,43", table) from None


def _selection(request: TableRequest, table: Table) -> tuple[set[str] | None, set[int] | None]:
    """The variants and seeds to run now, checked against the table."""
    only = set(request.only.split(",")) if request.only else None
    unknown = (only or set()) - {variant.name for variant in table.spec.variants}
    if unknown:
        raise InputError(f"--only names unknown variants: {', '.join(sorted(unknown))}", request.table)
    seeds = parse_seeds(request.seeds, request.table) if request.seeds else None
    # a seed the table does not list would select nothing, silently: the table is the
    # reproducible record of what runs, so the seed goes into it, not onto a command line
    listed = {seed for v in table.spec.variants if only is None or v.name in only for seed in table.seeds(v)}
    if seeds is not None and seeds - listed:
        missing = ", ".join(str(seed) for seed in sorted(seeds - listed))
        raise InputError(
            f"--seeds {missing}: not among the seeds of the selected variants ({sorted(listed)}); "
            "add it to the table's `seeds`",
            request.table,
        )
    return only, seeds


def run_table_request(request: TableRequest, log: Callable[[str], None] = print) -> tuple[Path, Path]:
    """Run the selected runs of ``request.table`` and write its report; returns ``(json, markdown)`` paths.

    Raises :class:`~paraxl.errors.ParaxlError` (bad table, data folder, selection, model, earlier
    report) before the report is touched.
    """
    table = load_table(request.table)
    data_dir = resolve_data_dir(request.data_dir)
    only, seeds = _selection(request, table)
    records = run_table(
        table,
        request.runs_dir,
        data_dir,
        only=only,
        seeds=seeds,
        keep_models=request.keep_models,
        reported=read_reported(request.results_dir / f"{table.spec.name}.json"),
        log=log,
    )
    paired = [(pair.variant, pair.against) for pair in table.spec.paired]
    return write_report(table.spec.name, table.spec.title, records, request.results_dir, paired)
