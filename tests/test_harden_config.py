"""Issue 27, fail 7: every numeric field of the training config is finite and in range.

Each numeric field of every section (and of every kind of the ``loss:`` and ``data:`` sections)
is given ``.inf``, ``-.inf`` and ``.nan``, once as a ``paraxl train CONFIG key=value`` override and
once in the YAML file; both are refused through the real CLI with one line that names the key
(and the YAML line), exit code 2 and no traceback.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.training.config import TrainConfig
from paraxl.training.config_errors import union_kinds

runner = CliRunner()

NON_FINITE = (".inf", "-.inf", ".nan")

# what a section needs besides the field under test to be valid (so the field's error comes first)
_BASE: dict[str, Any] = {"data": {"kind": "pairs", "paths": ["a.tsv"]}, "output_dir": "runs/never", "max_steps": 2}
_SECTION_NEEDS: dict[str, dict[str, Any]] = {
    "validation": {"kind": "pawsx"},
    "distill": {"scores": "scores.tsv"},
    "data:pairs": {"kind": "pairs", "paths": ["a.tsv"]},
    "data:parallel": {"kind": "parallel", "paths": ["a.txt", "b.txt"]},
}


def _is_numeric(field: FieldInfo) -> bool:
    options = get_args(field.annotation) if get_origin(field.annotation) in (Union, types.UnionType) else ()
    candidates = [field.annotation, *options]
    return any(c in (int, float) for c in candidates)


def _nested_model(field: FieldInfo) -> type[BaseModel] | None:
    options = get_args(field.annotation) if get_origin(field.annotation) in (Union, types.UnionType) else ()
    for candidate in (field.annotation, *options):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def numeric_fields() -> Iterator[tuple[str, str | None, str]]:
    """``(section, kind, key)`` for every numeric field; section "" is the top level."""
    for name, field in TrainConfig.model_fields.items():
        if _is_numeric(field):
            yield "", None, name
        kinds = union_kinds(field)
        sections = kinds.items() if kinds is not None else []
        nested = _nested_model(field)
        if kinds is None and nested is not None:
            sections = [(None, nested)]  # type: ignore[list-item]
        for kind, model in sections:
            for key, inner in model.model_fields.items():
                if _is_numeric(inner):
                    yield name, kind, key


FIELDS = sorted(set(numeric_fields()), key=str)


def _config(section: str, kind: str | None, value: object = None, key: str | None = None) -> dict[str, Any]:
    """A valid config whose ``section`` (of ``kind``) exists; ``key: value`` set in it when given."""
    raw: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in _BASE.items()}
    if section:
        needs = _SECTION_NEEDS.get(f"{section}:{kind}", _SECTION_NEEDS.get(section, {}))
        raw[section] = dict(needs) | ({"kind": kind} if kind else {})
    if not section and key == "epochs":
        raw.pop("max_steps")  # exactly one of the two
    if key is not None:
        target = raw[section] if section else raw
        target[key] = value
    return raw


def _invoke(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, args)
    return result.exit_code, result.stderr + result.stdout


def _assert_refused(code: int, output: str, dotted: str) -> None:
    assert code == 2, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert dotted in lines[0] and "finite number" in lines[0], lines[0]


def test_every_numeric_field_is_tested() -> None:
    """The walk finds every section's numbers (a new field is tested without editing this file)."""
    found = {(section, key) for section, _, key in FIELDS}
    for expected in [("", "epochs"), ("", "seed"), ("optim", "lr"), ("loss", "margin"), ("mining", "ceiling")]:
        assert expected in found
    assert ("data", "translation_positives") in found and ("distill", "scale") in found


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(("section", "kind", "key"), FIELDS, ids=lambda v: str(v))
def test_non_finite_override_is_refused(section: str, kind: str | None, key: str, value: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    raw = _config(section, kind)
    if not section and key == "epochs":
        raw.pop("max_steps")  # exactly one of the two
    path.write_text(yaml.safe_dump(raw))
    dotted = f"{section}.{key}" if section else key
    code, output = _invoke(["train", str(path), f"{dotted}={value}"])
    _assert_refused(code, output, dotted)
    assert f"override '{dotted}={value}'" in output


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(("section", "kind", "key"), FIELDS, ids=lambda v: str(v))
def test_non_finite_yaml_value_is_refused(section: str, kind: str | None, key: str, value: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    text = yaml.safe_dump(_config(section, kind, "PLACEHOLDER", key)).replace("PLACEHOLDER", value)
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.strip().startswith(f"{key}: {value}"))
    dotted = f"{section}.{key}" if section else key
    code, output = _invoke(["train", str(path)])
    _assert_refused(code, output, dotted)
    assert f"config.yaml:{line}:" in output


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("epochs=1e308", "epochs"),  # finite, but epochs x steps per epoch overflows
        ("seed=-1", "seed"),  # numpy's generators refuse negative seeds
        (f"seed={2**64}", "seed"),  # torch.manual_seed overflows
        ("mining.ceiling=1.5", "mining.ceiling"),  # a cosine
        ("mining.relative_ceiling=-3", "mining.relative_ceiling"),  # a difference of cosines
    ],
)
def test_out_of_range_numbers_are_refused(override: str, key: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    raw = _config("", None)
    path.write_text(yaml.safe_dump(raw))
    code, output = _invoke(["train", str(path), override])
    assert code == 2, output
    assert "Traceback" not in output
    assert f"override '{override}': {key}:" in output


def test_benchmark_data_without_a_data_folder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`data: {kind: pawsx}` with neither --data-dir nor $PARAXL_DATA_DIR: one line, not an AssertionError."""
    monkeypatch.delenv("PARAXL_DATA_DIR", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_BASE | {"data": {"kind": "pawsx"}, "output_dir": str(tmp_path / "run")}))
    code, output = _invoke(["train", str(path)])
    assert code == 2, output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1
    assert "data kind pawsx reads the benchmark data folder" in output
