"""Issue 27: a bad output location is one line before any work, and every output gets one file mode.

Outputs are checked by ``paraxl.io.outputs.check_output`` before a model loads or data is read:
the parent must be (or be creatable in) a writable folder, a file output must not be a folder,
and a folder output must not be a file. The model given to most commands below does not exist,
so the error can only be the output's: the check ran first.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.errors import InputError
from paraxl.io.outputs import check_output
from paraxl.modeling.bi_encoder import BiEncoder

from .training_helpers import write_pairs

runner = CliRunner()
PARAXL = Path(sys.executable).with_name("paraxl")


def assert_output_error(args: list[str], *fragments: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    texts = tmp_path / "in.txt"
    texts.write_text("the cat\nle chat\n", encoding="utf-8")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("sentence1\tsentence2\nthe cat\tle chat\n", encoding="utf-8")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    return {"texts": texts, "pairs": pairs, "file": blocker, "nomodel": tmp_path / "no-such-model"}


def test_file_outputs_under_a_file_fail_before_the_model_loads(inputs: dict[str, Path], tmp_path: Path) -> None:
    texts, pairs, blocker, nomodel = (str(inputs[key]) for key in ("texts", "pairs", "file", "nomodel"))
    under = f"{blocker}/out"
    cases = [
        ["encode", texts, "-o", f"{under}.npy", "-m", nomodel],
        ["similarity", "--pairs", pairs, "-o", f"{under}.tsv", "-m", nomodel],
        ["mine", texts, texts, "-o", f"{under}.tsv", "-m", nomodel],
        ["pi", nomodel, "--pairs", pairs, "--threshold", "0.5", "-o", f"{under}.tsv"],
        ["index", "build", texts, "-o", f"{under}-index", "-m", nomodel],
        ["soup", nomodel, nomodel + "2", "-o", f"{under}-soup"],
    ]
    for args in cases:
        assert_output_error(args, blocker, "not a folder")


def test_search_output_under_a_file_fails_before_searching(tiny_model_dir: Path, inputs: dict[str, Path]) -> None:
    index = inputs["texts"].parent / "index"
    result = runner.invoke(app, ["index", "build", str(inputs["texts"]), "-o", str(index), "-m", str(tiny_model_dir)])
    assert result.exit_code == 0, result.stderr
    assert_output_error(["search", str(index), "the cat", "-o", f"{inputs['file']}/hits.tsv"], "not a folder")


def test_a_file_output_that_is_a_folder_is_refused(inputs: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "folder.npy"
    folder.mkdir()
    assert_output_error(["encode", str(inputs["texts"]), "-o", str(folder), "-m", str(inputs["nomodel"])], "folder")


def test_eval_output_that_is_a_file_fails_before_any_work(inputs: dict[str, Path]) -> None:
    args = ["eval", str(inputs["nomodel"]), "--tasks", "pawsx", "--data-dir", str(inputs["file"].parent / "nodata")]
    assert_output_error([*args, "-o", str(inputs["file"])], str(inputs["file"]), "file")


def test_train_output_dir_that_is_a_file_fails_before_training(
    tiny_model_dir: Path, inputs: dict[str, Path], tmp_path: Path
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        json.dumps(
            {
                "model": {"name": str(tiny_model_dir), "max_seq_length": 32},
                "data": {"kind": "pairs", "paths": [str(write_pairs(tmp_path / "train.tsv"))]},
                "output_dir": str(inputs["file"]),
                "batch_size": 4,
                "max_steps": 2,
            }
        ),
        encoding="utf-8",
    )
    assert_output_error(["train", str(config)], str(inputs["file"]), "file")
    assert inputs["file"].read_text(encoding="utf-8") == "not a folder\n"


def test_table_results_dir_that_is_a_file_fails_first(inputs: dict[str, Path], tmp_path: Path) -> None:
    table = tmp_path / "table.yaml"
    table.write_text("name: t\n", encoding="utf-8")
    assert_output_error(["table", str(table), "--results-dir", str(inputs["file"])], str(inputs["file"]))


def test_check_output_rules(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    assert check_output(tmp_path / "new" / "deeper" / "out.tsv") == tmp_path / "new" / "deeper" / "out.tsv"
    assert check_output(tmp_path / "new-folder", "folder") == tmp_path / "new-folder"
    check_output(tmp_path, "folder")  # an existing folder: the command decides what it may replace
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(InputError, match="is an existing file"):
        check_output(blocker, "folder")
    with pytest.raises(InputError, match="not a folder"):
        check_output(blocker / "x" / "y.tsv")


# ------------------------------------------------------------------ read-only folders (as a user without root)
@pytest.fixture()
def shared_dir() -> Iterator[Path]:
    """A folder every user can read (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="paraxl-outputs-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


def run_unprivileged(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """``paraxl ARGS`` as a user whom file modes bind (root ignores them: then as nobody)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: a read-only folder cannot be made")
        prefix = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    env = {**os.environ, "HOME": str(home), "HF_HOME": str(home / "hf"), "PARAXL_CACHE_DIR": str(home / "cache")}
    return subprocess.run([*prefix, str(PARAXL), *args], capture_output=True, text=True, env=env, timeout=300)


def _assert_one_line(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_read_only_outputs_fail_before_any_work(tiny_model_dir: Path, shared_dir: Path) -> None:
    home = shared_dir / "home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    model = shared_dir / "model"
    shutil.copytree(tiny_model_dir, model)
    texts = shared_dir / "in.txt"
    texts.write_text("the cat\nle chat\n", encoding="utf-8")
    pairs = shared_dir / "pairs.tsv"
    pairs.write_text("sentence1\tsentence2\tlabel\n" + "the cat\tle chat\t1\nthe dog\tle chat\t0\n" * 6)
    locked = shared_dir / "locked"
    locked.mkdir()
    for path in [shared_dir, *shared_dir.rglob("*")]:
        if path != home and path.is_dir():
            path.chmod(0o555)
        elif path.is_file():
            path.chmod(0o644)
    _assert_one_line(
        run_unprivileged(["encode", str(texts), "-o", str(locked / "x.npy"), "-m", str(model)], home),
        str(locked),
        "cannot write",
    )
    assert not (locked / "x.npy").exists()
    done = run_unprivileged(["calibrate", str(model), "--data", str(pairs)], home)
    _assert_one_line(done, str(model), "cannot write")
    _assert_one_line(run_unprivileged(["export-onnx", str(model)], home), "cannot write")


# ------------------------------------------------------------------ one mode for every output (weak)
def test_every_file_of_a_saved_model_gets_the_umask_mode(tiny_model_dir: Path, tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        BiEncoder.load(tiny_model_dir).save(tmp_path / "model")
    finally:
        os.umask(umask)
    modes = {
        str(path.relative_to(tmp_path)): stat.S_IMODE(path.stat().st_mode)
        for path in [tmp_path / "model", *(tmp_path / "model").rglob("*")]
    }
    expected = {name: 0o755 if (tmp_path / name).is_dir() else 0o644 for name in modes}
    assert modes == expected
