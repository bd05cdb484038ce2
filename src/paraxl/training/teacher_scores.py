"""The teacher file for ``distill``: the pairs the trainer can draw, scored once by a teacher.

The pairs are those the trainer can form inside a unit of the training data (every two texts of a
unit: paraphrases; every text with each of the unit's label-0 partners: non-paraphrases), each pair
once. The file is the TSV that :class:`paraxl.training.distillation.TeacherScores` reads
(``sentence1 / sentence2 / score``): a teacher's scores (``benchmarks/teacher_scores.py`` runs a
cross-encoder), or the gold labels (1 / 0) as a control.

Scoring ~57k pairs with a cross-encoder takes ~35 min on a 2-core CPU, so a scoring is resumable:
:class:`PartialScores` appends rows to ``OUTPUT.partial`` (its settings in ``OUTPUT.partial.json``)
and continues after the last complete row; the finished file replaces ``OUTPUT`` atomically.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paraxl.data.records import TextUnit
from paraxl.errors import InputError
from paraxl.io.atomic import atomic_path
from paraxl.training.distillation import COLUMNS


def training_pairs(units: Sequence[TextUnit]) -> list[tuple[str, str]]:
    """Each pair the trainer can form inside a unit (two texts; a text and a label-0 partner), once."""
    seen: set[frozenset[str]] = set()
    pairs: list[tuple[str, str]] = []
    for unit in units:
        candidates = itertools.chain(
            itertools.combinations(unit.texts, 2), itertools.product(unit.texts, unit.negatives)
        )
        for first, second in candidates:
            key = frozenset((first, second))
            if first != second and key not in seen:
                seen.add(key)
                pairs.append((first, second))
    return pairs


def paraphrase_pairs(units: Sequence[TextUnit]) -> set[frozenset[str]]:
    """The pairs of two texts of one unit: the paraphrases among :func:`training_pairs`."""
    return {frozenset(pair) for unit in units for pair in itertools.combinations(unit.texts, 2)}


def write_gold_labels(output: Path, pairs: Sequence[tuple[str, str]], paraphrases: set[frozenset[str]]) -> None:
    """The pairs with score 1 (paraphrase) or 0, written atomically to ``output``."""
    with atomic_path(output) as temporary, temporary.open("w", encoding="utf-8") as handle:
        handle.write("\t".join(COLUMNS) + "\n")
        for first, second in pairs:
            handle.write(f"{first}\t{second}\t{float(frozenset((first, second)) in paraphrases):g}\n")


def scoring_settings(
    teacher: Path, languages: Sequence[str], max_length: int, pairs: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """What a partial file must have been scored with to be continued (the pair list by its hash)."""
    digest = hashlib.sha256()
    for first, second in pairs:
        digest.update(f"{first}\t{second}\n".encode())
    return {
        "teacher": str(teacher.resolve()),
        "languages": list(languages),
        "max_length": max_length,
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
