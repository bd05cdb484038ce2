"""``paraxl soup``: average the weights of several fine-tuned runs into one model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paraxl.cli.common import app, cli_errors, console, say
from paraxl.errors import InputError


@app.command("soup")
@cli_errors
def soup_command(
    models: Annotated[list[Path], typer.Argument(help="model folders fine-tuned from the same start (2 or more)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="the new model folder (must not exist)")],
    weights: Annotated[
        str | None, typer.Option(help="comma-separated weight per model, e.g. 0.5,0.25,0.25 (default: uniform)")
    ] = None,
) -> None:
    """Average the weights of runs of one model (a "model soup") into a new model folder."""
    from paraxl.loading.soup import average_models

    shares = _parse_weights(weights) if weights is not None else None
    with console.status(f"averaging {len(models)} models"):
        average_models(models, output, shares)
    say(f"wrote {output} (sources and weights in {output / 'soup.json'})")


def _parse_weights(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"--weights: expected comma-separated numbers, got {text!r}") from None
