"""``paraxl index build-sharded EMB_DIR -o INDEX``: a flat / IVF / IVF-PQ index from an embeddings folder.

A command of its own rather than ``index build --from-embeddings``: it takes an ``encode-corpus``
folder (no corpus to read, no model to load: the vectors are there) and options of its own
(``--engine``, ``--workers``, ``--no-texts``), where ``index build`` embeds texts. Registered on
``paraxl index`` by :mod:`paraxl.cli.search_commands` (this module does not import that one: sibling
modules form no cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from paraxl.cli.common import cli_errors, say
from paraxl.cli.engine_options import EngineOption, RayAddressOption, WorkersOption, shard_progress
from paraxl.io.locks import folder_lock
from paraxl.io.outputs import check_output

if TYPE_CHECKING:
    from paraxl.serving.index import IndexInfo


def memory_note(info: IndexInfo) -> str:
    """``, N bytes/vector`` where the index records it (ivfpq), else ``""``."""
    size = info.backend_params.get("bytes_per_vector")
    return f", {size} bytes/vector" if size is not None else ""


@cli_errors
def build_sharded_index(
    embeddings_dir: Annotated[Path, typer.Argument(help="an embeddings folder of `paraxl encode-corpus`")],
    output: Annotated[Path, typer.Option("--output", "-o", help="index folder (created or replaced)")],
    index_type: Annotated[str, typer.Option("--index-type", help="ivfpq, ivf or flat")] = "ivfpq",
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="check that this is the model of the embeddings")
    ] = None,
    nlist: Annotated[int | None, typer.Option(min=1, help="ivf/ivfpq: number of cells (default ~4·sqrt(n))")] = None,
    nprobe: Annotated[int | None, typer.Option(min=1, help="ivf/ivfpq: cells searched per query")] = None,
    pq_m: Annotated[
        int | None, typer.Option(min=1, help="ivfpq: bytes per code, must divide the dimension (default dim/8)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the training sample and k-means")] = 0,
    texts: Annotated[bool, typer.Option("--texts/--no-texts", help="keep the texts (re-read from the inputs)")] = True,
    engine: EngineOption = "local",
    workers: WorkersOption = 1,
    ray_address: RayAddressOption = None,
    cpus_per_worker: Annotated[
        int | None, typer.Option(min=1, help="FAISS threads (and Ray CPUs) per worker (default: cores / workers)")
    ] = None,
) -> None:
    """Index an embeddings folder shard by shard: train on a sample, populate shards in parallel, merge.

    The shards are populated on this machine (--workers processes) or on Ray (--engine ray; the folders
    must be on a file system every node sees), with the same index.faiss. A killed build resumes from its
    finished shards. The index records the embeddings' model, so `paraxl search INDEX` embeds queries
    with it.
    """
    from paraxl.corpus.index_build import ShardedBuildRequest, build_sharded

    check_output(output, "folder")
    named = {"nlist": nlist, "nprobe": nprobe, "pq_m": pq_m}
    request = ShardedBuildRequest(
        embeddings_dir=embeddings_dir,
        output=output,
        index_type=index_type,
        params={name: value for name, value in named.items() if value is not None},
        seed=seed,
        workers=workers,
        model=model,
        texts=texts,
        engine=engine,
        ray_address=ray_address,
        cpus_per_worker=cpus_per_worker,
    )
    with folder_lock(output, "index"), shard_progress() as show:
        summary = build_sharded(request, show)
    seconds = summary.seconds
    float_bytes = 4 * _dimension(output)
    say(
        f"indexed {summary.count} vectors from {summary.shards} shards ({summary.reused} reused) into {output} "
        f"({index_type}, {summary.bytes_per_vector} bytes/vector vs {float_bytes} as float32; "
        f"index.faiss {summary.file_bytes / 2**20:.1f} MiB) in {sum(seconds.values()):.1f} s "
        f"(train {seconds['train']:.1f} s, populate {seconds['populate']:.1f} s, merge {seconds['merge']:.1f} s, "
        f"write {seconds['write']:.1f} s)"
    )


def _dimension(folder: Path) -> int:
    from paraxl.serving.index_files import INFO_FILE, read_info

    dimension = read_info(folder / INFO_FILE)["dimension"]
    assert isinstance(dimension, int)
    return dimension
