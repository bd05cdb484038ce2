"""``paraxl encode-corpus``: a corpus of any size -> embedding shards + manifest, resumable, local or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paraxl.cli.common import BackendOption, ModelOption, app, cli_errors, say
from paraxl.cli.engine_options import EngineOption, RayAddressOption, WorkersOption, shard_progress
from paraxl.loading.specs import DEFAULT_MODEL


@app.command("encode-corpus")
@cli_errors
def encode_corpus_command(
    inputs: Annotated[
        list[str], typer.Argument(help="input files, folders or glob patterns: .txt, .tsv, .jsonl, .parquet")
    ],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="folder of embedding shards and manifest.json (resumed if there)")
    ],
    model: ModelOption = DEFAULT_MODEL,
    backend: BackendOption = "torch",
    column: Annotated[str | None, typer.Option(help="TSV column / JSONL key / parquet column holding the text")] = None,
    input_format: Annotated[
        str | None, typer.Option("--format", help="txt, tsv, jsonl or parquet (default: by extension)")
    ] = None,
    prompt_name: Annotated[str | None, typer.Option(help="prompt to prefix (e5: query or passage)")] = None,
    shard_size: Annotated[int, typer.Option(min=1, help="rows per shard (memory per worker grows with it)")] = 10_000,
    dtype: Annotated[str, typer.Option(help="float32 or float16 embeddings")] = "float32",
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    engine: EngineOption = "local",
    workers: WorkersOption = 1,
    ray_address: RayAddressOption = None,
    cpus_per_worker: Annotated[
        int | None, typer.Option(min=1, help="torch threads (and Ray CPUs) per worker (default: cores / workers)")
    ] = None,
) -> None:
    """Embed a corpus shard by shard into OUTPUT_DIR; a killed run resumes from its finished shards.

    Each shard is shard-NNNNNN.npy ((rows, dim) float32/float16) and shard-NNNNNN.ids.npy (each row's
    position in the corpus); manifest.json records the model, inputs (sha256), row ranges and checksums.
    """
    from paraxl.corpus.encode import CorpusRequest, encode_corpus

    request = CorpusRequest(
        inputs=tuple(inputs),
        output_dir=output_dir,
        model=model,
        backend=backend,
        fmt=input_format,
        column=column,
        prompt_name=prompt_name,
        shard_size=shard_size,
        dtype=dtype,
        batch_size=batch_size,
        engine=engine,
        workers=workers,
        ray_address=ray_address,
        cpus_per_worker=cpus_per_worker,
    )
    with shard_progress() as show:
        summary = encode_corpus(request, progress=show)
    say(
        f"{summary.shards} shards in {output_dir} ({summary.skipped} from an earlier run, {summary.encoded} encoded: "
        f"{summary.rows_encoded} texts, {summary.rows_per_second:.1f} texts/s); manifest: {summary.manifest}"
    )
