"""Score the bi-encoder's PAWS-X training pairs with a cross-encoder: the teacher file for ``distill``.

    .venv/bin/python benchmarks/teacher_scores.py --teacher runs/experiments/cross-encoder-3-epochs/checkpoint-1581 \\
        --data-dir ../shared/data --output runs/teacher/pawsx-resplit-train.tsv

The pairs are those paraxl's trainer can draw inside the PAWS-X resplit train units (read with the
trainer's own loader): every two texts of a unit (paraphrases) and every text with each of the
unit's label-0 partners (non-paraphrases), each pair once (``paraxl silver-pairs --pairs in-unit``).
They are written to ``OUTPUT.pairs.tsv`` and scored by ``paraxl label`` (the library behind it:
:mod:`paraxl.training.pair_labels`) with the teacher, a cross-encoder folder (one output logit;
e.g. saved by ``benchmarks/cross_encoder_pawsx.py --checkpoint-dir``). The output is the TSV that
``distill.scores`` reads (``sentence1 / sentence2 / score``, the sigmoid), as before ``paraxl label``
existed. Bad input (no data folder, unknown language, a folder that is not a cross-encoder) prints
one ``error:`` line and exits 2.

``--gold-labels`` instead of ``--teacher`` writes the same pairs with their gold labels (1
paraphrase, 0 not): the control that tells what a distillation loss gains from the teacher's
graded scores rather than from the loss itself.

Scoring all 57k pairs takes ~35 min on a 2-core CPU, so it is resumable as ``paraxl label`` is:
the same command again continues after the last saved chunk of ``--chunk-size`` pairs; a partial
scoring of other pairs (languages), another teacher or max length is refused rather than mixed in.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from paraxl.data.readers import PAWSX_LANGUAGES, parse_languages
from paraxl.errors import InputError, ParaxlError, check_counts
from paraxl.evaluation.session import resolve_data_dir
from paraxl.loading.model import resolve_model
from paraxl.training.data_config import PawsxData
from paraxl.training.data_loading import load_training_data
from paraxl.training.pair_labels import cross_encoder_labeller, label_pairs
from paraxl.training.teacher_scores import (
    drawn_pairs,
    paraphrase_pairs,
    training_pairs,
    write_gold_labels,
    write_pairs,
)


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
    began = time.perf_counter()
    try:
        languages = parse_languages(args.languages)
        check_counts(args, ("batch_size", "max_length", "chunk_size"))
        if args.teacher is not None and not (args.teacher / "config.json").is_file():
            raise InputError("not a model folder (no config.json)", args.teacher)
        labeller = None
        if args.teacher is not None:
            labeller = cross_encoder_labeller(resolve_model(str(args.teacher)), args.batch_size, args.max_length)
        data = load_training_data(PawsxData(languages=list(languages)), resolve_data_dir(args.data_dir))
        if labeller is None:
            pairs = training_pairs(data.units)
            write_gold_labels(args.output, pairs, paraphrase_pairs(data.units))
            print(f"wrote the gold labels of {len(pairs)} pairs of {len(data.units)} units to {args.output}")
            return 0
        pairs_file = args.output.with_name(args.output.name + ".pairs.tsv")
        write_pairs(pairs_file, drawn_pairs(data.units, "in-unit"), annotated=False)  # a rerun: the same bytes, resumed
        summary = label_pairs(pairs_file, args.output, labeller, args.chunk_size, progress)
    except ParaxlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pairs_file.unlink()
    resumed = f", {summary.resumed} of them scored in an earlier sitting" if summary.resumed else ""
    print(f"scored {summary.rows} pairs of {len(data.units)} units{resumed} in {time.perf_counter() - began:.0f} s;")
    print(f"wrote {args.output}")
    return 0


def progress(done: int, total: int) -> None:
    print(f"{done}/{total} pairs", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
