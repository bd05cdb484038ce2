"""Label sentence pairs with a cross-encoder (``paraxl label``): the teacher files of ``distill`` (AugSBERT).

Input: any pairs TSV (:mod:`paraxl.io.pairs_stream`: ``sentence1`` / ``sentence2`` columns and
others, or two fields a row). Output: a TSV whose first columns are ``sentence1 / sentence2 /
score``, the layout :class:`paraxl.training.distillation.TeacherScores` reads, then the input's
other columns in their order. ``score`` is the cross-encoder's sigmoid probability (0-1, six
decimals). The distillation takes it as is as the target of the student's cosine, which shares
its scale on the pairs that matter (``mse``: cosine = probability; ``cosent``: only its order):
no mapping. Sentences are written stripped, as every paraxl reader strips them.

Labelling ~57k pairs takes ~35 min on a 2-core CPU, so it goes in chunks of ``chunk_size`` rows:
each chunk is scored in one call, appended to ``OUTPUT.partial`` and synced, and then
``OUTPUT.partial.json`` records how many rows and bytes are done. A rerun continues after the last
recorded chunk (a chunk cut by a kill is cut off and scored again), provided the partial came from
the same input (sha256 of its bytes), model (weights fingerprint), backend and max length; another
is refused, never mixed in. A batching scorer's scores depend on which pairs share a call
(padding), so with the same ``chunk_size`` a resumed file is byte for byte the uninterrupted one.
The finished file replaces ``OUTPUT`` in one rename.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.decision.model_scorers import cross_encoder_scorer, is_cross_encoder_model
from paraxl.decision.scorers import PairScorer
from paraxl.errors import InputError, ModelFormatError
from paraxl.io.atomic import write_json_atomic
from paraxl.io.pairs_stream import PairRow, PairsScan, iter_pairs, scan_pairs
from paraxl.loading.model import ResolvedModel
from paraxl.modeling.cross_encoder import PREDICT_BATCH, open_cross_encoder_scorer
from paraxl.training.distillation import COLUMNS

DEFAULT_CHUNK = 2048
FORMAT = 1  # of the partial's record; another is refused
Progress = Callable[[int, int], None]  # (rows done, rows in all), after each chunk
# what a partial must have been made with to be continued, and how a refusal names each
_CHECKED = {
    "format": "record format",
    "input_sha256": "input (sha256 of its bytes)",
    "model_fingerprint": "model (weights fingerprint)",
    "backend": "backend",
    "max_length": "max length",
}


@dataclass(frozen=True)
class Labeller:
    """The model side of a labelling: what a partial must match, and how to open the scorer (only if needed)."""

    spec: str
    fingerprint: str
    backend: str
    max_length: int | None
    open: Callable[[], PairScorer]


@dataclass(frozen=True)
class LabelSummary:
    rows: int  # in the output
    resumed: int  # rows an earlier sitting had labelled


def cross_encoder_labeller(
    model: ResolvedModel, batch_size: int = PREDICT_BATCH, max_length: int | None = None
) -> Labeller:
    """The labeller of a one-output cross-encoder on its backend; ``max_length`` None: the model's own (torch only)."""
    if not is_cross_encoder_model(model):
        raise InputError(
            f"{model.spec} is not a cross-encoder (a sentence embedder: its folder has no sequence-classification head)"
        )
    if max_length is not None and model.backend != "torch":
        raise InputError(f"a max length applies to the torch backend; an {model.backend} export keeps its own")

    def open_scorer() -> PairScorer:
        if max_length is None:
            return cross_encoder_scorer(model, batch_size)
        return open_cross_encoder_scorer(model.folder, batch_size, max_length)

    return Labeller(model.spec, model.weights_fingerprint, model.backend, max_length, open_scorer)


def output_header(scan: PairsScan) -> list[str]:
    """``sentence1 / sentence2 / score`` (what ``distill.scores`` reads), then the input's other columns."""
    if COLUMNS[2] in scan.layout.others:
        raise InputError(f"the input already has a {COLUMNS[2]!r} column; rename it", scan.path, 1)
    return [*COLUMNS, *scan.layout.others]


def label_pairs(
    source: str | Path,
    output: str | Path,
    labeller: Labeller,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> LabelSummary:
    """Write ``source``'s rows with ``labeller``'s score of each pair to ``output`` (see the module doc)."""
    source, output = Path(source), Path(output)
    if chunk_size < 1:
        raise InputError(f"the chunk size must be at least 1, got {chunk_size}")
    if output.resolve() == source.resolve():
        raise InputError("the output would replace the input; give another file", output)
    scan = scan_pairs(source)  # every bad row is found here, before the model loads
    partial = PartialLabels(output, _settings(scan, labeller), output_header(scan))
    done = partial.resume()
    scorer = labeller.open() if done < scan.rows else None  # a model that fails to open leaves no partial
    partial.start()
    digest = hashlib.sha256()
    rows = iter_pairs(source, digest)
    for _ in itertools.islice(rows, done):
        pass  # labelled in an earlier sitting; read for the digest
    for chunk in _chunks(rows, chunk_size):
        assert scorer is not None
        partial.append([_line(row, score) for row, score in zip(chunk, _scores(scorer, chunk, source), strict=True)])
        if progress is not None:
            progress(partial.rows, scan.rows)
    if digest.hexdigest() != scan.sha256 or partial.rows != scan.rows:
        raise InputError(f"changed while it was labelled; delete {partial.path} and run again", source)
    partial.finish()
    return LabelSummary(scan.rows, done)


def _settings(scan: PairsScan, labeller: Labeller) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "input": str(scan.path.resolve()),  # for the reader of the record; the hash is what is checked
        "input_sha256": scan.sha256,
        "rows": scan.rows,
        "model": labeller.spec,
        "model_fingerprint": labeller.fingerprint,
        "backend": labeller.backend,
        "max_length": labeller.max_length,
    }


def _chunks(rows: Iterator[PairRow], size: int) -> Iterator[list[PairRow]]:
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


def _scores(scorer: PairScorer, chunk: Sequence[PairRow], source: Path) -> list[float]:
    """(n,) probabilities of one chunk in one call; a model giving other than n values in [0, 1] is at fault."""
    scores = np.asarray(scorer.score([(row.first, row.second) for row in chunk]), dtype=np.float64).reshape(-1)
    if len(scores) != len(chunk):
        raise ModelFormatError(f"the cross-encoder gave {len(scores)} scores for {len(chunk)} pairs")
    bad = np.flatnonzero(~(np.isfinite(scores) & (scores >= 0.0) & (scores <= 1.0)))
    if len(bad):
        row = chunk[int(bad[0])]
        raise ModelFormatError(
            f"the cross-encoder scored the pair of {source}:{row.line} {float(scores[bad[0]])!r}, not a probability"
        )
    values: list[float] = scores.tolist()
    return values


def _line(row: PairRow, score: float) -> str:
    return "\t".join((row.first, row.second, f"{score:.6f}", *row.others)) + "\n"


class PartialLabels:
    """``OUTPUT.partial`` (the header and the rows of whole chunks) and ``OUTPUT.partial.json`` (its record)."""

    def __init__(self, output: Path, settings: dict[str, Any], header: Sequence[str]) -> None:
        self.output = output
        self.path = output.with_name(output.name + ".partial")
        self.record_path = output.with_name(output.name + ".partial.json")
        self.settings = settings
        self.header = ("\t".join(header) + "\n").encode("utf-8")
        self.rows = 0
        self.bytes = 0

    def resume(self) -> int:
        """Rows an earlier sitting labelled (0: none; :meth:`start` writes a new partial); InputError for another's."""
        if not self.path.exists():
            self.rows, self.bytes = 0, 0  # nothing yet: see start
            return 0
        record = self._read_record()
        found = record.get("settings")
        found = found if isinstance(found, dict) else {}
        changed = [name for key, name in _CHECKED.items() if found.get(key) != self.settings[key]]
        if changed:
            raise InputError(
                f"a partial labelling of another {', '.join(changed)} is here; delete it and "
                f"{self.record_path.name}, or use another output",
                self.path,
            )
        self.rows, self.bytes = int(record["rows"]), int(record["bytes"])
        size = self.path.stat().st_size
        if size < self.bytes:
            raise InputError(f"holds {size} bytes, its record says {self.bytes}; delete it", self.path)
        if size > self.bytes:
            os.truncate(self.path, self.bytes)  # a chunk cut by a kill: scored again
        return self.rows

    def start(self) -> None:
        """Write the header (and its record) of a new partial; nothing for one being resumed."""
        if self.bytes == 0:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.bytes = len(self.header)
            self._record()  # first: a partial without its record is refused
            self.path.write_bytes(self.header)

    def _read_record(self) -> dict[str, Any]:
        try:
            record = json.loads(self.record_path.read_text(encoding="utf-8"))
            if (
                isinstance(record, dict)
                and isinstance(record.get("rows"), int)
                and isinstance(record.get("bytes"), int)
            ):
                return record
        except (OSError, ValueError):
            pass
        raise InputError(
            f"a partial labelling without a readable record ({self.record_path.name}); delete it", self.path
        )

    def _record(self) -> None:
        write_json_atomic(
            self.record_path, {"settings": self.settings, "rows": self.rows, "bytes": self.bytes}, indent=1
        )

    def append(self, lines: Sequence[str]) -> None:
        """One chunk's rows, synced to disk before the record counts them."""
        data = "".join(lines).encode("utf-8")
        with self.path.open("ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self.rows += len(lines)
        self.bytes += len(data)
        self._record()

    def finish(self) -> None:
        """The complete partial becomes ``OUTPUT`` in one rename (same folder: atomic); then its record goes."""
        os.replace(self.path, self.output)
        self.record_path.unlink(missing_ok=True)
