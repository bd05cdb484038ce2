"""Data-folder symlinks and file contents in error messages (issue 27, weak).

A benchmark file linked to a file outside the data folder was read, and the target's first line came
back in the error message ("no column 'sentence1' in header ['root:x:0:0:...']"). Now a file whose
real location is outside the data folder is refused by name, before it is read; and what an error
quotes of a file (a header, a bad value) is clipped to a short excerpt: enough to find the line and
column, never a whole line of someone else's file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.data.readers import read_pawsx_pairs, read_xnli
from paraxl.errors import InputError
from paraxl.evaluation.loaders.sts import read_korsts
from paraxl.io.rows import iter_rows
from paraxl.io.text_input import read_texts

from .eval_fixtures import write_benchmark_data

SECRET = "secret-first-line:x:0:0:do-not-print"
runner = CliRunner()


@pytest.fixture()
def bench_dir(tmp_path: Path) -> Path:
    return write_benchmark_data(tmp_path / "data")


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A file outside the data folder whose first line must never be printed."""
    path = tmp_path / "elsewhere" / "private.txt"
    path.parent.mkdir()
    path.write_text(SECRET + "\nsecond line\n", encoding="utf-8")
    return path


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    path.symlink_to(target)


def test_a_pawsx_file_linked_out_of_the_data_folder_is_refused_unread(bench_dir: Path, outside: Path) -> None:
    train = bench_dir / "pawsx" / "resplit" / "en" / "validation.tsv"
    link(train, outside)
    with pytest.raises(InputError) as caught:
        read_pawsx_pairs(bench_dir, "validation", ["en"])
    message = str(caught.value)
    assert SECRET not in message and "secret" not in message
    assert str(train) in message and "symbolic link out of the data directory" in message


def test_a_linked_folder_counts_too(bench_dir: Path, outside: Path, tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere" / "xnli"
    folder.mkdir()
    (folder / "dev-en.tsv").write_text(SECRET + "\n", encoding="utf-8")
    link(bench_dir / "xnli", folder)
    with pytest.raises(InputError, match="symbolic link out of the data directory") as caught:
        read_xnli(bench_dir, splits=("dev",), languages=("en",))
    assert SECRET not in str(caught.value)


def test_a_loader_file_linked_out_is_refused(bench_dir: Path, outside: Path) -> None:
    (bench_dir / "korsts").mkdir(exist_ok=True)
    link(bench_dir / "korsts" / "sts-dev.tsv", outside)
    with pytest.raises(InputError, match="symbolic link out of the data directory") as caught:
        read_korsts(bench_dir, "dev")
    assert SECRET not in str(caught.value)


def test_links_inside_the_data_folder_and_a_linked_data_folder_still_work(bench_dir: Path, tmp_path: Path) -> None:
    en = bench_dir / "pawsx" / "resplit" / "en"
    (en / "copy.tsv").write_bytes((en / "validation.tsv").read_bytes())
    link(en / "validation.tsv", en / "copy.tsv")  # inside the tree: fine
    alias = tmp_path / "alias"
    alias.symlink_to(bench_dir)  # the data folder itself may be a link
    assert len(read_pawsx_pairs(alias, "validation", ["en"])["en"]) == 12


def test_eval_through_the_cli_names_the_link_and_prints_none_of_its_target(
    tiny_model_dir: Path, bench_dir: Path, outside: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARAXL_CACHE_DIR", str(tmp_path / "cache"))
    link(bench_dir / "pawsx" / "resplit" / "de" / "test.tsv", outside)
    result = runner.invoke(
        app, ["eval", str(tiny_model_dir), "--tasks", "pawsx", "--data-dir", str(bench_dir), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and SECRET not in result.output
    last = result.stderr.splitlines()[-1]  # after the progress lines, the error is one line
    assert last.startswith("error: ") and "symbolic link out of the data directory" in last


def test_a_long_header_is_quoted_only_in_part(tmp_path: Path) -> None:
    path = tmp_path / "wide.tsv"
    path.write_text("x" * 30 + SECRET + "\tb\nhello\tworld\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_texts(path, "tsv", "nope")
    assert SECRET not in str(caught.value) and "'nope'" in str(caught.value) and "'b'" in str(caught.value)
    with pytest.raises(InputError) as caught:
        list(iter_rows(path, "tsv", columns=("nope",)))
    assert SECRET not in str(caught.value) and ":1: no column 'nope'" in str(caught.value)


def test_a_header_of_many_columns_is_quoted_only_in_part(tmp_path: Path) -> None:
    path = tmp_path / "many.tsv"
    path.write_text("\t".join(f"c{i}" for i in range(40)) + "\n" + "\t".join("v" * 40) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_texts(path, "tsv", "nope")
    assert "'c0'" in str(caught.value) and "'c39'" not in str(caught.value) and "40 columns" in str(caught.value)
