from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paraxl.errors import InputError
from paraxl.io.text_input import read_pairs, read_texts


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_formats(tmp_path: Path) -> None:
    assert read_texts(write(tmp_path, "a.txt", "\ufeffone\r\ntwo\n")) == ["one", "two"]
    assert read_texts(write(tmp_path, "a.tsv", "id\ttext\n1\tHallo\n2\tWelt\n")) == ["Hallo", "Welt"]
    assert read_texts(write(tmp_path, "b.tsv", "sentence\nonly\n")) == ["only"]
    assert read_texts(write(tmp_path, "c.tsv", "a\tb\nx\ty\n"), column="b") == ["y"]
    assert read_texts(write(tmp_path, "a.jsonl", '{"text": "x"}\n{"text": "y", "id": 2}\n')) == ["x", "y"]
    pairs = read_pairs(write(tmp_path, "p.tsv", "id\tsentence1\tsentence2\tlabel\n1\ta\tb\t0\n"))
    assert [(p.first, p.second, p.line) for p in pairs] == [("a", "b", 2)]
    assert [(p.first, p.second) for p in read_pairs(write(tmp_path, "q.tsv", "a\tb\nc\td\n"))] == [
        ("a", "b"),
        ("c", "d"),
    ]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("e.txt", "fine\n\nnext\n", "e.txt:2: empty text"),
        ("e2.txt", "   \n", "e2.txt:1: empty text"),
        ("u.txt", b"ok\n\xff\xfebad\n", "u.txt:2: not valid UTF-8"),
        ("w.tsv", "id\ttext\n1\tx\n2\n", "w.tsv:3: expected 2 tab-separated fields, found 1"),
        ("c.tsv", "id\tbody\n1\tx\n", "c.tsv:1: no column 'text'"),
        ("j.jsonl", '{"text": "a"}\n[1]\n', "j.jsonl:2: expected a JSON object"),
        ("k.jsonl", '{"text": 3}\n', "k.jsonl:1: key 'text' holds int"),
        ("m.jsonl", "{bad\n", "m.jsonl:1: invalid JSON"),
        ("z.txt", "", "z.txt: no texts found"),
        ("x.csv", "a\n", "cannot tell the format"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, name: str, data: bytes | str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        read_texts(write(tmp_path, name, data))
    assert message in str(caught.value)


def test_pair_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"p.tsv:2: expected 2 tab-separated fields, found 3"):
        read_pairs(write(tmp_path, "p.tsv", "a\tb\nc\td\te\n"))
    with pytest.raises(InputError, match=r"q.tsv:2: empty text"):
        read_pairs(write(tmp_path, "q.tsv", "sentence1\tsentence2\n\tx\n"))
    with pytest.raises(InputError, match="no such file"):
        read_pairs(tmp_path / "missing.tsv")
    with pytest.raises(InputError, match="is a directory"):
        read_texts(tmp_path, fmt="txt")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(lambda s: s.encode("utf-8"))))
def test_readers_yield_texts_or_raise_input_error(tmp_path: Path, data: bytes) -> None:
    for name in ("h.txt", "h.tsv", "h.jsonl"):
        path = write(tmp_path, name, data)
        try:
            texts = read_texts(path)
        except InputError:
            continue
        assert texts and all(isinstance(t, str) and t.strip() for t in texts)
    try:
        pairs = read_pairs(write(tmp_path, "pairs.tsv", data))
    except InputError:
        return
    assert all(p.first.strip() and p.second.strip() for p in pairs)
