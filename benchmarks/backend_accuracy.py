"""Accuracy of the ONNX backends against PyTorch on the same texts: PAWS-X resplit and Tatoeba.

Usage (about 10 min for onnx-int8 on 2 cores when torch's embeddings are already cached by
``paraxl eval``; each backend has its own embedding cache, so a rerun re-encodes nothing):
    python benchmarks/backend_accuracy.py --data-dir ../shared/data --backends torch,onnx-int8 \
        --tatoeba-every 7

Runs the evaluation suite's own PAWS-X task (threshold fitted on validation, mean test accuracy
over 7 languages) and Tatoeba task (accuracy averaged over both directions) for every backend.
Tatoeba is run on every ``--tatoeba-every``-th of its 112 languages (1 = all), the same subset
for every backend, so the difference between backends is measured on identical texts; the
subset's absolute mean is not the 112-language mean. Writes
``benchmarks/results/backend_accuracy.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from paraxl.evaluation.embeddings import CachedEmbedder, cache_folder
from paraxl.evaluation.loaders.tatoeba import TATOEBA_LANGUAGES
from paraxl.evaluation.tasks.base import EvalContext
from paraxl.evaluation.tasks.bitext import TatoebaTask
from paraxl.evaluation.tasks.pawsx import PawsxTask
from paraxl.loading.backends import load_encoder
from paraxl.paths import cache_dir

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PARAXL_DATA_DIR", "../shared/data")))
    parser.add_argument("--model", default="bundled:multilingual-e5-small")
    parser.add_argument("--backends", default="torch,onnx-int8")
    parser.add_argument("--tatoeba-every", type=int, default=7, help="every n-th Tatoeba language (1 = all 112)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out-name", default="backend_accuracy")
    args = parser.parse_args()

    languages = TATOEBA_LANGUAGES[:: args.tatoeba_every]

    def log(message: str) -> None:
        print(message, flush=True)

    context = EvalContext(data_dir=args.data_dir, progress=log)
    rows = []
    for backend in args.backends.split(","):
        encoder = load_encoder(args.model, backend)
        assert encoder.fingerprint is not None
        embedder = CachedEmbedder(encoder, cache_folder(cache_dir(), encoder.fingerprint), batch_size=args.batch_size)
        start = time.perf_counter()
        pawsx = PawsxTask().run(embedder, context)
        tatoeba = TatoebaTask(languages).run(embedder, context)
        rows.append(
            {
                "backend": backend,
                "fingerprint": encoder.fingerprint,
                "pawsx_mean_accuracy": pawsx.main_score,
                "pawsx_per_language": dict(pawsx.record.per_language),
                "tatoeba_mean_accuracy": tatoeba.main_score,
                "tatoeba_per_language": dict(tatoeba.record.per_language),
                "encoded": embedder.encoded,
                "seconds": time.perf_counter() - start,
            }
        )
    document = {
        "model": args.model,
        "tatoeba_languages": list(languages),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": len(os.sched_getaffinity(0))},
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    reference = rows[0]
    base = reference["backend"]
    lines = [
        f"Model {args.model}; PAWS-X resplit (7 languages, validation threshold); Tatoeba on "
        f"{len(languages)} of 112 languages (every {args.tatoeba_every}th), same texts for every backend.",
        "",
        f"| backend | PAWS-X mean acc. % | Δ vs {base} | Tatoeba mean acc. % | Δ vs {base} |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['backend']} | {100 * row['pawsx_mean_accuracy']:.2f} | "
            f"{100 * (row['pawsx_mean_accuracy'] - reference['pawsx_mean_accuracy']):+.2f} | "
            f"{100 * row['tatoeba_mean_accuracy']:.2f} | "
            f"{100 * (row['tatoeba_mean_accuracy'] - reference['tatoeba_mean_accuracy']):+.2f} |"
        )
    (RESULTS / f"{args.out_name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
