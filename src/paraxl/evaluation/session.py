"""``paraxl eval`` as a library call: resolve the model and data, run tasks, write the report.

Everything is checked before the model loads (tasks, protocol, data folder), so a typo costs
seconds, not a model load. The summary covers every result file in the output folder that
belongs to the same model and protocol, so tasks may be run one at a time into one folder.

Before/after: with a base (``EvalRequest.base``: a model spec, or :data:`RECORDED_BASE` for the
one paraxl's training recorded beside the model folder), the base is evaluated first on the same
tasks with the same settings into its own output folder, where its earlier results of the same
weights, protocol and seed are reused instead of rerun. The model's folder then gets
``profile.json`` and a profile section in ``summary.md`` with base, model and delta per column of
:data:`~paraxl.evaluation.profile.PROFILE`; without a base they hold the model's profile alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from paraxl.decision.model_scorers import is_cross_encoder_model
from paraxl.errors import InputError, ModelSpecError
from paraxl.evaluation.base_model import recorded_base
from paraxl.evaluation.cross_encoder_eval import cross_encoder_outcome
from paraxl.evaluation.embeddings import CachedEmbedder, Embedder, cache_folder
from paraxl.evaluation.profile import ProfileComparison, compare_profiles, profile_json, profile_values
from paraxl.evaluation.report import summary_markdown
from paraxl.evaluation.report_plots import write_plots
from paraxl.evaluation.results import ModelInfo, ResultDocument, json_ready, read_result
from paraxl.evaluation.runner import parse_task_list, run_tasks
from paraxl.evaluation.tasks.base import EvalContext, PawsxProtocol
from paraxl.evaluation.tasks.registry import TASKS
from paraxl.io.atomic import atomic_path, write_json_atomic
from paraxl.io.locks import folder_lock
from paraxl.io.outputs import check_output
from paraxl.loading.backends import INFERENCE_BACKENDS
from paraxl.loading.fastest import AUTO_BACKEND, numerics_fingerprint, open_fastest_identical
from paraxl.loading.model import ResolvedModel, resolve_model
from paraxl.modeling.protocol import SentenceEncoder
from paraxl.paths import cache_dir, data_dir

PROTOCOLS: tuple[PawsxProtocol, ...] = ("resplit", "official")
EVAL_BACKENDS = (AUTO_BACKEND, *INFERENCE_BACKENDS)
RECORDED_BASE = "recorded"  # EvalRequest.base: the base paraxl's training recorded beside the model folder


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
    # before/after: None (no base), RECORDED_BASE (the base training recorded, if any) or a model spec
    base: str | None = None
    base_output_dir: Path | None = None  # the base's result folder; None: default_output_dir(base, protocol)


@dataclass(frozen=True)
class EvalOutcome:
    output_dir: Path
    results: list[ResultDocument]  # in task order, as written
    plots: list[Path]
    comparison: ProfileComparison | None = None  # the before/after, when a base was evaluated
    profile: dict[str, float | None] | None = None  # the model's profile columns over its results in output_dir

    @property
    def documents(self) -> list[dict[str, Any]]:
        """The result documents as JSON mappings (what the files hold)."""
        return [result.to_json() for result in self.results]


@dataclass(frozen=True)
class BaseChoice:
    """The base of a before/after: what to load, why it is the base, where its results go."""

    resolved: ResolvedModel
    reason: str  # "--base", or the training record it was read from
    output_dir: Path


@dataclass(frozen=True)
class EvalPlan:
    """What one model's evaluation runs and where: checked values, not options."""

    task_names: list[str]
    protocol: PawsxProtocol
    data_dir: Path
    output_dir: Path
    base: list[ResultDocument] | None = None  # the base's results for the before/after, if any
    base_reason: str = ""


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
    base = choose_base(request, protocol, output_dir, log)
    if (cross := cross_encoder_outcome(request, task_names, protocol, folder, output_dir, log)) is not None:
        return EvalOutcome(*cross)  # a cross-encoder: the pair tasks only (paraxl.evaluation.cross_encoder_eval)
    plan = EvalPlan(task_names, protocol, folder, output_dir)
    if base is not None:
        plan = replace(plan, base=evaluate_base(base, request, plan, log), base_reason=base.reason)
    encoder, model = load_eval_encoder(request, log)
    return evaluate_embedder(_embedder(encoder, model, request, log), model, plan, request, log)


def _embedder(
    encoder: SentenceEncoder, model: ModelInfo, request: EvalRequest, log: Callable[[str], None]
) -> CachedEmbedder:
    embedder = CachedEmbedder(
        encoder,
        cache_folder(cache_dir(), model.fingerprint) if request.use_cache and model.fingerprint else None,
        batch_size=request.batch_size,
    )
    if len(embedder):
        log(f"{len(embedder)} embeddings of this model already cached")
    return embedder


def choose_base(
    request: EvalRequest, protocol: PawsxProtocol, output_dir: Path, log: Callable[[str], None]
) -> BaseChoice | None:
    """The base of ``request``'s before/after, found and checked before any model loads; None for none.

    Both models must be sentence embedders (the profile's tasks need embeddings). A base given
    with ``--base`` that cannot be used is an error; one recorded by training is a warning, and
    the evaluation goes on without the comparison.
    """
    if request.base is None:
        return None
    recorded = recorded_base(request.model) if request.base == RECORDED_BASE else None
    if request.base == RECORDED_BASE and recorded is None:
        return None
    spec, reason = (recorded.spec, recorded.reason) if recorded is not None else (request.base, "--base")
    try:
        resolved = resolve_model(spec, "torch")
        for name, model in ((spec, resolved), (request.model, resolve_model(request.model, "torch"))):
            if is_cross_encoder_model(model):
                raise InputError(f"before/after compares sentence embedders and {name} is a cross-encoder")
    except (InputError, ModelSpecError) as exc:
        if recorded is None:
            raise
        log(f"WARNING: no before/after with the base {reason}: {exc}; pass --base MODEL or --no-base")
        return None
    base_output = check_output(request.base_output_dir or default_output_dir(spec, protocol), "folder")
    if base_output.resolve() == output_dir.resolve():
        raise InputError(f"the base {spec} would write its results into the model's folder; give --base-output-dir")
    log(f"before/after: base {spec} ({reason}); its results go to {base_output}")
    return BaseChoice(resolved, reason, base_output)


def evaluate_base(
    base: BaseChoice, request: EvalRequest, plan: EvalPlan, log: Callable[[str], None]
) -> list[ResultDocument]:
    """The base's results for ``plan``'s tasks, reusing those in its folder (same weights, protocol, seed, data).

    With backend auto or torch the base's results are keyed by its weights fingerprint, so when
    every task is there the base is not even loaded.
    """
    spec, output_dir = base.resolved.spec, base.output_dir

    def reusable(fingerprint: str | None) -> list[ResultDocument]:
        # same weights, protocol and seed, and read from the same data folder
        return _related_documents(output_dir, fingerprint, plan.protocol, (request.seed, plan.data_dir))

    if request.backend in (AUTO_BACKEND, "torch"):
        kept = reusable(base.resolved.weights_fingerprint)
        if set(plan.task_names) <= {document.task.name for document in kept}:
            log(f"base {spec}: reusing its results in {output_dir}")
            return kept
    base_request = replace(request, model=spec, output_dir=output_dir, base=None, base_output_dir=None)
    encoder, model = load_eval_encoder(base_request, log)
    kept = reusable(model.fingerprint)
    missing = [name for name in plan.task_names if name not in {doc.task.name for doc in kept}]
    if not missing:
        return kept
    log(f"base {spec}: evaluating {', '.join(missing)}")
    base_plan = EvalPlan(missing, plan.protocol, plan.data_dir, output_dir)
    evaluate_embedder(_embedder(encoder, model, base_request, log), model, base_plan, base_request, log)
    return reusable(model.fingerprint)  # read again: the folder now holds the new results too


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
    plan: EvalPlan,
    request: EvalRequest,
    log: Callable[[str], None] = lambda message: None,
) -> EvalOutcome:
    """Run ``plan``'s tasks on any embedder; write results, summary, profile and plots into its output folder."""
    context = EvalContext(data_dir=plan.data_dir, seed=request.seed, progress=log)
    output_dir = plan.output_dir
    with folder_lock(output_dir, "eval output folder"):  # two evals into one folder would mix their summaries
        documents = run_tasks(embedder, model, plan.task_names, context, output_dir, plan.protocol)
        written: list[Path] = []
        if request.plots:
            for document in documents:
                written += write_plots(document, output_dir / "plots")
        related = _related_documents(output_dir, model.fingerprint, plan.protocol)
        comparison = None
        if plan.base is not None:  # like with like: the base's results are of this seed and data folder
            alike = _related_documents(output_dir, model.fingerprint, plan.protocol, (request.seed, plan.data_dir))
            comparison = compare_profiles(alike, plan.base, plan.base_reason)
        with atomic_path(output_dir / "summary.md", suffix=".md") as tmp:
            tmp.write_text(summary_markdown(related, comparison), encoding="utf-8")
        _write_json(output_dir / "profile.json", profile_json(related, comparison))
    return EvalOutcome(output_dir, documents, written, comparison, profile_values(related))


def _write_json(path: Path, document: dict[str, Any]) -> None:
    write_json_atomic(path, json_ready(document), indent=1, ensure_ascii=False, allow_nan=False)


def _related_documents(
    output_dir: Path, fingerprint: str | None, protocol: str, run: tuple[int, Path] | None = None
) -> list[ResultDocument]:
    """Result files in ``output_dir`` of one model (by fingerprint) and protocol, in registry order;
    with ``run`` = (seed, data folder), only those of that seed read from that folder."""
    found = {}
    for name in TASKS:
        path = output_dir / f"{name}.json"
        if not path.is_file():
            continue
        document = read_result(path)
        same_run = run is None or (
            document.seed == run[0] and Path(document.provenance.data_dir).resolve() == run[1].resolve()
        )
        if document.model.fingerprint == fingerprint and document.protocol == protocol and same_run:
            found[name] = document
    return list(found.values())
