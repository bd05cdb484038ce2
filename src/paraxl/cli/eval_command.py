"""``paraxl eval``: evaluate a model, and show what fine-tuning gained and lost against its base."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from paraxl.cli.common import app, cli_errors, console, say
from paraxl.errors import InputError
from paraxl.loading.specs import DEFAULT_MODEL

if TYPE_CHECKING:
    from paraxl.evaluation.profile import ProfileComparison


@app.command("eval")
@cli_errors
def evaluate(
    model: Annotated[str, typer.Argument(help="bundled:NAME, a model folder, or hub:ORG/NAME[@REV]")] = DEFAULT_MODEL,
    tasks: Annotated[
        str,
        typer.Option(
            help="comma-separated: pawsx, align, bucc, tatoeba, sts, sib200 (all = these six); profile = the "
            "tasks of the evaluation profile (pawsx, tatoeba, bucc, sts, sib200); "
            "sts17ext, sts22, mtop read files you add under DATA_DIR/sts17-crosslingual, sts22, mtop"
        ),
    ] = "all",
    protocol: Annotated[
        str, typer.Option(help="PAWS-X protocol: resplit (validation -> test) or official (dev_2k -> test_2k)")
    ] = "resplit",
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="benchmark data folder (default: $PARAXL_DATA_DIR)")
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="result folder (default: runs/eval/<model>-<protocol>)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of every sampled part (k-shot draws, sampled pairs)")] = 0,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    cache: Annotated[bool, typer.Option(help="reuse embeddings cached on disk per (model, text)")] = True,
    plots: Annotated[bool, typer.Option(help="draw PNG plots beside the results")] = True,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="auto (default): ONNX fp32 when the model exports and its embeddings match torch's to 1e-5 "
            "(a folder of yours is exported into paraxl's cache, never into the folder), else torch; "
            "or torch, onnx, onnx-int8 (int8 changes scores slightly)",
        ),
    ] = "auto",
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="compare with this model (before/after per profile column); default: for a folder paraxl "
            "trained, the model its training started from (model.name in the run's config.json)",
        ),
    ] = None,
    no_base: Annotated[bool, typer.Option("--no-base", help="no before/after comparison")] = False,
    base_output_dir: Annotated[
        Path | None,
        typer.Option(help="the base's result folder, its results reused when present (default: runs/eval/<base>-...)"),
    ] = None,
) -> None:
    """Evaluate a model: one result JSON per task, summary.md, profile.json and plots in the output folder.

    A fine-tuned model is compared with its base on the same tasks and settings: base, fine-tuned
    and delta per profile column, printed and written to profile.json and summary.md.
    """
    from paraxl.evaluation.session import RECORDED_BASE, EvalRequest, run_evaluation

    if no_base and base is not None:
        raise InputError("--base and --no-base contradict each other; give one")
    request = EvalRequest(
        model=model,
        tasks=tasks,
        protocol=protocol,
        data_dir=data_dir,
        output_dir=output_dir,
        seed=seed,
        batch_size=batch_size,
        use_cache=cache,
        plots=plots,
        backend=backend,
        base=None if no_base else (base or RECORDED_BASE),
        base_output_dir=base_output_dir,
    )
    outcome = run_evaluation(request, log=lambda message: say(message, stderr=True, style="dim"))
    table = Table("task", "main score", "seconds")
    for document in outcome.documents:
        table.add_row(document["task"]["name"], _score_text(document), f"{document['wall_seconds']:.1f}")
    console.print(table)
    if outcome.comparison is not None:
        console.print(comparison_table(outcome.comparison))
    say(f"results: {outcome.output_dir} (summary.md, profile.json, one JSON per task, plots/)")


def _score_text(document: dict[str, object]) -> str:
    from paraxl.evaluation.report import main_score_text

    return main_score_text(document)


def comparison_table(comparison: ProfileComparison) -> Table:
    """Base, model and delta per profile column; gains green, losses red, "-" for a task not run."""
    from paraxl.evaluation.report import delta_text

    base = comparison.base.spec if comparison.base else "base"
    table = Table("profile column", "unit", base, comparison.model.spec, "delta", title="before / after")
    for row in comparison.rows:
        style = "" if row.delta is None or row.delta == 0 else ("green" if row.delta > 0 else "red")
        values = ("-" if value is None else f"{value:.2f}" for value in (row.base, row.model))
        table.add_row(row.column.title, row.column.unit.label, *values, Text(delta_text(row.delta), style=style))
    return table
