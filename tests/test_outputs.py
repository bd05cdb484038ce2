from __future__ import annotations

from pathlib import Path

from paraxl.io.outputs import tsv_field, write_tsv
from paraxl.io.text_input import read_pairs


def test_write_tsv_keeps_quotes_and_backslashes_and_escapes_only_row_breakers(tmp_path: Path) -> None:
    texts = ['He said "yes".', r"C:\path\to", "tab\there", "two\nlines", "cr\rhere", "naïve 猫"]
    path = tmp_path / "out.tsv"
    write_tsv(path, ["text", "n"], [(text, number) for number, text in enumerate(texts)])
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "text\tn"
    assert lines[1:3] == ['He said "yes".\t0', r"C:\path\to" + "\t1"]
    assert lines[3:6] == [r"tab\there" + "\t2", r"two\nlines" + "\t3", r"cr\rhere" + "\t4"]
    assert lines[6:] == ["naïve 猫\t5", ""]
    assert tsv_field(1.5) == "1.5"


def test_pairs_written_by_write_tsv_read_back_unchanged(tmp_path: Path) -> None:
    pairs = [('a "quoted" one', r"back\slash"), ("plain", "text")]
    path = tmp_path / "pairs.tsv"
    write_tsv(path, ["sentence1", "sentence2"], pairs)
    assert [(p.first, p.second) for p in read_pairs(path)] == pairs


def test_atomic_outputs_get_normal_file_rights(tmp_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        path = tmp_path / "rights.tsv"
        write_tsv(path, ["a"], [("b",)])
        assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    finally:
        os.umask(umask)
