"""Read one shard's texts: its byte range of a text file, or its row range of a parquet file.

Rows are checked here, in the worker, with the errors of :mod:`paraxl.io.text_input`: an empty
text, a line that is not UTF-8, a tsv row of the wrong width, JSON that is no object or lacks the
key; each names the file and its 1-based line (a parquet file: its 1-based row).
"""

from __future__ import annotations

import json
from pathlib import Path

from paraxl.corpus.plan import ShardTask
from paraxl.errors import InputError
from paraxl.io.text_input import check_unicode


def read_shard_texts(task: ShardTask) -> list[str]:
    """The shard's ``task.rows`` texts in order; :class:`InputError` at the first bad row."""
    if task.fmt == "parquet":
        return _parquet_texts(task)
    with open(task.path, "rb") as handle:
        handle.seek(task.start_byte)
        raw = handle.read(task.stop_byte - task.start_byte)
    if task.start_byte == 0:
        raw = raw.removeprefix(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline ending the shard's last row
    if len(lines) != task.rows:
        raise InputError(f"the file changed while being read (expected {task.rows} rows)", task.path)
    return [_parse(chunk, task, task.first_line + offset) for offset, chunk in enumerate(lines)]


def _parse(chunk: bytes, task: ShardTask, line: int) -> str:
    try:
        text = chunk.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 (byte {exc.start + 1} of the line)", task.path, line) from None
    if task.fmt == "tsv":
        fields = text.split("\t")
        if len(fields) != task.width:
            raise InputError(f"expected {task.width} tab-separated fields, found {len(fields)}", task.path, line)
        text = fields[task.field]
    elif task.fmt == "jsonl":
        text = _json_text(text, task, line)
    if not text.strip():
        raise InputError("empty text", task.path, line)
    return check_unicode(text, "the text", Path(task.path), line)


def _json_text(text: str, task: ShardTask, line: int) -> str:
    key = task.column or "text"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON ({exc.msg} at column {exc.colno})", task.path, line) from None
    except (ValueError, RecursionError) as exc:  # over-long integers, absurd nesting
        raise InputError(f"invalid JSON ({type(exc).__name__})", task.path, line) from None
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, found {type(record).__name__}", task.path, line)
    if key not in record:
        raise InputError(f"no key {key!r} in the object; pass --column", task.path, line)
    value = record[key]
    if not isinstance(value, str):
        raise InputError(f"key {key!r} holds {type(value).__name__}, expected a string", task.path, line)
    return value


def _parquet_texts(task: ShardTask) -> list[str]:
    """Rows ``[first_row, first_row + rows)`` of the column, reading only the row groups they lie in."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(task.path)
    stop = task.first_row + task.rows
    values: list[str | None] = []
    group_start = 0
    for group in range(parquet.metadata.num_row_groups):
        group_rows = parquet.metadata.row_group(group).num_rows
        low, high = max(task.first_row, group_start), min(stop, group_start + group_rows)
        if low < high:
            table = parquet.read_row_group(group, columns=[task.column or "text"])
            values.extend(table.column(0).slice(low - group_start, high - low).to_pylist())
        group_start += group_rows
    texts = []
    for offset, value in enumerate(values):
        row = task.first_line + offset
        if value is None or not value.strip():
            raise InputError("empty text (row of the parquet file)", task.path, row)
        texts.append(check_unicode(value, "the text", Path(task.path), row))
    return texts
