"""``paraxl label``: score a pairs file with a cross-encoder (a ``distill`` teacher file, resumable), and
``paraxl silver-pairs``: the pairs of the PAWS-X train split the trainer draws, for it to score."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from paraxl.cli.common import BackendOption, app, cli_errors, errors, say
from paraxl.errors import InputError


@app.command("label")
@cli_errors
def label_command(
    cross_encoder: Annotated[str, typer.Argument(help="the cross-encoder: a model folder or hub:ORG/NAME[@REV]")],
    pairs_file: Annotated[
        Path, typer.Argument(help="TSV: sentence1 and sentence2 columns (others are kept), or two fields a row")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="TSV: sentence1, sentence2, score, then the input's other columns")
    ],
    backend: BackendOption = "torch",
    batch_size: Annotated[int, typer.Option(min=1, help="pairs per forward pass")] = 32,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="pairs scored between two saves (a rerun resumes after the last save)")
    ] = 2048,
    max_length: Annotated[
        int | None, typer.Option(min=2, help="tokens per pair (default: the model's own; torch only)")
    ] = None,
) -> None:
    """Score every pair of a file with a cross-encoder (sigmoid probability): a teacher file for `distill.scores`.

    Resumable: a killed run continues after its last saved chunk when rerun with the same input,
    model, backend and max length (OUTPUT.partial and OUTPUT.partial.json); anything else is refused.
    """
    from paraxl.io.outputs import check_output
    from paraxl.loading.model import resolve_model
    from paraxl.training.pair_labels import cross_encoder_labeller, label_pairs

    check_output(output)
    labeller = cross_encoder_labeller(resolve_model(cross_encoder, backend), batch_size, max_length)
    began = time.perf_counter()

    def progress(done: int, total: int) -> None:
        say(f"{done}/{total} pairs ({time.perf_counter() - began:.0f} s)", stderr=True)

    summary = label_pairs(pairs_file, output, labeller, chunk_size, progress)
    resumed = f" ({summary.resumed} labelled by an earlier run)" if summary.resumed else ""
    say(f"wrote the scores of {summary.rows} pairs{resumed} to {output} in {time.perf_counter() - began:.0f} s")


@app.command("silver-pairs")
@cli_errors
def silver_pairs_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="TSV: sentence1, sentence2, languages, gold")],
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="benchmark data folder (default: $PARAXL_DATA_DIR)")
    ] = None,
    pairs: Annotated[
        str,
        typer.Option(
            "--pairs",
            help="translation (default): what data.translation_positives draws, a unit's texts with another "
            "language's paraphrases, translations and label-0 partners; in-unit: the pairs inside a unit; all",
        ),
    ] = "translation",
    languages: Annotated[str | None, typer.Option(help="comma-separated PAWS-X languages (default: all 7)")] = None,
) -> None:
    """The pairs the trainer draws from the PAWS-X resplit train split, each once, for `paraxl label` to score.

    `distill` reaches only drawn pairs: a file of translation pairs needs data.translation_positives > 0.
    """
    from paraxl.data.readers import PAWSX_LANGUAGES, parse_languages
    from paraxl.evaluation.session import resolve_data_dir
    from paraxl.io.outputs import check_output
    from paraxl.training.data_config import PawsxData
    from paraxl.training.data_loading import load_training_data
    from paraxl.training.teacher_scores import PAIR_SCOPES, drawn_pairs, write_pairs

    scope = next((name for name in PAIR_SCOPES if name == pairs), None)
    if scope is None:
        raise InputError(f"--pairs {pairs!r}: use one of {', '.join(PAIR_SCOPES)}")
    chosen = parse_languages(languages) if languages is not None else PAWSX_LANGUAGES
    check_output(output)
    with errors.status("reading the PAWS-X resplit train split"):
        data = load_training_data(PawsxData(languages=list(chosen)), resolve_data_dir(data_dir))
    found = drawn_pairs(data.units, scope)
    write_pairs(output, found)
    say(f"wrote {len(found)} {pairs} pairs of {len(data.units)} units ({', '.join(chosen)}) to {output}")
