"""User text in CLI messages is printed as text, never read as Rich markup (issue 27, fail 4).

Paths, column names, texts and model specs reach the terminal through Rich; each case below went
through Rich's markup parser before the fix (a MarkupError inside the error handler, a crash after the
output was written, or a path reported under another name). The property tests feed arbitrary strings
(markup, control characters, lone surrogates, newlines) to the error paths of the real entry point.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from paraxl.cli.main import app

runner = CliRunner()
MARKUP = ["[/x]", "[bold red]secret[/bold red]", "[/]", "[link=http://x]y[/link]", "[", "]", "\\[b]"]


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, out: str, err: str) -> str:
    """Exit 2, one non-empty line on stderr that starts with ``error:``, no traceback anywhere."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err and "MarkupError" not in out + err
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


@pytest.fixture()
def model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def test_markup_in_a_tsv_header_with_a_bad_column(model: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("[/x]\tother\nhello\tworld\n", encoding="utf-8")
    code, out, err = run("encode", str(source), "-o", str(tmp_path / "out.npy"), "-m", str(model), "--column", "nope")
    err = assert_one_line_error(code, out, err)
    assert "'nope'" in err and "'[/x]'" in err


def test_markup_in_the_similarity_output_path(model: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "[/x].tsv"
    code, out, err = run("similarity", "the cat", "le chat", "-o", str(target), "-m", str(model))
    assert code == 0, (out, err)
    assert target.is_file() and "Traceback" not in out + err
    assert f"wrote 1 scores to {target}" in out


def test_a_path_with_markup_is_reported_under_its_own_name(model: Path, tmp_path: Path) -> None:
    missing = tmp_path / "[bold red]secret[/bold red].txt"
    code, out, err = run("encode", str(missing), "-o", str(tmp_path / "out.npy"), "-m", str(model))
    err = assert_one_line_error(code, out, err)
    assert f"{missing}: no such file" in err


def test_markup_in_a_model_spec_is_printed_as_is(tmp_path: Path) -> None:
    spec = str(tmp_path / "[bold]models[/bold]" / "[/x]")
    code, out, err = run("encode", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.npy"), "-m", spec)
    assert_one_line_error(code, out, err)
    (tmp_path / "in.txt").write_text("hello\n", encoding="utf-8")
    code, out, err = run("encode", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.npy"), "-m", spec)
    assert "[/x]" in assert_one_line_error(code, out, err)


# -- properties: arbitrary user strings on the error paths --------------------------------------------

# markup fragments, control characters, lone surrogates and newlines, mixed with plain text
USER_TEXT = st.one_of(
    st.sampled_from(MARKUP),
    st.text(alphabet=st.characters(codec=None, exclude_characters="\x00/"), max_size=30),
    st.lists(
        st.sampled_from([*MARKUP, "\n", "\r", "\t", "\x1b[31m", "\x07", "\ud800", "\udcff", "é", "猫", "x", " "]),
        max_size=8,
    ).map("".join),
)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def name_part(text: str) -> str:
    """``text`` usable inside one path component (no separator, no NUL, not empty).

    Surrogates other than U+DC80..U+DCFF go too: a real command line holds only those (an
    undecodable byte, by ``surrogateescape``), and click refuses the others as a usage error.
    """
    kept = (c if not "\ud800" <= c <= "\udfff" or "\udc80" <= c <= "\udcff" else "_" for c in text)
    return "f" + "".join(kept).replace("/", "_").replace("\x00", "_")


@PROPERTY
@given(text=USER_TEXT)
def test_any_missing_input_path_is_one_line(text: str, model: Path, tmp_path: Path) -> None:
    missing = tmp_path / f"{name_part(text)}.txt"
    code, out, err = run("encode", str(missing), "-o", str(tmp_path / "out.npy"), "-m", str(model))
    assert_one_line_error(code, out, err)


@PROPERTY
@given(header=USER_TEXT, column=USER_TEXT)
def test_any_header_and_column_is_one_line(header: str, column: str, model: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    source.write_bytes((header + "\nhello\n").encode("utf-8", errors="surrogatepass"))
    wanted = column + "\x7f?"  # never a column of the header
    code, out, err = run("encode", str(source), "-o", str(tmp_path / "out.npy"), "-m", str(model), "--column", wanted)
    assert_one_line_error(code, out, err)


@PROPERTY
@given(folder=USER_TEXT, text=USER_TEXT)
def test_similarity_into_a_missing_folder(folder: str, text: str, model: Path, tmp_path: Path) -> None:
    # a fresh folder per example: the fixture's tmp_path is shared by all of them
    target = Path(tempfile.mkdtemp(dir=tmp_path)) / f"missing-{name_part(folder)}" / "out.tsv"
    code, out, err = run("similarity", f"a {text}", "b", "-o", str(target), "-m", str(model))
    assert "Traceback" not in out + err and "MarkupError" not in out + err
    if code == 0:  # a valid text and a folder the writer may create
        assert target.is_file() and out.startswith("wrote 1 scores to ")
    else:
        assert_one_line_error(code, out, err)
        assert not target.exists()


@PROPERTY
@given(spec=USER_TEXT)
def test_pi_with_any_bad_model_spec(spec: str, tmp_path: Path) -> None:
    for bad in (str(tmp_path / f"no-{name_part(spec)}"), f"bundled:{spec}"):
        code, out, err = run("pi", bad, "the cat", "le chat", "--threshold", "0.5")
        assert_one_line_error(code, out, err)
