"""A teacher's pair scores, read into per-step distillation targets (AugSBERT-style, Thakur et al. 2021).

A teacher (typically a cross-encoder, far more accurate on PAWS-style pairs but unable to index
sentences) scores sentence pairs once, offline, into a TSV file::

    sentence1<TAB>sentence2<TAB>score

with scores on the cosine scale (a cross-encoder's sigmoid probability, 0-1). During training,
every (anchor, positive) and (anchor, explicit negative) pair of a step that the file scores gets
the teacher's score as a target for the student's cosine, and the distillation loss is added to
the step's contrastive loss with ``distill.weight``. Pairs the file does not score (in-batch
negatives, mined negatives, pairs of two partners of one sentence) only take the contrastive loss.

The losses themselves are in :mod:`paraxl.losses.distillation` (``mse`` and ``cosent``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from paraxl.errors import InputError
from paraxl.losses.distillation import candidate_columns
from paraxl.training.layout import StepLayout

COLUMNS = ("sentence1", "sentence2", "score")


@dataclass(frozen=True)
class TeacherScores:
    """The teacher's score of each scored pair, looked up in either order."""

    scores: dict[tuple[str, str], float]
    source: Path

    @classmethod
    def read(cls, path: str | Path) -> TeacherScores:
        """Read a ``sentence1 / sentence2 / score`` TSV (header first); bad rows name file and line."""
        path = Path(path)
        scores: dict[tuple[str, str], float] = {}
        for line, first, second, score in _rows(path):
            for key in ((first, second), (second, first)):
                known = scores.setdefault(key, score)
                if known != score:
                    raise InputError(f"the pair is scored twice, {known:g} and {score:g}", path, line)
        if not scores:
            raise InputError("no scored pairs", path)
        return cls(scores, path)

    def __len__(self) -> int:
        return len(self.scores) // 2  # each pair is stored in both orders

    def targets(self, layout: StepLayout) -> torch.Tensor:
        """(n, 1 + e) teacher scores of each anchor's positive and explicit negatives; NaN: unscored."""
        columns = candidate_columns(layout)
        anchors, candidates = layout.anchors.tolist(), columns.tolist()
        rows = [
            [
                self.scores.get((layout.texts[anchor], layout.texts[other]), math.nan) if other >= 0 else math.nan
                for other in row
            ]
            for anchor, row in zip(anchors, candidates, strict=True)
        ]
        return torch.tensor(rows, dtype=torch.float32).reshape(columns.shape)


def _rows(path: Path) -> Iterator[tuple[int, str, str, float]]:
    try:
        handle = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise InputError("teacher scores file not found", path) from None
    except OSError as exc:
        raise InputError(f"cannot read the teacher scores ({exc})", path) from None
    with handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = next(reader, None)
            if header is None or [cell.strip() for cell in header[:3]] != list(COLUMNS):
                raise InputError(f"the first line must be the header {' / '.join(COLUMNS)} (tab-separated)", path, 1)
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) < 3:
                    raise InputError(f"expected 3 tab-separated columns, found {len(row)}", path, line)
                first, second, raw = row[0].strip(), row[1].strip(), row[2].strip()
                if not first or not second:
                    raise InputError("empty sentence", path, line)
                try:
                    score = float(raw)
                except ValueError:
                    raise InputError(f"score {raw!r} is not a number", path, line) from None
                if not -1.0 <= score <= 1.0:  # also rejects nan
                    raise InputError(f"score {raw} is outside [-1, 1], the cosine scale", path, line)
                yield line, first, second, score
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text ({exc.reason})", path) from None
