"""``paraxl mine-corpus``: sharded bitext mining between two embedding folders of ``paraxl encode-corpus``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from paraxl.cli.common import app, cli_errors, errors, say
from paraxl.cli.engine_options import EngineOption, RayAddressOption, WorkersOption, shard_progress


@app.command("mine-corpus")
@cli_errors
def mine_corpus_command(
    source_dir: Annotated[Path, typer.Argument(help="source embeddings folder (paraxl encode-corpus -o)")],
    target_dir: Annotated[Path, typer.Argument(help="target embeddings folder, same model and prompt")],
    output: Annotated[Path, typer.Option("--output", "-o", help="scored pairs (.tsv); a .json record beside it")],
    k: Annotated[int, typer.Option(min=1, help="nearest neighbours per side for the margin")] = 4,
    threshold: Annotated[
        float | None, typer.Option(help="keep pairs with ratio margin >= this (default: all 1-to-1 candidates)")
    ] = None,
    engine: EngineOption = "local",
    workers: WorkersOption = 1,
    ray_address: RayAddressOption = None,
    cpus_per_worker: Annotated[
        int | None, typer.Option(min=1, help="BLAS threads (and Ray CPUs) per worker (default: cores / workers)")
    ] = None,
    texts: Annotated[
        bool, typer.Option("--texts/--no-texts", help="add the pairs' texts (re-read from the inputs)")
    ] = True,
) -> None:
    """Mine 1-to-1 translation pairs (ratio margin, exact k nearest neighbours both ways) shard by shard.

    Gives the pairs and margins of paraxl mine with the exact search, for corpora of any size; a killed
    run resumes from OUTPUT.work/. The TSV holds source_id, target_id (the rows' corpus ids), margin, and
    the source and target texts (re-read from the inputs the manifests record; --no-texts: without them).
    """
    from paraxl.corpus.mine import MineRequest, mine_corpus
    from paraxl.decision.threshold import check_threshold
    from paraxl.io.outputs import check_output

    check_output(output)
    if threshold is not None:
        check_threshold(threshold, "--threshold", 0.0, math.inf, "a ratio margin", low_open=True)
    request = MineRequest(
        source_dir, target_dir, output, k, threshold, engine, workers, ray_address, cpus_per_worker, texts
    )
    with shard_progress() as show:
        summary = mine_corpus(request, progress=show)
    if summary.warning is not None:
        errors.print(f"warning: {summary.warning}")
    say(
        f"wrote {summary.pairs} pairs ({summary.candidates} 1-to-1 candidates) to {output} in "
        f"{summary.seconds:.1f} s; record: {summary.record}"
    )
