"""Score the bi-encoder's PAWS-X training pairs with a cross-encoder: the teacher file for ``distill``.

    .venv/bin/python benchmarks/teacher_scores.py --teacher runs/experiments/cross-encoder-3-epochs/checkpoint-1581 \\
        --data-dir ../shared/data --output runs/teacher/pawsx-resplit-train.tsv

The pairs are those paraxl's trainer can draw from the PAWS-X resplit train units (read with the
trainer's own loader): every two texts of a unit (paraphrases) and every text with each of the
unit's label-0 partners (non-paraphrases), each pair once. The teacher (a folder saved by
``benchmarks/cross_encoder_pawsx.py --checkpoint-dir``, or any sentence-transformers
``CrossEncoder`` with one output) scores them with a sigmoid; the output is the TSV that
``distill.scores`` reads (``sentence1 / sentence2 / score``). Bad input (no data folder, unknown
language, a folder that is not a model) prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from paraxl.data.readers import PAWSX_LANGUAGES
from paraxl.data.records import TextGroup
from paraxl.errors import InputError, ParaxlError
from paraxl.evaluation.session import resolve_data_dir
from paraxl.io.atomic import atomic_path
from paraxl.training.config import TrainData
from paraxl.training.data_loading import load_training_data
from paraxl.training.distillation import COLUMNS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True, help="cross-encoder folder (one output logit)")
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark data (default: $PARAXL_DATA_DIR)")
    parser.add_argument("--languages", default=",".join(PAWSX_LANGUAGES), help="comma-separated (default: all 7)")
    parser.add_argument("--output", type=Path, required=True, help="the TSV to write")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128, help="tokens per pair, as the teacher was trained")
    args = parser.parse_args(argv)
    try:
        languages = [part.strip() for part in args.languages.split(",") if part.strip()]
        unknown = [language for language in languages if language not in PAWSX_LANGUAGES]
        if unknown or not languages:
            raise InputError(f"unknown PAWS-X language(s) {unknown}; use some of {' '.join(PAWSX_LANGUAGES)}")
        if args.batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
        if not (args.teacher / "config.json").is_file():
            raise InputError("not a model folder (no config.json)", args.teacher)
        data = load_training_data(TrainData(kind="pawsx", languages=languages), resolve_data_dir(args.data_dir))
    except ParaxlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pairs = training_pairs(data.groups)
    began = time.perf_counter()
    scores = score(args.teacher, pairs, args.batch_size, args.max_length)
    seconds = time.perf_counter() - began
    with atomic_path(args.output) as tmp:
        lines = ["\t".join(COLUMNS)] + [f"{a}\t{b}\t{s:.6f}" for (a, b), s in zip(pairs, scores, strict=True)]
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"scored {len(pairs)} pairs of {len(data.groups)} units in {seconds:.0f} s; wrote {args.output}")
    return 0


def training_pairs(groups: Sequence[TextGroup]) -> list[tuple[str, str]]:
    """Each pair the trainer can form inside a unit (two texts; a text and a label-0 partner), once."""
    seen: set[frozenset[str]] = set()
    pairs: list[tuple[str, str]] = []
    for group in groups:
        candidates = itertools.chain(
            itertools.combinations(group.texts, 2), itertools.product(group.texts, group.negatives)
        )
        for first, second in candidates:
            key = frozenset((first, second))
            if first != second and key not in seen:
                seen.add(key)
                pairs.append((first, second))
    return pairs


def score(teacher: Path, pairs: list[tuple[str, str]], batch_size: int, max_length: int) -> list[float]:
    """Sigmoid of the cross-encoder's logit for each pair."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(
        str(teacher), num_labels=1, max_length=max_length, activation_fn=torch.nn.Sigmoid(), local_files_only=True
    )
    values = model.predict(pairs, batch_size=batch_size, show_progress_bar=sys.stderr.isatty(), convert_to_numpy=True)
    return [float(value) for value in values.reshape(-1)]


if __name__ == "__main__":
    raise SystemExit(main())
