"""``paraxl serve``: the HTTP service (library: ``paraxl.serving``)."""

from __future__ import annotations

import math
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from paraxl.cli.common import BackendOption, app, cli_errors, load_resolved, print_note, say
from paraxl.errors import InputError
from paraxl.inference.onnx_files import SPINNING_VARIABLE
from paraxl.loading.specs import DEFAULT_MODEL
from paraxl.serving.limits import (
    DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_WAIT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT,
    QueueLimits,
    ServerLimits,
    is_loopback,
)

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

if TYPE_CHECKING:
    from paraxl.loading.model import LoadedModel, ResolvedModel
    from paraxl.serving.cross_service import Served
    from paraxl.serving.limits import ServiceLimits
    from paraxl.serving.service import ParaxlService, Searcher


@app.command("serve")
@cli_errors
def serve(
    model: Annotated[str, typer.Argument(help="bundled:NAME, a model folder, or hub:ORG/NAME[@REV]")] = DEFAULT_MODEL,
    index: Annotated[
        Path | None, typer.Option("--index", help="vector index folder built with this model; enables POST /search")
    ] = None,
    host: Annotated[
        str,
        typer.Option(help="address to bind; 0.0.0.0 exposes the service to your whole network (set --api-key)"),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port)")] = 8000,
    backend: BackendOption = "torch",
    threshold: Annotated[
        float | None,
        typer.Option(
            help="decide paraphrases at this cosine threshold (a cross-encoder MODEL: its score, in [0, 1]); "
            "overrides the calibration's, works without one"
        ),
    ] = None,
    cascade: Annotated[
        Path | None,
        typer.Option(
            help="decide /paraphrase with a rule file of `paraxl cascade fit/fuse` (MODEL is its bi-encoder); "
            "each result says which model decided"
        ),
    ] = None,
    cross_encoder: Annotated[
        str | None, typer.Option(help="with --cascade: the cross-encoder (default: the folder the rule file names)")
    ] = None,
    rerank: Annotated[
        str | None,
        typer.Option(help="a cross-encoder folder: /search accepts rerank: true (re-scores the hits; needs --index)"),
    ] = None,
    cross_backend: Annotated[
        str | None,
        typer.Option(
            "--cross-backend",
            help="with --cascade/--rerank: the cross-encoder's backend, torch (default), onnx, onnx-int8 or auto. "
            "The rule file stores the weights fingerprint (the same on every backend; other weights are refused) "
            "and the backend it was fitted on; an int8 export (its own export fingerprint, the same weights) is "
            "accepted for a rule fitted on fp32 scores, or the reverse, with a one-line note on stderr",
        ),
    ] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="most texts, pairs or queries per request")] = 256,
    max_text_chars: Annotated[int, typer.Option(min=1, help="longest text in characters (longer: 413)")] = 2000,
    max_k: Annotated[int, typer.Option(min=1, help="most search hits per query")] = 100,
    max_body_bytes: Annotated[
        int, typer.Option(min=1, help="largest request body (checked before parsing)")
    ] = 1_000_000,
    batch_size: Annotated[int, typer.Option(min=1, help="encoder batch size")] = 32,
    micro_batch: Annotated[
        bool, typer.Option(help="merge requests that queue up while the encoder is busy into one forward pass")
    ] = True,
    log_level: Annotated[str, typer.Option(help=f"uvicorn log level: {', '.join(LOG_LEVELS)}")] = "info",
    request_timeout: Annotated[
        float, typer.Option(help="seconds a client has to send a whole request (header and body); then: closed")
    ] = DEFAULT_REQUEST_TIMEOUT,
    keep_alive_timeout: Annotated[
        int, typer.Option(min=1, help="seconds an idle connection stays open between requests")
    ] = DEFAULT_KEEP_ALIVE,
    max_connections: Annotated[
        int, typer.Option(min=1, help="connections served at once; beyond: 503")
    ] = DEFAULT_MAX_CONNECTIONS,
    max_header_bytes: Annotated[
        int, typer.Option(min=1, help="largest request line + headers; beyond: 400")
    ] = DEFAULT_MAX_HEADER_BYTES,
    max_queue: Annotated[
        int, typer.Option(min=1, help="most texts waiting for the encoder; beyond: 429 with Retry-After")
    ] = DEFAULT_MAX_QUEUE,
    max_wait_seconds: Annotated[
        float, typer.Option(help="longest a request waits for the encoder; then: 429 with Retry-After")
    ] = DEFAULT_MAX_WAIT,
    shutdown_timeout: Annotated[
        float, typer.Option(help="on SIGTERM, seconds to finish the requests in flight before exiting")
    ] = DEFAULT_SHUTDOWN_TIMEOUT,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="PARAXL_API_KEY",
            show_default=False,
            help="require 'Authorization: Bearer KEY' on every route but /health and the docs "
            "(better: the PARAXL_API_KEY variable, which other users cannot read in the process list)",
        ),
    ] = None,
) -> None:
    """Serve embeddings, similarity, paraphrase decisions and search over HTTP (one process).

    Endpoints: GET /health, POST /embed, /similarity, /paraphrase (needs a calibration,
    --threshold or --cascade), /search (needs --index; rerank needs --rerank); OpenAPI docs at /docs.
    MODEL may be a cross-encoder folder: it is then served alone, for pairs (/similarity gives its
    scores, /paraphrase decides on them at its calibration or --threshold in [0, 1], /rerank orders a
    query's texts as TEI's /rerank does); the routes that need embeddings answer 409.
    One process uses all cores for each forward pass (requests are batched together), so there is
    no --workers: more processes would each hold a copy of the model and compete for the same cores.
    """
    import uvicorn

    from paraxl.cli.serve_cross import cross_encoder_service
    from paraxl.decision.model_scorers import is_cross_encoder_model
    from paraxl.decision.threshold import check_cosine_threshold
    from paraxl.loading.model import resolve_model
    from paraxl.serving.app import create_app
    from paraxl.serving.auth import check_api_key
    from paraxl.serving.limits import ServiceLimits
    from paraxl.serving.server import freeze_loaded_objects, uvicorn_settings
    from paraxl.version import __version__

    if threshold is not None:
        check_cosine_threshold(threshold)
    if log_level not in LOG_LEVELS:
        raise InputError(f"unknown --log-level {log_level!r}; use one of {', '.join(LOG_LEVELS)}")
    _check_seconds(
        {
            "--request-timeout": request_timeout,
            "--max-wait-seconds": max_wait_seconds,
            "--shutdown-timeout": shutdown_timeout,
        }
    )
    if api_key is not None:
        check_api_key(api_key, "--api-key (or PARAXL_API_KEY)")
    server_limits = ServerLimits(
        request_timeout, keep_alive_timeout, max_connections, max_header_bytes, shutdown_timeout
    )
    limits = ServiceLimits(
        max_batch=max_batch, max_text_chars=max_text_chars, max_k=max_k, max_body_bytes=max_body_bytes
    )
    # ONNX threads do not spin (unless PARAXL_ORT_SPINNING=1): the HTTP layer shares the cores (RESULTS.md)
    os.environ.setdefault(SPINNING_VARIABLE, "0")
    served = resolve_model(model, backend)
    service: Served
    if is_cross_encoder_model(served):  # served alone: /similarity and /paraphrase (paraxl.serving.cross_service)
        others = {"--index": index, "--cascade": cascade, "--cross-encoder": cross_encoder, "--rerank": rerank}
        service = cross_encoder_service(
            served,
            threshold=threshold,
            limits=limits,
            max_wait=max_wait_seconds,
            version=__version__,
            batch_size=batch_size,
            bi_encoder_options={**others, "--cross-backend": cross_backend},
        )
    else:
        options = BiEncoderOptions(index, threshold, cascade, cross_encoder, rerank, cross_backend)
        queue = QueueLimits(max_queue, max_wait_seconds)
        service = _bi_encoder_service(served, options, limits, queue, batch_size, micro_batch)
    _announce(service, index, host, port, authenticated=api_key is not None)
    settings = uvicorn_settings(server_limits)
    application = create_app(service, api_key=api_key)
    freeze_loaded_objects()  # a full GC pass would walk the loaded model: 0.1-0.6 s stalls
    with _sigterm_exits_zero():
        uvicorn.run(application, host=host, port=port, log_level=log_level, **settings)


@dataclass(frozen=True)
class BiEncoderOptions:
    """The options of ``paraxl serve`` that shape a bi-encoder's service (index, decisions, cross-encoders)."""

    index: Path | None
    threshold: float | None
    cascade: Path | None
    cross_encoder: str | None
    rerank: str | None
    cross_backend: str | None


def _bi_encoder_service(
    served: ResolvedModel,
    options: BiEncoderOptions,
    limits: ServiceLimits,
    queue: QueueLimits,
    batch_size: int,
    micro_batch: bool,
) -> ParaxlService:
    """MODEL is a bi-encoder: its service, with the index, decider and cross-encoders the options ask for."""
    from paraxl.cli.serve_cross import on_cross_backend, open_cross, paraphrase_decider, resolve_cross
    from paraxl.serving.service import ParaxlService
    from paraxl.version import __version__

    index = options.index
    setup = resolve_cross(  # a rule of other weights, or a --rerank model that is no cross-encoder: refused here
        served,
        threshold=options.threshold,
        cascade=options.cascade,
        cross_encoder=options.cross_encoder,
        rerank=options.rerank,
        index=index,
    )
    setup = on_cross_backend(setup, options.cross_backend)  # an unknown backend: refused; int8 vs fp32: a note
    decider = paraphrase_decider(setup, options.threshold)
    rule, reranker = open_cross(setup, queue.max_wait)  # first: a missing ONNX export fails before the bi-encoder
    loaded = load_resolved(setup.bi)
    searcher = _searcher(index, loaded) if index is not None else None
    return ParaxlService(
        loaded.encoder,
        model_name=served.spec,
        decider=decider,
        searcher=searcher,
        limits=limits,
        batch_size=batch_size,
        backend=served.backend,
        micro_batch=micro_batch,
        version=__version__,
        queue=queue,
        rule=rule,
        reranker=reranker,
    )


def _check_seconds(options: dict[str, float]) -> None:
    """Each option a finite number of seconds > 0 (typer cannot say "finite"), else one line, exit 2."""
    for option, seconds in options.items():
        if not (math.isfinite(seconds) and seconds > 0):
            raise InputError(f"{option} must be a finite number of seconds > 0, got {seconds}")


def _announce(service: Served, index: Path | None, host: str, port: int, *, authenticated: bool) -> None:
    """What is served where, and a warning when other machines can reach it without a key."""
    decider, searcher, rule, reranker = service.decider, service.searcher, service.rule, service.reranker
    paraphrase = f"threshold {decider.threshold:.4f} ({decider.method})" if decider else "off (no calibration)"
    if rule is not None:
        paraphrase = f"{rule.kind} of this model and the cross-encoder {rule.cross.model}"
    search = f"{len(searcher)} vectors from {index}" if searcher is not None else "off (no --index)"
    if not service.embeds:
        search = "off (a cross-encoder gives no embeddings: /embed and /v1/embeddings answer 409 too)"
    if reranker is not None:
        search += f"; rerank with {reranker.model}"
    say(
        f"serving {service.model_name} ({service.backend}) on http://{host}:{port}  docs: /docs\n"
        f"  /paraphrase: {paraphrase}\n  /search: {search}"
    )
    if not is_loopback(host) and not authenticated:
        # --help says so too, but a warning at run time is what someone who copied a command line sees
        say(
            f"warning: binding {host} exposes this service to other machines, with no authentication; "
            "set PARAXL_API_KEY (or --api-key) to require a key",
            stderr=True,
        )


@contextmanager
def _sigterm_exits_zero() -> Iterator[None]:
    """Let a SIGTERM that uvicorn has already handled (drained, shut down) end the command with 0.

    uvicorn catches SIGTERM, finishes the requests in flight and then raises the signal again under
    the handler it found, so that the default handler kills the process (status 143, a failure to a
    supervisor). The server has stopped cleanly by then: under this handler the re-raised signal is
    a no-op and ``paraxl serve`` returns normally (status 0). Signals belong to the main thread only.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _searcher(index: Path, model: LoadedModel) -> Searcher:
    """The index at ``index``, refused (one line, exit 2) if its vectors come from another model."""
    from paraxl.serving.index import VectorIndex, check_query_model

    loaded = VectorIndex.load(index)
    note = check_query_model(
        loaded.info,
        model.encoder.fingerprint,
        model.weights_fingerprint,
        model=model.spec,
        dimension=model.encoder.dimension,
    )
    if note:
        print_note(f"note: {note}")
    return loaded
