"""``paraxl eval`` as a library call: resolve the model and data, run tasks, write the report.

Everything is checked before the model loads (tasks, protocol, data folder), so a typo costs
seconds, not a model load. The summary covers every result file in the output folder that
belongs to the same model and protocol, so tasks may be run one at a time into one folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paraxl.errors import InputError
from paraxl.evaluation.cross_encoder_eval import cross_encoder_outcome
from paraxl.evaluation.embeddings import CachedEmbedder, Embedder, cache_folder
from paraxl.evaluation.report import summary_markdown
from paraxl.evaluation.report_plots import write_plots
from paraxl.evaluation.results import ModelInfo, ResultDocument, read_result
from paraxl.evaluation.runner import parse_task_list, run_tasks
from paraxl.evaluation.tasks.base import EvalContext, PawsxProtocol
from paraxl.evaluation.tasks.registry import TASKS
from paraxl.io.atomic import atomic_path
from paraxl.io.locks import folder_lock
from paraxl.io.outputs import check_output
from paraxl.loading.backends import INFERENCE_BACKENDS
from paraxl.loading.fastest import AUTO_BACKEND, numerics_fingerprint, open_fastest_identical
from paraxl.loading.model import resolve_model
from paraxl.modeling.protocol import SentenceEncoder
from paraxl.paths import cache_dir, data_dir

PROTOCOLS: tuple[PawsxProtocol, ...] = ("resplit", "official")
EVAL_BACKENDS = (AUTO_BACKEND, *INFERENCE_BACKENDS)


@dataclass(frozen=True)
class EvalRequest:
    model: str
    tasks: str = "all"
    protocol: str = "resplit"
    data_dir: Path | None = None
    output_dir: Path | None = None
    seed: int = 0
    batch_size: int = 64  # rows per forward pass at most; the encoder's token budget caps batches of long texts
    use_cache: bool = True
    plots: bool = True
    # "auto" (ONNX fp32 when the model exports and matches torch, else torch: paraxl.loading.fastest)
    # or an inference backend of paraxl.loading.backends.INFERENCE_BACKENDS
    backend: str = AUTO_BACKEND


@dataclass(frozen=True)
class EvalOutcome:
    output_dir: Path
    results: list[ResultDocument]  # in task order, as written
    plots: list[Path]

    @property
    def documents(self) -> list[dict[str, Any]]:
        """The result documents as JSON mappings (what the files hold)."""
        return [result.to_json() for result in self.results]


def resolve_data_dir(explicit: Path | None) -> Path:
    folder = data_dir(explicit)
    if folder is None:
        raise InputError("no benchmark data folder: pass --data-dir or set PARAXL_DATA_DIR")
    if not folder.is_dir():
        raise InputError("benchmark data folder not found", folder)
    return folder


def default_output_dir(model: str, protocol: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip().rstrip("/")).strip("_") or "model"
    return Path("runs") / "eval" / f"{slug[-60:]}-{protocol}"


def run_evaluation(request: EvalRequest, log: Callable[[str], None] = lambda message: None) -> EvalOutcome:
    """Load the model named by ``request`` and evaluate it (see module docstring)."""
    task_names = parse_task_list(request.tasks)
    if request.protocol not in PROTOCOLS:
        raise InputError(f"unknown PAWS-X protocol {request.protocol!r}; use {' or '.join(PROTOCOLS)}")
    if request.backend not in EVAL_BACKENDS:
        raise InputError(f"unknown backend {request.backend!r}; use one of {', '.join(EVAL_BACKENDS)}")
    protocol: PawsxProtocol = "official" if request.protocol == "official" else "resplit"
    output_dir = check_output(request.output_dir or default_output_dir(request.model, protocol), "folder")
    folder = resolve_data_dir(request.data_dir)
    if (cross := cross_encoder_outcome(request, task_names, protocol, folder, output_dir, log)) is not None:
        return EvalOutcome(*cross)  # a cross-encoder: the pair tasks only (paraxl.evaluation.cross_encoder_eval)
    encoder, model = load_eval_encoder(request, log)
    embedder = CachedEmbedder(
        encoder,
        cache_folder(cache_dir(), model.fingerprint) if request.use_cache and model.fingerprint else None,
        batch_size=request.batch_size,
    )
    if len(embedder):
        log(f"{len(embedder)} embeddings of this model already cached")
    return evaluate_embedder(embedder, model, task_names, protocol, folder, output_dir, request, log)


def load_eval_encoder(
    request: EvalRequest, log: Callable[[str], None] = lambda message: None
) -> tuple[SentenceEncoder, ModelInfo]:
    """The encoder of ``request`` on its backend and the model record its results carry.

    ``auto`` picks ONNX fp32 when the model has or may get a checked export (bundled models, or a
    user's folder exported into paraxl's cache, kept there only with ``use_cache``), else torch;
    the line saying which, and why, goes to ``log``. The record's fingerprint is the encoder's
    :func:`~paraxl.loading.fastest.numerics_fingerprint`: torch and checked ONNX fp32 share it (so
    they share the embedding cache and one summary), int8 has its own. ``backend`` records what ran.
    """
    if request.backend != AUTO_BACKEND:
        resolved = resolve_model(request.model, request.backend)
        log(f"loading {request.model} from {resolved.folder} ({request.backend})")
        encoder = resolved.load().encoder
        numerics = numerics_fingerprint(encoder, request.backend, resolved.folder)
        return encoder, ModelInfo(request.model, str(resolved.folder), numerics, request.backend)
    folder = resolve_model(request.model, "torch").folder
    log(f"loading {request.model} from {folder} (backend auto)")
    encoder, choice = open_fastest_identical(folder, keep_export=request.use_cache)
    spent = f"; {choice.export_seconds:.0f} s to export and check" if choice.export_seconds >= 1 else ""
    log(("WARNING: " if choice.fell_back else "") + f"backend: {choice.reason}{spent}")
    return encoder, ModelInfo(request.model, str(folder), choice.numerics, choice.backend)


def evaluate_embedder(
    embedder: Embedder,
    model: ModelInfo,
    task_names: list[str],
    protocol: PawsxProtocol,
    folder: Path,
    output_dir: Path,
    request: EvalRequest,
    log: Callable[[str], None] = lambda message: None,
) -> EvalOutcome:
    """Run ``task_names`` on any embedder and write results, summary and plots into ``output_dir``."""
    context = EvalContext(data_dir=folder, seed=request.seed, progress=log)
    with folder_lock(output_dir, "eval output folder"):  # two evals into one folder would mix their summaries
        documents = run_tasks(embedder, model, task_names, context, output_dir, protocol)
        written: list[Path] = []
        if request.plots:
            for document in documents:
                written += write_plots(document, output_dir / "plots")
        summary = summary_markdown(_related_documents(output_dir, model, protocol))
        with atomic_path(output_dir / "summary.md", suffix=".md") as tmp:
            tmp.write_text(summary, encoding="utf-8")
    return EvalOutcome(output_dir, documents, written)


def _related_documents(output_dir: Path, model: ModelInfo, protocol: str) -> list[ResultDocument]:
    """Result files in ``output_dir`` of this model (by fingerprint) and protocol, in registry order."""
    found = {}
    for name in TASKS:
        path = output_dir / f"{name}.json"
        if not path.is_file():
            continue
        document = read_result(path)
        if document.model.fingerprint == model.fingerprint and document.protocol == protocol:
            found[name] = document
    return list(found.values())
