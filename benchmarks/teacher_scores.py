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

``--gold-labels`` instead of ``--teacher`` writes the same pairs with their gold labels (1
paraphrase, 0 not): the control that tells what a distillation loss gains from the teacher's
graded scores rather than from the loss itself.

Scoring all 57k pairs takes ~35 min on a 2-core CPU, so it is resumable: scores are appended to
``OUTPUT.partial`` every ``--chunk-size`` pairs (with the settings in ``OUTPUT.partial.json``), and
the same command again continues after the last complete chunk. The finished TSV replaces
``OUTPUT`` atomically and the partial files are removed; a partial file from other settings
(teacher, languages, max length, pair list) is refused rather than mixed in.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from paraxl.data.readers import PAWSX_LANGUAGES, parse_languages
from paraxl.errors import InputError, ParaxlError, check_counts
from paraxl.evaluation.session import resolve_data_dir
from paraxl.modeling.cross_encoder import CrossEncoderScorer, load_cross_encoder
from paraxl.training.data_config import PawsxData
from paraxl.training.data_loading import load_training_data
from paraxl.training.teacher_scores import (
    PartialScores,
    paraphrase_pairs,
    scoring_settings,
    training_pairs,
    write_gold_labels,
)

if TYPE_CHECKING:
    from sentence_transformers.cross_encoder import CrossEncoder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--teacher", type=Path, help="cross-encoder folder (one output logit)")
    source.add_argument("--gold-labels", action="store_true", help="write the gold labels (1 / 0), no teacher")
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark data (default: $PARAXL_DATA_DIR)")
    parser.add_argument("--languages", default=",".join(PAWSX_LANGUAGES), help="comma-separated (default: all 7)")
    parser.add_argument("--output", type=Path, required=True, help="the TSV to write")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128, help="tokens per pair, as the teacher was trained")
    parser.add_argument("--chunk-size", type=int, default=2048, help="pairs scored between two saves of the partial")
    args = parser.parse_args(argv)
    try:
        languages = parse_languages(args.languages)
        check_counts(args, ("batch_size", "max_length", "chunk_size"))
        if args.teacher is not None and not (args.teacher / "config.json").is_file():
            raise InputError("not a model folder (no config.json)", args.teacher)
        data = load_training_data(PawsxData(languages=languages), resolve_data_dir(args.data_dir))
        pairs = training_pairs(data.units)
        if args.gold_labels:
            write_gold_labels(args.output, pairs, paraphrase_pairs(data.units))
            print(f"wrote the gold labels of {len(pairs)} pairs of {len(data.units)} units to {args.output}")
            return 0
        partial = PartialScores(args.output, scoring_settings(args.teacher, languages, args.max_length, pairs))
        done = partial.resume(pairs)  # pairs already scored in an earlier sitting
    except ParaxlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if done:
        print(f"resuming after {done} of {len(pairs)} pairs scored in an earlier sitting ({partial.path})")
    began = time.perf_counter()
    model = load_cross_encoder(args.teacher, args.max_length)
    for start in range(done, len(pairs), args.chunk_size):
        chunk = pairs[start : start + args.chunk_size]
        partial.append(chunk, score(model, chunk, args.batch_size))
        print(f"{start + len(chunk)}/{len(pairs)} pairs ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
    partial.finish()
    seconds = time.perf_counter() - began
    print(f"scored {len(pairs) - done} pairs of {len(data.units)} units in {seconds:.0f} s ", end="")
    print(f"({len(pairs)} in all); wrote {args.output}")
    return 0


def score(model: CrossEncoder, pairs: Sequence[tuple[str, str]], batch_size: int) -> list[float]:
    """Sigmoid of the cross-encoder's logit for each pair."""
    scores: list[float] = CrossEncoderScorer(model, batch_size).score(pairs).tolist()
    return scores


if __name__ == "__main__":
    raise SystemExit(main())
