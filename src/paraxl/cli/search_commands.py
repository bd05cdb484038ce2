"""``paraxl index build|add|rebuild`` and ``paraxl search``: semantic search over an embedded corpus.

The index records the model (spec + fingerprints), the inference backend and the prompt it was built
with; ``add`` and ``search`` default to all three, so corpus and queries are embedded alike. For e5
models the default prompt (``query``) on both sides is what symmetric, cross-lingual retrieval wants.
(``--backend`` is the *inference* backend here as everywhere; the index structure is ``--index-type``.)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from paraxl.cli.common import (
    BackendOption,
    app,
    cli_errors,
    console,
    load_resolved,
    open_model,
    print_labelled,
    say,
    shown,
)
from paraxl.errors import InputError, ModelSpecError
from paraxl.io.locks import folder_lock
from paraxl.io.outputs import check_output
from paraxl.loading.specs import DEFAULT_MODEL

if TYPE_CHECKING:
    from paraxl.loading.model import LoadedModel
    from paraxl.serving.index import IndexInfo, SearchHit, VectorIndex

index_app = typer.Typer(help="Build and extend vector indexes for `paraxl search`.", no_args_is_help=True)
app.add_typer(index_app, name="index")

FormatOption = Annotated[str | None, typer.Option("--format", help="txt, tsv or jsonl (default: by extension)")]
ColumnOption = Annotated[str | None, typer.Option(help="TSV column / JSONL key holding the text (default: text)")]
IdColumnOption = Annotated[
    str | None, typer.Option(help="TSV column / JSONL key holding the id (default: the line number)")
]
IdPrefixOption = Annotated[str, typer.Option(help="prefix for line-number ids (keeps a second file's ids apart)")]
BatchOption = Annotated[int, typer.Option(min=1, help="texts per encoder batch")]
NprobeOption = Annotated[int | None, typer.Option(min=1, help="ivf: cells searched per query (recall vs speed)")]
EfSearchOption = Annotated[int | None, typer.Option(min=1, help="hnsw: candidate list size (recall vs speed)")]
PqMOption = Annotated[
    int | None, typer.Option(min=1, help="ivfpq: bytes per code, must divide the dim (default dim/8)")
]
AllowHubOption = Annotated[
    bool,
    typer.Option("--allow-hub-model", help="fetch the Hugging Face Hub model the index names (off: never fetched)"),
]


@index_app.command("build")
@cli_errors
def build_index(
    corpus: Annotated[Path, typer.Argument(help="texts: .txt (one per line), .tsv (header), .jsonl")],
    output: Annotated[Path, typer.Option("--output", "-o", help="index folder (created or replaced)")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="bundled:NAME, a model folder, or hub:ORG/NAME[@REV]")
    ] = DEFAULT_MODEL,
    backend: BackendOption = "torch",
    index_type: Annotated[
        str, typer.Option("--index-type", help="auto, exact, flat, ivf, ivfpq or hnsw (auto: by size)")
    ] = "auto",
    input_format: FormatOption = None,
    column: ColumnOption = None,
    id_column: IdColumnOption = None,
    id_prefix: IdPrefixOption = "",
    prompt_name: Annotated[
        str | None, typer.Option(help="prompt for the corpus and, later, the queries (default: the model's)")
    ] = None,
    batch_size: BatchOption = 32,
    nlist: Annotated[int | None, typer.Option(min=1, help="ivf: number of cells (default ~4·sqrt(n))")] = None,
    nprobe: NprobeOption = None,
    hnsw_m: Annotated[int | None, typer.Option("--hnsw-m", min=2, help="hnsw: links per node (default 32)")] = None,
    ef_construction: Annotated[int | None, typer.Option(min=1, help="hnsw: build-time candidate list")] = None,
    ef_search: EfSearchOption = None,
    seed: Annotated[int, typer.Option(help="seed of ivf's training sample and k-means")] = 0,
    pq_m: PqMOption = None,
) -> None:
    """Embed a corpus and save a vector index of it (ids and texts kept)."""
    from paraxl.serving.corpus import read_corpus
    from paraxl.serving.index import INDEX_TYPE_CHOICES as INDEX_BACKENDS
    from paraxl.serving.index import VectorIndex
    from paraxl.serving.index_files import check_target

    if index_type not in INDEX_BACKENDS:
        raise InputError(f"unknown --index-type {index_type!r}; use one of {', '.join(INDEX_BACKENDS)}")
    check_output(output, "folder")
    check_target(output)
    with folder_lock(output, "index"):  # one writer per index folder (see paraxl.io.locks)
        check_target(output)  # again, now that no other writer can change it
        ids, texts = read_corpus(corpus, input_format, column, id_column, id_prefix)
        params = _build_params(nlist, nprobe, hnsw_m, ef_construction, ef_search, pq_m)
        loaded = open_model(model, backend)
        encoder = loaded.encoder
        prompt = prompt_name if prompt_name is not None else encoder.settings.default_prompt_name
        encoder.prompt_prefix(prompt)  # an unknown prompt fails here, before the corpus is embedded
        start = time.perf_counter()
        vectors = encoder.encode(texts, batch_size=batch_size, prompt_name=prompt, show_progress=True)
        encoded = time.perf_counter()
        index = VectorIndex.build(
            vectors,
            ids,
            texts,
            index_type,
            model=_recorded_spec(model),
            model_fingerprint=encoder.fingerprint,
            prompt_name=prompt,
            seed=seed,
            weights_fingerprint=loaded.weights_fingerprint,
            inference_backend=backend,
            **params,
        )
        built = time.perf_counter()
        index.save(output)
    say(
        f"indexed {len(index)} texts ({index.info.backend} index, {index.dimension}-d{memory_note(index.info)}) "
        f"into {output} in "
        f"{time.perf_counter() - start:.1f} s (embedding {encoded - start:.1f} s, index {built - encoded:.1f} s)"
    )


@index_app.command("add")
@cli_errors
def add_to_index(
    index_dir: Annotated[Path, typer.Argument(help="an index folder from `paraxl index build`")],
    corpus: Annotated[Path, typer.Argument(help="more texts: .txt, .tsv, .jsonl")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="default: the model recorded in the index")] = None,
    backend: Annotated[
        str | None, typer.Option(help="inference backend (default: the one recorded in the index)")
    ] = None,
    input_format: FormatOption = None,
    column: ColumnOption = None,
    id_column: IdColumnOption = None,
    id_prefix: IdPrefixOption = "",
    batch_size: BatchOption = 32,
    allow_hub_model: AllowHubOption = False,
) -> None:
    """Embed more texts with the index's model and append them (ids must be new)."""
    from paraxl.serving.corpus import read_corpus
    from paraxl.serving.index import VectorIndex
    from paraxl.serving.index_files import check_folder

    start = time.perf_counter()
    check_folder(index_dir)
    # load, append and save under the index's lock: a concurrent add's rows are never overwritten
    with folder_lock(index_dir, "index"):
        index = VectorIndex.load(index_dir)
        ids, texts = read_corpus(corpus, input_format, column, id_column, id_prefix)
        index.check_new_ids(ids)
        # adding vectors of another model would silently spoil every later search: no override here
        encoder = _query_model(index, model, backend, allow_mismatch=False, allow_hub=allow_hub_model).encoder
        prompt = index.info.prompt_name
        vectors = encoder.encode(texts, batch_size=batch_size, prompt_name=prompt, show_progress=True)
        index.add(vectors, ids, texts)
        index.save(index_dir)
    if index.info.backend in ("ivf", "ivfpq"):
        print_labelled(
            "note",
            "IVF cells were trained on the first corpus and are not retrained on add; "
            f"after large additions build it again (ivf: `paraxl index rebuild {index_dir} --index-type ivf`)",
        )
    say(
        f"added {len(ids)} texts to {index_dir}: {len(index)} in all ({index.info.backend} index) "
        f"in {time.perf_counter() - start:.1f} s"
    )


@index_app.command("rebuild")
@cli_errors
def rebuild_index(
    index_dir: Annotated[Path, typer.Argument(help="an index folder from `paraxl index build`")],
    index_type: Annotated[str, typer.Option("--index-type", help="auto, exact, flat, ivf, ivfpq or hnsw")] = "auto",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="new folder (default: in place)")] = None,
    nlist: Annotated[int | None, typer.Option(min=1, help="ivf: number of cells (default ~4·sqrt(n))")] = None,
    nprobe: NprobeOption = None,
    hnsw_m: Annotated[int | None, typer.Option("--hnsw-m", min=2, help="hnsw: links per node (default 32)")] = None,
    ef_construction: Annotated[int | None, typer.Option(min=1, help="hnsw: build-time candidate list")] = None,
    ef_search: EfSearchOption = None,
    seed: Annotated[int, typer.Option(help="seed of ivf's training sample and k-means")] = 0,
    pq_m: PqMOption = None,
) -> None:
    """Rebuild an index as another type, or retrain IVF cells after many additions (no re-embedding)."""
    from paraxl.serving.index import VectorIndex
    from paraxl.serving.index_files import check_folder, check_target

    target = output if output is not None else index_dir
    check_output(target, "folder")
    check_target(target)
    check_folder(index_dir)
    start = time.perf_counter()
    with folder_lock(target, "index"):  # in place: load and save under one lock, as for add
        check_target(target)
        index = VectorIndex.load(index_dir).rebuild(
            index_type, seed=seed, **_build_params(nlist, nprobe, hnsw_m, ef_construction, ef_search, pq_m)
        )
        index.save(target)
    say(f"rebuilt {len(index)} items ({index.info.backend} index) in {target} ({time.perf_counter() - start:.1f} s)")


def _build_params(*values: int | None) -> dict[str, object]:
    """The index parameters the user set (nlist, nprobe, M, ef_construction, ef_search, pq_m; None: default)."""
    named = dict(zip(("nlist", "nprobe", "M", "ef_construction", "ef_search", "pq_m"), values, strict=True))
    return {name: value for name, value in named.items() if value is not None}


@app.command("search")
@cli_errors
def search(
    index_dir: Annotated[Path, typer.Argument(help="an index folder from `paraxl index build`")],
    query: Annotated[str | None, typer.Argument(help="the query text (or --queries FILE)")] = None,
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="hits per query")] = 10,
    queries: Annotated[Path | None, typer.Option(help="a .txt file of queries, one per line")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write hits to a .tsv (or .jsonl) file")] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="print one JSON object per hit")] = False,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="query model (default: the one recorded in the index)")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="inference backend (default: the one recorded in the index)")
    ] = None,
    prompt_name: Annotated[
        str | None, typer.Option(help="query prompt (default: the one the corpus was embedded with)")
    ] = None,
    allow_model_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-model-mismatch", help="search even if the query model is not the index's (scores are suspect)"
        ),
    ] = False,
    allow_hub_model: AllowHubOption = False,
    nprobe: NprobeOption = None,
    ef_search: EfSearchOption = None,
    batch_size: BatchOption = 32,
    rerank: Annotated[
        str | None,
        typer.Option(help="a cross-encoder folder: re-score the hits on (query, text) and reorder them"),
    ] = None,
    rerank_top_k: Annotated[
        int | None, typer.Option(min=1, help="with --rerank: bi-encoder hits to re-score (default -k; at least -k)")
    ] = None,
) -> None:
    """Find the indexed texts closest in meaning to a query (cosine similarity), in any language.

    With --rerank CE the cross-encoder re-scores the first --rerank-top-k hits of each query and the
    best -k come out in its order, with both scores (cross_score, and the cosine as score) and bi_rank.
    """
    from paraxl.cli.search_rerank import RERANK_COLUMNS, open_reranker, rerank_depth, rerank_results, resolve_reranker
    from paraxl.io.text_input import check_unicode, read_texts
    from paraxl.serving.index import VectorIndex

    if (query is None) == (queries is None):
        raise InputError("give either a query or --queries FILE")
    if query is not None and not query.strip():
        raise InputError("empty query")
    if output is not None and output.suffix.lower() not in (".tsv", ".jsonl"):
        raise InputError("output must be a .tsv or .jsonl file", output)
    if output is not None:
        check_output(output)
    if rerank is None and rerank_top_k is not None:
        raise InputError("--rerank-top-k goes with --rerank CROSS_ENCODER")
    depth = rerank_depth(k, rerank_top_k) if rerank is not None else k
    cross = resolve_reranker(rerank) if rerank is not None else None  # a sentence embedder: refused before any load
    if queries is not None:
        texts = read_texts(queries, "txt")
    else:
        assert query is not None
        texts = [check_unicode(query, "the query")]
    index = VectorIndex.load(index_dir)
    search_params = {name: value for name, value in (("nprobe", nprobe), ("ef_search", ef_search)) if value}
    if search_params:
        index.set_search_params(**search_params)
    encoder = _query_model(index, model, backend, allow_model_mismatch, allow_hub_model).encoder
    prompt = prompt_name if prompt_name is not None else index.info.prompt_name
    reranker = open_reranker(cross, batch_size) if cross is not None else None
    start = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=batch_size, prompt_name=prompt)
    results = index.search(vectors, depth)
    if reranker is not None:
        results = rerank_results(texts, results, reranker, k)
    seconds = time.perf_counter() - start
    rows = [(text, hit) for text, hits in zip(texts, results, strict=True) for hit in hits]
    columns = (*HIT_COLUMNS, *RERANK_COLUMNS) if reranker is not None else HIT_COLUMNS
    if output is not None:
        _write_hits(output, rows, columns)
        say(f"wrote {len(rows)} hits for {len(texts)} queries to {output} ({seconds:.2f} s)")
    elif json_lines:
        for text, hit in rows:
            sys.stdout.write(_hit_json(text, hit) + "\n")
    elif queries is not None:
        _print_tsv(rows, columns)
    else:
        table = Table("rank", "score", "id", "text", title=f"{len(index)} items, {index.info.backend} index")
        if reranker is not None:
            table.add_column("bi rank / cross score")
        for _, hit in rows:
            # shown(): a stored text is printed as is (the console reads no markup), control characters escaped
            extra = [
                f"{value:.4f}" if isinstance(value, float) else str(value) for value in _rerank_fields(hit).values()
            ]
            row = [str(hit.rank), f"{hit.score:.4f}", shown(hit.id), shown(hit.text or "")]
            table.add_row(*row, *([" / ".join(extra)] if extra else []))
        console.print(table)


HIT_COLUMNS = ("query", "rank", "id", "score", "text")


def _query_model(
    index: VectorIndex, model: str | None, backend: str | None, allow_mismatch: bool, allow_hub: bool
) -> LoadedModel:
    """The model for new texts of ``index``: its recorded model and backend unless overridden, checked.

    ``index.json`` may have been altered to name any folder or Hub repository, so a recorded model is
    used only if it proves to be the one the index was built with: a Hub model needs ``allow_hub``
    before it is fetched, a folder's files must match the recorded weights fingerprint before its
    weights load, and an index recording no fingerprint cannot vouch for its model (refused unless
    ``allow_mismatch``). A model the user names with --model is their choice: checked, not refused
    for lack of a fingerprint.
    """
    from paraxl.loading.model import resolve_model
    from paraxl.serving.index import check_model_files, check_query_model

    info = index.info
    spec = model if model is not None else info.model
    if spec is None:
        raise InputError("the index records no model; pass --model")
    if model is None:
        _check_recorded_model(info, spec, allow_mismatch, allow_hub)
    resolved = resolve_model(spec, backend if backend is not None else (info.inference_backend or "torch"))
    if not allow_mismatch:
        check_model_files(info, resolved.weights_fingerprint, spec)
    loaded = load_resolved(resolved)
    note = check_query_model(
        info,
        loaded.encoder.fingerprint,
        loaded.weights_fingerprint,
        model=spec,
        dimension=loaded.encoder.dimension,
        allow_mismatch=allow_mismatch,
    )
    if note is not None:
        print_labelled("note", note)
    return loaded


def _check_recorded_model(info: IndexInfo, spec: str, allow_mismatch: bool, allow_hub: bool) -> None:
    """Refuse the model ``index.json`` names when it would be fetched unasked or cannot be verified."""
    from paraxl.serving.index import fetches_from_hub

    if fetches_from_hub(spec) and not allow_hub:
        raise ModelSpecError(
            f"the index names the Hugging Face Hub model {spec!r}; pass --allow-hub-model to fetch it, "
            "or --model to choose the query model"
        )
    if info.model_fingerprint is None and info.weights_fingerprint is None and not allow_mismatch:
        raise ModelSpecError(
            f"the index names the model {spec} but records no model fingerprint to check it against; "
            "pass --model, or --allow-model-mismatch (search) to use it unchecked"
        )


def _recorded_spec(spec: str) -> str:
    """The spec to record: a folder as an absolute path (a relative one breaks from another directory)."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.is_dir() else spec


def _rerank_fields(hit: SearchHit) -> dict[str, int | float]:
    """A reranked hit's bi_rank and cross_score ({} for a plain hit)."""
    from paraxl.cli.search_rerank import rerank_fields as fields

    return fields(hit)


def _hit_row(query: str, hit: SearchHit) -> tuple[object, ...]:
    extra = [f"{value:.6f}" if isinstance(value, float) else value for value in _rerank_fields(hit).values()]
    return (query, hit.rank, hit.id, f"{hit.score:.6f}", hit.text if hit.text is not None else "", *extra)


def _hit_json(query: str, hit: SearchHit) -> str:
    record = {"query": query, "rank": hit.rank, "id": hit.id, "score": round(hit.score, 6), "text": hit.text}
    return json.dumps(record | _rerank_fields(hit), ensure_ascii=False)


def _print_tsv(rows: list[tuple[str, SearchHit]], columns: tuple[str, ...]) -> None:
    from paraxl.io.outputs import tsv_field

    for fields in (columns, *(_hit_row(text, hit) for text, hit in rows)):
        sys.stdout.write("\t".join(tsv_field(field) for field in fields) + "\n")


def _write_hits(path: Path, rows: list[tuple[str, SearchHit]], columns: tuple[str, ...]) -> None:
    from paraxl.io.atomic import atomic_path
    from paraxl.io.outputs import write_tsv

    if path.suffix.lower() == ".tsv":
        write_tsv(path, columns, [_hit_row(text, hit) for text, hit in rows])
        return
    with atomic_path(path, suffix=".jsonl") as tmp, tmp.open("w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(_hit_json(text, hit) + "\n" for text, hit in rows)


# `paraxl index build-sharded` registers on index_app here (its module cannot import this one: no cycles)
from paraxl.cli.index_sharded_command import build_sharded_index, memory_note  # noqa: E402

index_app.command("build-sharded")(build_sharded_index)
