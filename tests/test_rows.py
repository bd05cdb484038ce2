from __future__ import annotations

import csv
import io
from contextlib import nullcontext
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paraxl.errors import InputError, ParaxlError
from paraxl.io.rows import ROW_FORMATS, RowFormat, RowPolicy, iter_lines, iter_rows, read_header

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def rows_of(path: Path, fmt: RowFormat, **kwargs: object) -> list[tuple[int, dict[str, str]]]:
    return [(row.line, row.fields) for row in iter_rows(path, fmt, **kwargs)]  # type: ignore[arg-type]


def test_tsv_with_and_without_header(tmp_path: Path) -> None:
    path = write(tmp_path, "a.tsv", "\ufeffid\ttext\r\n1\tHallo\n2\t Welt \n")
    assert rows_of(path, "tsv") == [(2, {"id": "1", "text": "Hallo"}), (3, {"id": "2", "text": " Welt "})]
    assert rows_of(path, "tsv", header=False)[0] == (1, {"0": "id", "1": "text"})
    assert rows_of(path, "tsv", header=("a", "b"))[2] == (3, {"a": "2", "b": " Welt "})
    assert read_header(path, "tsv") == ["id", "text"]


def test_csv_quoted_fields_keep_physical_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'a,b\n1,"two\nlines"\n2,"say ""hi"""\n3,x\n')
    assert rows_of(path, "csv") == [
        (2, {"a": "1", "b": "two\nlines"}),
        (4, {"a": "2", "b": 'say "hi"'}),
        (5, {"a": "3", "b": "x"}),
    ]


def test_jsonl_values(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", '{"s": "x", "label": 1, "ok": true}\n{"s": "y", "label": "0", "ok": false}\n')
    assert rows_of(path, "jsonl") == [
        (1, {"s": "x", "label": "1", "ok": "true"}),
        (2, {"s": "y", "label": "0", "ok": "false"}),
    ]
    mixed = write(tmp_path, "b.jsonl", '{"s": "x", "meta": {"a": 1}}\n{"s": "y", "id": 7}\n{"s": "z", "id": null}\n')
    policy = RowPolicy("skip")
    rows = rows_of(mixed, "jsonl", columns=("s",), optional=("id",), policy=policy)
    assert rows == [(1, {"s": "x"}), (2, {"s": "y", "id": "7"})]  # other keys may hold anything
    assert str(policy.first_errors[0]).endswith("b.jsonl:3: key 'id' holds NoneType, expected a string or an integer")


@pytest.mark.parametrize(
    ("name", "fmt", "data", "message"),
    [
        ("w.tsv", "tsv", "a\tb\n1\t2\n3\n", "w.tsv:3: expected 2 tab-separated fields, found 1"),
        ("h.tsv", "tsv", "1\t2\n3\t4\t5\n", "h.tsv:2: expected 2 tab-separated fields, found 3"),
        ("u.tsv", "tsv", b"a\n\xff\n", "u.tsv:2: not valid UTF-8 (byte 1 of the line)"),
        ("q.csv", "csv", 'a,b\n1,"x"y\n', "q.csv:2: malformed CSV"),
        ("e.csv", "csv", 'a,b\n1,"open\n\n', "e.csv:2: malformed CSV"),
        ("c.csv", "csv", "a,b\n1,2,3\n", "c.csv:2: expected 2 comma-separated fields, found 3"),
        ("cu.csv", "csv", b'a,b\n1,"x\n\xfe"\n', "cu.csv:3: not valid UTF-8"),
        ("j.jsonl", "jsonl", '{"a": "x"}\n[1]\n', "j.jsonl:2: expected a JSON object, found list"),
        ("f.jsonl", "jsonl", '{"a": 1.5}\n', "f.jsonl:1: key 'a' holds float, expected a string or an integer"),
        ("n.jsonl", "jsonl", '{"a": null}\n', "n.jsonl:1: key 'a' holds NoneType"),
        ("s.jsonl", "jsonl", '{"a": "\\ud800"}\n', "s.jsonl:1: key 'a' holds a lone surrogate"),
        ("b.jsonl", "jsonl", "{bad\n", "b.jsonl:1: invalid JSON"),
        ("big.jsonl", "jsonl", '{"a": ' + "9" * 5000 + "}\n", "big.jsonl:1: invalid JSON"),
        ("deep.jsonl", "jsonl", "[" * 100_000 + "\n", "deep.jsonl:1: invalid JSON"),
    ],
)
def test_bad_rows_raise_with_file_and_line(tmp_path: Path, name: str, fmt: RowFormat, data: str, message: str) -> None:
    path = write(tmp_path, name, data)
    with pytest.raises(InputError) as caught:
        list(iter_rows(path, fmt, header=name != "h.tsv"))
    assert message in str(caught.value)


def test_skip_policy_counts_and_keeps_the_first_errors(tmp_path: Path) -> None:
    lines = ["a\tb"] + [f"{i}\tx" if i % 2 else f"{i}" for i in range(20)]
    path = write(tmp_path, "s.tsv", "\n".join(lines) + "\n")
    policy = RowPolicy("skip")
    good = list(iter_rows(path, "tsv", policy=policy))
    assert [row.fields["a"] for row in good] == [str(i) for i in range(1, 20, 2)]
    assert policy.skipped == 10 and len(policy.first_errors) == RowPolicy.KEEP
    assert str(policy.first_errors[0]) == f"{path}:2: expected 2 tab-separated fields, found 1"
    assert "skipped 10 malformed row(s)" in policy.summary()


def test_skip_policy_resynchronises_after_bad_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", b'a,b\n1,"x"y\n2,\xff\n3,"ok\nstill"\n4,z\n')
    policy = RowPolicy("skip")
    assert rows_of(path, "csv", policy=policy) == [(4, {"a": "3", "b": "ok\nstill"}), (6, {"a": "4", "b": "z"})]
    assert policy.skipped == 2


@pytest.mark.parametrize("fmt", ROW_FORMATS)
def test_file_problems_raise_even_when_skipping(tmp_path: Path, fmt: RowFormat) -> None:
    policy = RowPolicy("skip")
    for path, message in [
        (tmp_path / "missing", "no such file"),
        (tmp_path, "is a directory"),
        (write(tmp_path, "empty", b"\xef\xbb\xbf"), "the file is empty"),
    ]:
        with pytest.raises(InputError, match=message):
            list(iter_rows(path, fmt, policy=policy))


def test_header_problems_raise_even_when_skipping(tmp_path: Path) -> None:
    policy = RowPolicy("skip")
    with pytest.raises(InputError, match=r"h.tsv:1: unreadable header: not valid UTF-8"):
        list(iter_rows(write(tmp_path, "h.tsv", b"\xffa\tb\n1\t2\n"), "tsv", policy=policy))
    with pytest.raises(InputError, match=r"d.tsv:1: column 'a' appears twice"):
        list(iter_rows(write(tmp_path, "d.tsv", "a\ta\n"), "tsv", policy=policy))
    with pytest.raises(InputError, match=r"m.csv:1: no column 'text' in header \['a', 'b'\]"):
        list(iter_rows(write(tmp_path, "m.csv", "a,b\n"), "csv", columns=("text",), policy=policy))
    with pytest.raises(InputError, match="unknown row error policy"):
        RowPolicy("ignore")  # type: ignore[arg-type]


def test_iter_lines_is_strict(tmp_path: Path) -> None:
    assert list(iter_lines(write(tmp_path, "a.txt", "x\r\ny\n"))) == [(1, "x"), (2, "y")]
    with pytest.raises(InputError, match=r"a\.txt:2: not valid UTF-8"):
        list(iter_lines(write(tmp_path, "a.txt", b"x\n\xc3\n")))


def count_lines(data: bytes) -> int:
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    return len(lines) - (lines[-1] == b"")


@FAST
@given(
    data=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(lambda s: s.encode("utf-8"))),
    header=st.booleans(),
)
def test_any_bytes_give_rows_or_input_errors(tmp_path: Path, data: bytes, header: bool) -> None:
    for fmt in ROW_FORMATS:
        path = write(tmp_path, f"any.{fmt}", data)
        policy = RowPolicy("skip")
        try:
            rows = list(iter_rows(path, fmt, header=header, policy=policy))
        except ParaxlError:
            continue
        assert all(isinstance(value, str) for row in rows for value in row.fields.values())
        assert [row.line for row in rows] == sorted({row.line for row in rows})
        if fmt != "csv":  # one row per line (less the header)
            assert len(rows) + policy.skipped == count_lines(data) - (header and fmt != "jsonl")
        with pytest.raises(InputError) if policy.skipped else nullcontext():
            list(iter_rows(path, fmt, header=header))  # raise mode fails exactly when something was skipped


cell = st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=12)


@FAST
@given(table=st.lists(st.lists(cell, min_size=2, max_size=2), min_size=1, max_size=8))
def test_csv_round_trip_with_line_numbers(tmp_path: Path, table: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["a", "b"])
    starts, line = [], 2
    for record in table:
        starts.append(line)
        before = buffer.tell()
        writer.writerow(record)
        line += buffer.getvalue()[before:].count("\n")
    path = write(tmp_path, "rt.csv", buffer.getvalue())
    rows = list(iter_rows(path, "csv"))
    assert [[row.fields["a"], row.fields["b"]] for row in rows] == table
    assert [row.line for row in rows] == starts
