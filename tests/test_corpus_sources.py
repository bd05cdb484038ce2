"""Corpus sources: scanning (sha256, rows, shard offsets), the shard plan, and reading one shard alone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import paraxl.corpus.sources as sources
from paraxl.corpus.plan import ShardTask, plan_shards
from paraxl.corpus.reading import read_shard_texts
from paraxl.corpus.sources import resolve_inputs, scan_source
from paraxl.errors import InputError
from paraxl.io.text_input import read_texts


def all_shard_texts(path: Path, shard_size: int, column: str | None = None) -> list[str]:
    tasks = plan_shards([scan_source(path, None, column, shard_size)], shard_size)
    assert all(task.rows <= shard_size for task in tasks)
    return [text for task in tasks for text in read_shard_texts(ShardTask.from_json(task.to_json()))]


@pytest.mark.parametrize("block", [3, 16, 1 << 22])
@pytest.mark.parametrize("shard_size", [1, 2, 3, 7, 100])
def test_shards_read_alone_equal_the_whole_file_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, shard_size: int
) -> None:
    monkeypatch.setattr(sources, "_BLOCK", block)  # shard starts that fall across scan blocks
    lines = ["Der Hund läuft.", "猫が座った", "a\tb", "le chat", "x" * 40, "ß", "the end"]
    files = {
        "bom.txt": b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n",
        "crlf_no_final_newline.txt": "\r\n".join(lines).encode(),
        "table.tsv": ("id\ttext\n" + "".join(f"{i}\t{t.replace(chr(9), ' ')}\n" for i, t in enumerate(lines))).encode(),
        "objects.jsonl": "".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(lines)).encode(),
    }
    for name, raw in files.items():
        path = tmp_path / name
        path.write_bytes(raw)
        assert all_shard_texts(path, shard_size) == read_texts(path)  # the whole-file reader is the oracle
        scanned = scan_source(path, None, None, shard_size)
        assert scanned.sha256 == hashlib.sha256(raw).hexdigest() and scanned.rows == len(lines)


def test_parquet_shards_cross_row_groups(tmp_path: Path) -> None:
    texts = [f"sentence {i}" for i in range(23)]
    pq.write_table(pa.table({"id": list(range(23)), "body": texts}), tmp_path / "t.parquet", row_group_size=5)
    for shard_size in (1, 4, 5, 9, 50):
        assert all_shard_texts(tmp_path / "t.parquet", shard_size, column="body") == texts
    with pytest.raises(InputError, match="no column 'text'"):
        scan_source(tmp_path / "t.parquet", None, None, 4)
    with pytest.raises(InputError, match="expected strings"):
        scan_source(tmp_path / "t.parquet", None, "id", 4)
    pq.write_table(pa.table({"text": ["fine", None]}), tmp_path / "n.parquet")
    with pytest.raises(InputError, match=r"n\.parquet:2: empty text"):
        all_shard_texts(tmp_path / "n.parquet", 10)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.txt", b"good\n\xff bad\n", r"a\.txt:2: not valid UTF-8"),
        ("a.txt", b"good\n\nafter\n", r"a\.txt:2: empty text"),
        ("t.tsv", b"id\ttext\n1\tfine\n2\n", r"t\.tsv:3: expected 2 tab-separated fields, found 1"),
        ("o.jsonl", b'{"text": "fine"}\n[1]\n', r"o\.jsonl:2: expected a JSON object"),
        ("o.jsonl", b'{"text": "fine"}\n{"other": 1}\n', r"o\.jsonl:2: no key 'text'"),
        ("o.jsonl", b'{"text": "fine"}\n{"text": 1}\n', r"o\.jsonl:2: key 'text' holds int"),
        ("o.jsonl", b'{"text": "fine"}\n{"text": \n', r"o\.jsonl:2: invalid JSON"),
    ],
)
def test_a_bad_row_names_file_and_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=message):
        all_shard_texts(tmp_path / name, 1)


def test_scan_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "header.tsv").write_text("text\n")
    (tmp_path / "t.tsv").write_text("id\tbody\n1\tx\n")
    (tmp_path / "a.txt").write_text("x\n")
    (tmp_path / "a.csv").write_text("x\n")
    for path, column, message in [
        ("empty.txt", None, "no texts found"),
        ("header.tsv", None, "no texts found"),
        ("t.tsv", None, r"t\.tsv:1: no column 'text'"),
        ("a.txt", "text", "--column applies to tsv, jsonl and parquet"),
        ("a.csv", None, "cannot tell the format"),
    ]:
        with pytest.raises(InputError, match=message):
            scan_source(tmp_path / path, None, column, 4)


def test_inputs_are_files_folders_and_patterns_each_once(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.txt", "a.jsonl", "sub/c.tsv", "notes.md"):
        (tmp_path / name).write_text("x\n")
    found = resolve_inputs([tmp_path / "b.txt", tmp_path, str(tmp_path / "*.txt")])
    names = [path.relative_to(tmp_path).as_posix() for path in found]
    assert names == ["b.txt", "a.jsonl", "sub/c.tsv"]
    with pytest.raises(InputError, match="matches no file"):
        resolve_inputs([str(tmp_path / "*.parquet")])
    with pytest.raises(InputError, match="no such file"):
        resolve_inputs([tmp_path / "missing.txt"])
