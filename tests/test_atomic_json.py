"""``io.atomic.write_json_atomic``: the bytes ``json.dumps`` (the oracle) gives, written atomically; and
``read_json_record``, which reads them back or says None."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from paraxl.io.atomic import write_json_atomic

VALUE = {"b": [1, 2.5, None], "a": {"text": "Ação 猫", "flag": True}, "empty": {}}


# the settings of the writers folded into the helper (indent, ensure_ascii, allow_nan, trailing newline)
@pytest.mark.parametrize(
    "options",
    [
        {"indent": 2},  # onnx manifest, run files, calibration, two-model rule (allow_nan=False)
        {"indent": 1},  # corpus manifest
        {"indent": 1, "ensure_ascii": False, "allow_nan": False},  # result documents, eval profile
        {"allow_nan": False},  # cross-encoder resume state
        {"indent": 2, "trailing_newline": False},  # experiment records, reports, st baseline summary
        {"sort_keys": True},
    ],
)
def test_bytes_are_json_dumps(tmp_path: Path, options: dict[str, Any]) -> None:
    newline = options.pop("trailing_newline", True)
    target = tmp_path / "deep" / "out.json"  # a missing parent is made, as atomic_path does
    write_json_atomic(target, VALUE, trailing_newline=newline, **options)
    expected = json.dumps(VALUE, **options) + ("\n" if newline else "")
    assert target.read_bytes() == expected.encode("utf-8")
    assert json.loads(target.read_text(encoding="utf-8")) == VALUE
    assert os.listdir(target.parent) == ["out.json"]  # no temporary file left


def test_replaces_an_existing_file_with_normal_rights(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old", encoding="utf-8")
    write_json_atomic(target, [1])
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text(encoding="utf-8") == "[1]\n"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_a_value_json_cannot_hold_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(ValueError, match="Out of range float"):
        write_json_atomic(target, {"score": math.nan}, allow_nan=False)
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json_atomic(target, {"path": tmp_path})
    assert target.read_text(encoding="utf-8") == "old" and os.listdir(tmp_path) == ["out.json"]
    write_json_atomic(target, {"score": math.nan})  # json's default allows NaN
    assert target.read_text(encoding="utf-8") == '{"score": NaN}\n'


def test_read_json_record_gives_what_was_written_or_none(tmp_path: Path) -> None:
    from paraxl.io.atomic import read_json_record

    path = tmp_path / "job.json"
    assert read_json_record(path) is None  # missing
    write_json_atomic(path, {"k": 3, "shards": ["a", "b"]})
    assert read_json_record(path) == {"k": 3, "shards": ["a", "b"]}
    path.write_text(path.read_text()[:7], encoding="utf-8")  # cut short
    assert read_json_record(path) is None
    path.write_bytes(b'{"k": "\xff"}')  # not UTF-8
    assert read_json_record(path) is None
    path.unlink()
    path.mkdir()  # a folder where the record should be
    assert read_json_record(path) is None
