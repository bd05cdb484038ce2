"""Cut scanned input files into shards: one file and a row range each, numbered across the corpus.

A shard never spans two files, so every shard can be read alone; the plan follows from the files'
contents and ``shard_size`` alone, which is what lets a resumed run find the same shards again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from paraxl.corpus.sources import SourceFile


@dataclass(frozen=True)
class ShardTask:
    """What a worker needs to read and encode one shard (plain values: it crosses processes and Ray).

    ``first_row`` is the shard's first row within its file (0-based), ``first_line`` the 1-based line
    it is on (a parquet file's row number), ``first_id`` its position in the whole corpus (its id);
    ``start_byte``/``stop_byte`` delimit its rows in a text file (0/0 for parquet).
    """

    index: int
    source: int
    path: str
    fmt: str
    column: str | None
    field: int
    width: int
    first_row: int
    rows: int
    first_line: int
    first_id: int
    start_byte: int
    stop_byte: int

    def to_json(self) -> str:
        """One string: what crosses to a worker process or a Ray actor."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ShardTask:
        return cls(**json.loads(text))

    def range_record(self) -> dict[str, Any]:
        """The shard's place in the corpus, for the manifest."""
        return {
            "index": self.index,
            "input": self.source,
            "first_row": self.first_row,
            "rows": self.rows,
            "first_line": self.first_line,
            "first_id": self.first_id,
        }


def plan_shards(sources: Sequence[SourceFile], shard_size: int) -> list[ShardTask]:
    """Shards of at most ``shard_size`` rows over ``sources`` in order (each file's last one may be shorter)."""
    tasks: list[ShardTask] = []
    first_id = 0
    for number, source in enumerate(sources):
        for first_row in range(0, source.rows, shard_size):
            rows = min(shard_size, source.rows - first_row)
            start = stop = 0
            if source.fmt != "parquet":
                slot = first_row // shard_size
                start, stop = source.offsets[slot], source.offsets[slot + 1]
            tasks.append(
                ShardTask(
                    index=len(tasks),
                    source=number,
                    path=source.path,
                    fmt=source.fmt,
                    column=source.column,
                    field=source.field,
                    width=source.width,
                    first_row=first_row,
                    rows=rows,
                    first_line=first_row + 1 + source.header_lines,
                    first_id=first_id,
                    start_byte=start,
                    stop_byte=stop,
                )
            )
            first_id += rows
    return tasks
