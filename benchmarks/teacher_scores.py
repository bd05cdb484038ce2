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
import hashlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paraxl.data.readers import PAWSX_LANGUAGES, parse_languages
from paraxl.data.records import TextUnit
from paraxl.errors import InputError, ParaxlError, check_counts
from paraxl.evaluation.session import resolve_data_dir
from paraxl.io.atomic import atomic_path
from paraxl.training.data_config import PawsxData
from paraxl.training.data_loading import load_training_data
from paraxl.training.distillation import COLUMNS

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
        partial = PartialScores(args.output, settings(args, languages, pairs))
        done = partial.resume(pairs)  # pairs already scored in an earlier sitting
    except ParaxlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if done:
        print(f"resuming after {done} of {len(pairs)} pairs scored in an earlier sitting ({partial.path})")
    began = time.perf_counter()
    model = load_teacher(args.teacher, args.max_length)
    for start in range(done, len(pairs), args.chunk_size):
        chunk = pairs[start : start + args.chunk_size]
        partial.append(chunk, score(model, chunk, args.batch_size))
        print(f"{start + len(chunk)}/{len(pairs)} pairs ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
    partial.finish()
    seconds = time.perf_counter() - began
    print(f"scored {len(pairs) - done} pairs of {len(data.units)} units in {seconds:.0f} s ", end="")
    print(f"({len(pairs)} in all); wrote {args.output}")
    return 0


def settings(args: argparse.Namespace, languages: Sequence[str], pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """What a partial file must have been scored with to be continued (the pair list by its hash)."""
    digest = hashlib.sha256()
    for first, second in pairs:
        digest.update(f"{first}\t{second}\n".encode())
    return {
        "teacher": str(args.teacher.resolve()),
        "languages": list(languages),
        "max_length": args.max_length,
        "pairs": len(pairs),
        "pairs_sha256": digest.hexdigest(),
    }


class PartialScores:
    """``OUTPUT.partial`` (rows scored so far, header first) and ``OUTPUT.partial.json`` (their settings)."""

    def __init__(self, output: Path, expected: dict[str, Any]) -> None:
        self.output = output
        self.path = output.with_name(output.name + ".partial")
        self.settings_path = output.with_name(output.name + ".partial.json")
        self.expected = expected

    def resume(self, pairs: Sequence[tuple[str, str]]) -> int:
        """How many of the first pairs are scored on disk; starts a new partial when there is none."""
        if not self.path.exists():
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.settings_path.write_text(json.dumps(self.expected, indent=1) + "\n", encoding="utf-8")
            self.path.write_text("\t".join(COLUMNS) + "\n", encoding="utf-8")
            return 0
        try:
            found = json.loads(self.settings_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(f"unreadable settings of a partial scoring ({error}); delete {self.path}") from None
        if found != self.expected:
            changed = sorted(key for key in self.expected if found.get(key) != self.expected[key])
            raise InputError(
                f"a partial scoring with other {', '.join(changed)} is here; delete it or use another --output",
                self.path,
            )
        text = self.path.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]  # a line cut by a kill mid-write is scored again
        if len(complete) < len(text):
            self.path.write_text(complete, encoding="utf-8")
        rows = complete.splitlines()[1:]
        for number, line in enumerate(rows, start=2):
            if not self._continues(line, pairs, number - 2):
                raise InputError(f"line {number}: not the next scored pair of the data; delete the file", self.path)
        return len(rows)

    @staticmethod
    def _continues(line: str, pairs: Sequence[tuple[str, str]], index: int) -> bool:
        """Whether ``line`` is ``pairs[index]`` with a finite score."""
        fields = line.split("\t")
        if len(fields) != 3 or index >= len(pairs) or (fields[0], fields[1]) != pairs[index]:
            return False
        try:
            return math.isfinite(float(fields[2]))
        except ValueError:
            return False

    def append(self, pairs: Sequence[tuple[str, str]], scores: Sequence[float]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.writelines(f"{a}\t{b}\t{s:.6f}\n" for (a, b), s in zip(pairs, scores, strict=True))
            handle.flush()
            os.fsync(handle.fileno())

    def finish(self) -> None:
        """The complete partial becomes ``OUTPUT`` in one rename (same folder: atomic); then the settings go."""
        os.replace(self.path, self.output)
        self.settings_path.unlink()


def training_pairs(groups: Sequence[TextUnit]) -> list[tuple[str, str]]:
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


def paraphrase_pairs(groups: Sequence[TextUnit]) -> set[frozenset[str]]:
    """The pairs of two texts of one unit: the paraphrases among :func:`training_pairs`."""
    return {frozenset(pair) for group in groups for pair in itertools.combinations(group.texts, 2)}


def write_gold_labels(output: Path, pairs: Sequence[tuple[str, str]], paraphrases: set[frozenset[str]]) -> None:
    """The pairs with score 1 (paraphrase) or 0, written atomically to ``output``."""
    with atomic_path(output) as temporary, temporary.open("w", encoding="utf-8") as handle:
        handle.write("\t".join(COLUMNS) + "\n")
        for first, second in pairs:
            handle.write(f"{first}\t{second}\t{float(frozenset((first, second)) in paraphrases):g}\n")


def load_teacher(teacher: Path, max_length: int) -> CrossEncoder:
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    return CrossEncoder(
        str(teacher), num_labels=1, max_length=max_length, activation_fn=torch.nn.Sigmoid(), local_files_only=True
    )


def score(model: CrossEncoder, pairs: Sequence[tuple[str, str]], batch_size: int) -> list[float]:
    """Sigmoid of the cross-encoder's logit for each pair."""
    values = model.predict(list(pairs), batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    return [float(value) for value in values.reshape(-1)]


if __name__ == "__main__":
    raise SystemExit(main())
