"""A cross-encoder on torch fp32, ONNX fp32 and ONNX int8 (issue 28): PAWS-X resplit accuracy and pairs/s.

Usage (the real run: each backend scores the 7 languages' validation + test pairs, ~8,000 pairs):
    python benchmarks/bench_cross_encoder_onnx.py --model runs/cross-encoder/final --data-dir ../shared/data
Smoke test (a tiny model, a few pairs):
    python benchmarks/bench_cross_encoder_onnx.py --model CE --data-dir DIR --limit 8 --name ce-onnx-smoke

The model folder's ONNX files are made first when missing or stale (``export_cross_encoder``, as
``paraxl export-onnx`` makes them: fp32 checked to 1e-5 on scores, int8 quantized as the bi-encoder's);
the time is reported, and current files are reused.

Protocol: the library's PAWS-X protocol (:func:`paraxl.evaluation.pawsx_protocol.evaluate_pawsx`, the one
``paraxl eval CE --tasks pawsx --backend B`` runs) on each backend's scorer
(:func:`paraxl.decision.model_scorers.cross_encoder_scorer`): one threshold fitted on the validation pairs
of every language pooled, test accuracy per language at it, the mean the main score.
Speed: pairs per second = pairs scored / seconds inside ``scorer.score`` (validation, then test: one call
each), backends one after another in this process, each warmed up on 8 pairs first; torch with its default
intra-op threads, ONNX Runtime with paraxl's session settings (both recorded).
Agreement with torch on the test pairs: max and mean |score difference|, and the share of test decisions
equal to torch's (each backend at its own validation threshold).

Writes ``benchmarks/results/<name>.json`` and ``<name>.md`` (the CPU, its vector flags and the threads named).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import PAWSX_LANGUAGES, parse_languages, pawsx_file
from paraxl.decision.model_scorers import cross_encoder_scorer, is_cross_encoder_model
from paraxl.errors import InputError, ParaxlError
from paraxl.evaluation.bench_report import CPU_FLAGS, cpu_info, present_flags, write_report
from paraxl.evaluation.pawsx_protocol import PawsxResult, evaluate_pawsx, read_labelled
from paraxl.evaluation.results import git_commit, library_versions
from paraxl.inference.cross_encoder_export import export_cross_encoder
from paraxl.inference.onnx_files import session_settings
from paraxl.io.hashing import data_file_records
from paraxl.loading.model import resolve_model

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("torch", "onnx", "onnx-int8")
# the instruction-set flags that decide the fp32 and int8 matmul kernels (VNNI / AMX: int8 dot products)
WARM_UP_PAIRS = 8


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", required=True, help="cross-encoder folder")
    parser.add_argument("--data-dir", type=Path, required=True, help="benchmark data (pawsx/resplit/<lang>/...)")
    parser.add_argument("--limit", type=int, default=None, help="first N pairs per language and split")
    parser.add_argument("--languages", default=",".join(PAWSX_LANGUAGES))
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass (every backend)")
    parser.add_argument("--name", default="cross-encoder-onnx", help="result file stem under --output-dir")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for option in ("limit", "batch_size"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    return args


def read_split(args: argparse.Namespace, split: str, languages: Sequence[str]) -> dict[str, list[LabeledPair]]:
    pairs = read_labelled(args.data_dir, split, languages, "resplit")
    return {lang: rows[: args.limit] if args.limit else rows for lang, rows in pairs.items()}


def test_scores(result: PawsxResult) -> np.ndarray:
    """(n,) the test scores of every language, in language order."""
    return np.concatenate([result.test[lang].scores for lang in result.languages])


def run_backend(
    args: argparse.Namespace, backend: str, fit: dict[str, list[LabeledPair]], test: dict[str, list[LabeledPair]]
) -> tuple[dict[str, Any], PawsxResult]:
    """One backend through the protocol: its row of the table and the protocol's result."""
    began = time.perf_counter()
    scorer = cross_encoder_scorer(resolve_model(args.model, backend), args.batch_size)
    load_seconds = time.perf_counter() - began
    first = next(iter(fit.values()))[:WARM_UP_PAIRS]
    scorer.score([(pair.first, pair.second) for pair in first])  # warm-up: first-call allocations, thread pools
    result = evaluate_pawsx(scorer, fit, test, grouping="by_split")
    pairs = sum(map(len, fit.values())) + sum(map(len, test.values()))
    seconds = sum(result.seconds.values())
    accuracy = {lang: scores.at_pooled.accuracy for lang, scores in result.monolingual.items()}
    row = {
        "backend": backend,
        "threshold": result.pooled_threshold,
        "validation_accuracy": result.pooled_fit_accuracy,
        "accuracy": accuracy,
        "mean": float(np.mean(list(accuracy.values()))),
        "pairs": pairs,
        "seconds": seconds,
        "pairs_per_second": pairs / seconds if seconds > 0 else float("nan"),
        "load_seconds": load_seconds,
    }
    print(f"{backend}: mean test accuracy {100 * row['mean']:.2f} %, {row['pairs_per_second']:.1f} pairs/s", flush=True)
    return row, result


def agreement(result: PawsxResult, reference: PawsxResult) -> dict[str, float]:
    """Test-pair agreement of ``result`` with ``reference`` (torch): score differences and equal decisions."""
    scores, expected = test_scores(result), test_scores(reference)
    difference = np.abs(scores - expected)
    decided = scores >= result.pooled_threshold
    return {
        "max_abs_score_difference": float(difference.max(initial=0.0)),
        "mean_abs_score_difference": float(difference.mean()) if difference.size else float("nan"),
        "decisions_equal_to_torch": float(np.mean(decided == (expected >= reference.pooled_threshold))),
    }


def markdown(document: dict[str, Any]) -> str:
    cpu = document["machine"]["cpu"]
    flags = ", ".join(present_flags(cpu)) or "none of the listed"
    languages = list(document["rows"][0]["accuracy"])
    lines = [
        f"# Cross-encoder on torch, ONNX fp32 and ONNX int8: {document['model']['spec']}",
        "",
        f"PAWS-X resplit: threshold fitted on validation (all languages pooled), accuracy on test; "
        f"{document['pairs_per_language']} per language and split.",
        f"CPU: {cpu['model']}, {cpu['available_cpus']} CPUs available ({cpu['physical_cores']} physical cores); "
        f"flags: {flags}. Threads: torch {document['machine']['torch_threads']}, ONNX Runtime "
        f"{document['machine']['onnxruntime']['intra_op_num_threads']}. Batch: {document['args']['batch_size']} pairs.",
        "",
        "| backend | mean | " + " | ".join(languages) + " | pairs/s | vs torch: max abs score diff | equal decisions |",
        "|---" * (len(languages) + 5) + "|",
    ]
    for row in document["rows"]:
        cells = " | ".join(f"{100 * row['accuracy'][lang]:.2f}" for lang in languages)
        agree = row.get("agreement")
        versus = (
            f"{agree['max_abs_score_difference']:.2e} | {100 * agree['decisions_equal_to_torch']:.2f} %"
            if agree
            else "- | -"
        )
        lines.append(
            f"| {row['backend']} | {100 * row['mean']:.2f} | {cells} | {row['pairs_per_second']:.1f} | {versus} |"
        )
    export = document["export"]
    lines += ["", f"Export: {'reused' if not export['written'] else 'made'} ({export['seconds']:.1f} s)."]
    return "\n".join(lines) + "\n"


def write(document: dict[str, Any], args: argparse.Namespace) -> None:
    stem = args.output_dir / args.name
    write_report(stem, document, markdown(document))
    print(f"wrote {stem}.json and .md", flush=True)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    languages = parse_languages(args.languages, PAWSX_LANGUAGES, "PAWS-X")
    model = resolve_model(args.model)
    if not is_cross_encoder_model(model):
        raise InputError(f"{args.model} is not a cross-encoder (a sentence embedder); this benchmark needs one")
    export = export_cross_encoder(model.folder)  # no-op when the files are current
    fit, test = read_split(args, "validation", languages), read_split(args, "test", languages)
    rows, results = [], []
    for backend in BACKENDS:
        row, result = run_backend(args, backend, fit, test)
        rows.append(row)
        results.append(result)
    for row, result in zip(rows[1:], results[1:], strict=True):
        row["agreement"] = agreement(result, results[0])
    splits = ("validation", "test")
    files = [pawsx_file(args.data_dir, "resplit", lang, split) for lang in languages for split in splits]
    return {
        "benchmark": "bench_cross_encoder_onnx",
        "model": {"spec": args.model, "folder": str(model.folder), "fingerprint": model.weights_fingerprint},
        "args": {key: str(value) for key, value in vars(args).items()},
        "pairs_per_language": f"first {args.limit} pairs" if args.limit else "all pairs",
        "data": data_file_records(files, args.data_dir),
        "export": {"written": [str(path) for path in export.written], "seconds": export.seconds},
        "rows": rows,
        "machine": {
            "cpu": cpu_info(CPU_FLAGS),
            "torch_threads": torch.get_num_threads(),
            "onnxruntime": session_settings(),
        },
        "versions": library_versions(),
        "git": git_commit(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        document = benchmark(args)
    except ParaxlError as problem:
        print(f"error: {problem}", flush=True)
        return 2
    write(document, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
