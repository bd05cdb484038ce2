"""``paraxl eval`` on a cross-encoder: the pair tasks only, through the same task code and PAWS-X protocol.

A cross-encoder scores sentence *pairs* (the sigmoid of its logit), so it can run the tasks that
fit a threshold on pair scores: ``pawsx`` (:class:`~paraxl.evaluation.tasks.pawsx.PawsxTask`'s
records, :func:`~paraxl.evaluation.pawsx_protocol.evaluate_pawsx` on a
:class:`~paraxl.modeling.cross_encoder.CrossEncoderScorer`). Tasks that need sentence embeddings
(retrieval, bitext mining, classification, the 49-cell cross-lingual matrix) are refused in one line.
The cross-lingual reading is the en -> X row only: a cross-encoder must run every pair of every cell.

:func:`cross_encoder_outcome` returns None for a model that is not a cross-encoder, so
``paraxl.evaluation.session`` dispatches with one call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paraxl.data.pairs import LabeledPair
from paraxl.decision.model_scorers import cross_encoder_scorer, is_cross_encoder_model
from paraxl.decision.scorers import PairScorer
from paraxl.errors import InputError
from paraxl.evaluation.pawsx_protocol import evaluate_pawsx, read_labelled
from paraxl.evaluation.report import summary_markdown
from paraxl.evaluation.report_plots import write_plots
from paraxl.evaluation.results import ModelInfo, ResultDocument, result_document, write_document
from paraxl.evaluation.tasks.base import EvalContext, PawsxProtocol, TaskResult
from paraxl.evaluation.tasks.pawsx import PawsxTask, split_names
from paraxl.inference.onnx_files import locate_export
from paraxl.io.atomic import atomic_path
from paraxl.io.locks import folder_lock
from paraxl.loading.model import resolve_model

if TYPE_CHECKING:
    from paraxl.evaluation.session import EvalRequest

PAIR_TASKS = ("pawsx",)  # the tasks a cross-encoder can run
CROSS_ENCODER_DESCRIPTION = (
    "PAWS-X paraphrase identification: the cross-encoder's score of the pair against a fitted threshold"
)


def check_pair_tasks(spec: str, task_names: Sequence[str]) -> None:
    """Refuse, in one line, the tasks that need sentence embeddings."""
    refused = [name for name in task_names if name not in PAIR_TASKS]
    if refused:
        raise InputError(
            f"{spec} is a cross-encoder: it scores sentence pairs and has no sentence embeddings, which "
            f"{', '.join(refused)} need; run --tasks {','.join(PAIR_TASKS)}"
        )


def run_pawsx(scorer: PairScorer, context: EvalContext, protocol: PawsxProtocol) -> TaskResult:
    """The pawsx task on any pair scorer: validation-fitted thresholds, test scores, the en -> X row."""
    task = PawsxTask(cross_lingual=False, protocol=protocol)
    fit: dict[str, list[LabeledPair]] = {}
    test: dict[str, list[LabeledPair]] = {}
    for language in task.languages:
        fit_split, test_split = split_names(protocol, language)
        fit |= read_labelled(context.data_dir, fit_split, (language,), protocol)
        test |= read_labelled(context.data_dir, test_split, (language,), protocol)
    context.progress(f"pawsx: scoring {sum(map(len, (*fit.values(), *test.values())))} pairs with the cross-encoder")
    result = evaluate_pawsx(scorer, fit, test, cross_lingual="en_row", grouping="by_split")
    scores = task._scores(result)  # the task's own records: one layout for both kinds of model
    if result.en_row is not None:
        scores["en_to_xx"] = {"threshold": result.en_row.threshold, "accuracy": result.en_row.accuracy,
                              "mean": result.en_row.mean}  # fmt: skip
    files = sorted({rows[0].path for rows in (*fit.values(), *test.values())})
    return TaskResult("pawsx", scores["mean"]["accuracy"], scores, files, task._details(result))


def cross_encoder_backend(folder: Path, requested: str) -> tuple[str, str]:
    """The backend a cross-encoder runs on for ``requested``, and a few words saying why.

    ``auto``: ONNX fp32 when ``folder`` holds a current export whose scores were checked against torch
    to ``SCORE_TOLERANCE`` (every fp32 export is: ``paraxl export-onnx`` refuses a graph outside it),
    else torch. Unlike a bi-encoder's, a cross-encoder's export is never made behind the user's back.
    """
    from paraxl.inference.cross_encoder_check import SCORE_TOLERANCE
    from paraxl.inference.cross_encoder_onnx import checked_export

    if requested != "auto":
        return requested, requested
    checked = checked_export(folder, SCORE_TOLERANCE)
    if checked is None:
        return "torch", f"torch: no checked ONNX export in the folder (`paraxl export-onnx {folder}` makes one)"
    return "onnx", f"ONNX fp32: its export's scores are torch's to {checked:.1e}"


def cross_encoder_outcome(
    request: EvalRequest,
    task_names: Sequence[str],
    protocol: PawsxProtocol,
    data_dir: Path,
    output_dir: Path,
    log: Callable[[str], None],
) -> tuple[Path, list[ResultDocument], list[Path]] | None:
    """Evaluate ``request.model`` if it is a cross-encoder (``(output_dir, documents, plots)``); else None."""
    resolved = resolve_model(request.model, "torch")
    if not is_cross_encoder_model(resolved):
        return None
    check_pair_tasks(request.model, task_names)
    backend, reason = cross_encoder_backend(resolved.folder, request.backend)
    log(f"loading {request.model} from {resolved.folder} (cross-encoder, {reason})")
    scorer = cross_encoder_scorer(resolve_model(request.model, backend))
    # torch and the fp32 export (checked to 1e-5 on scores) share the weights' key, as bi-encoders do; int8 has its own
    fingerprint = resolved.weights_fingerprint
    if backend == "onnx-int8":
        fingerprint = locate_export(resolved.folder, backend).encoder_fingerprint(resolved.folder)
    model = ModelInfo(request.model, str(resolved.folder), fingerprint, backend=backend)
    context = EvalContext(data_dir=data_dir, seed=request.seed, progress=log)
    with folder_lock(output_dir, "eval output folder"):
        start = time.perf_counter()
        result = run_pawsx(scorer, context, protocol)
        spec = replace(PawsxTask.spec, description=CROSS_ENCODER_DESCRIPTION)
        stats: dict[str, Any] = {}
        document = result_document(result, spec, model, data_dir, protocol, request.seed,
                                   time.perf_counter() - start, stats)  # fmt: skip
        write_document(output_dir / "pawsx.json", document)
        plots = write_plots(document, output_dir / "plots") if request.plots else []
        with atomic_path(output_dir / "summary.md", suffix=".md") as tmp:
            tmp.write_text(summary_markdown([document]), encoding="utf-8")
    return output_dir, [document], plots
