"""The house rules that keep paraxl readable, checked on the source tree itself.

The import layering is checked by import-linter (``make lint`` runs ``lint-imports`` with the
contracts in pyproject.toml); this file checks what import-linter cannot see: scripts under
``benchmarks/`` never import the tests, and modules and functions stay small.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "paraxl"
MAX_MODULE_LINES = 420  # "about 400": a module that grows past it should split
MAX_BODY_LINES = 60  # a function's body, without its signature and docstring (Typer commands
# declare every option in the signature, which says nothing about how much the function does)


def _python_files(*folders: Path) -> list[Path]:
    return sorted(path for folder in folders for path in folder.rglob("*.py"))


def _imported_modules(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _body_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = function.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1:
        body = body[1:]  # the docstring
    return int(function.end_lineno or 0) - body[0].lineno + 1


def test_nothing_under_src_or_benchmarks_imports_the_tests() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _python_files(SOURCE, ROOT / "benchmarks")
        for name in _imported_modules(ast.parse(path.read_text(encoding="utf-8")))
        if name == "tests" or name.startswith("tests.")
    ]
    assert offenders == []


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in _python_files(SOURCE)
        if (lines := path.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert long == {}


def test_functions_stay_short() -> None:
    long = {}
    for path in _python_files(SOURCE):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body_lines(node) > MAX_BODY_LINES:
                long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = _body_lines(node)
    assert long == {}


def test_the_size_checks_can_fail(tmp_path: Path) -> None:
    source = "def f():\n    '''doc'''\n" + "    x = 1\n" * (MAX_BODY_LINES + 1)
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    assert _body_lines(function) == MAX_BODY_LINES + 1
    assert _imported_modules(ast.parse("from tests.tiny import save_tiny\nimport tests")) == ["tests.tiny", "tests"]


def test_importing_paraxl_loads_no_torch() -> None:
    # a fresh interpreter: this test process has torch loaded already
    code = "import sys, paraxl; print(paraxl.__version__); assert 'torch' not in sys.modules, 'torch loaded'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["BiEncoder", "DEFAULT_MODEL", "load_encoder", "load_model", "LoadedModel"])
def test_the_lazy_public_names_resolve(name: str) -> None:
    paraxl = importlib.import_module("paraxl")
    assert getattr(paraxl, name) is not None
    assert name in paraxl.__all__


def test_an_unknown_public_name_is_an_attribute_error() -> None:
    paraxl = importlib.import_module("paraxl")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = paraxl.nope
