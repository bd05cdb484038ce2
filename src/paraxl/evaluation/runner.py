"""Run a list of tasks on one embedder and write one result file per task, then the report.

The runner owns order, timing and files; tasks own data and scores. A task that fails on
bad data raises before anything of it is written, and the tasks already finished keep
their files.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from paraxl.errors import InputError
from paraxl.evaluation.embeddings import CachedEmbedder, Embedder
from paraxl.evaluation.profile import PROFILE_TASKS
from paraxl.evaluation.results import ModelInfo, ResultDocument, result_document, write_document
from paraxl.evaluation.tasks.base import EvalContext, PawsxProtocol
from paraxl.evaluation.tasks.registry import TASKS


def parse_task_list(text: str) -> list[str]:
    """``"pawsx,align"`` -> ``["pawsx", "align"]``; ``all`` -> every default task (data shipped here, no subsets);
    ``profile`` -> the tasks of the evaluation profile (:data:`~paraxl.evaluation.profile.PROFILE_TASKS`),
    alone or among other names (``profile,align``)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise InputError("no tasks given; use a comma-separated list such as pawsx,align,bucc, or profile, or all")
    if names == ["all"]:
        return [name for name, entry in TASKS.items() if entry.default]
    names = [task for name in names for task in (PROFILE_TASKS if name == "profile" else (name,))]
    unknown = [name for name in names if name not in TASKS]
    if unknown:
        raise InputError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(TASKS)} (or all, or profile)")
    return list(dict.fromkeys(names))


def run_tasks(
    embedder: Embedder,
    model: ModelInfo,
    task_names: Sequence[str],
    context: EvalContext,
    output_dir: Path,
    protocol: PawsxProtocol = "resplit",
) -> list[ResultDocument]:
    """Run each task, write ``output_dir/<task>.json``, return the documents in order.

    ``protocol`` reaches the tasks that read PAWS-X; every result file records it (as version 1 did).
    """
    documents = []
    for name in task_names:
        task = TASKS[name].build(protocol)
        encoded_before = embedder.encoded if isinstance(embedder, CachedEmbedder) else 0
        start = time.perf_counter()
        result = task.run(embedder, context)
        seconds = time.perf_counter() - start
        stats: dict[str, int] = {}
        if isinstance(embedder, CachedEmbedder):
            stats = {"encoded": embedder.encoded - encoded_before, "cache_size": len(embedder)}
        document = result_document(result, task.spec, model, context.data_dir, protocol, context.seed, seconds, stats)
        write_document(output_dir / f"{name}.json", document)
        documents.append(document)
    return documents
