"""Issue 27, the index: a folder lock for every writer, the recorded model, vectors checked on load, damaged files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.errors import InputError, ModelSpecError
from paraxl.io.locks import LOCK_FILE, folder_lock
from paraxl.serving.index import VectorIndex

from .tiny import save_tiny

runner = CliRunner()
PARAXL = Path(sys.executable).with_name("paraxl")
WORDS = ["the", "cat", "dog", "sat", "on", "mat", "ran", "le", "chat", "der", "hund"]
HOLDER = """
import sys, time
from pathlib import Path
from paraxl.io.locks import folder_lock
try:
    with folder_lock(Path(sys.argv[1]), "test folder", wait_seconds=0):
        Path(sys.argv[2]).write_text("locked")
        time.sleep(float(sys.argv[3]))
except KeyboardInterrupt:  # how the tests stop a holder early: the lock is released on the way out
    pass
"""


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def texts(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=4)) for _ in range(count)]


def build(tmp_path: Path, model: Path, count: int = 20, index_type: str = "exact") -> Path:
    corpus = tmp_path / f"corpus-{index_type}.txt"
    corpus.write_text("\n".join(texts(count, seed=0)) + "\n", encoding="utf-8")
    target = tmp_path / f"ix-{index_type}"
    code, _, err = run("index", "build", str(corpus), "-o", str(target), "-m", str(model), "--index-type", index_type)
    assert code == 0, err
    return target


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1, err
    return err.strip()


# ------------------------------------------------------------------ the lock


def _hold(folder: Path, tmp_path: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Another process holding ``folder``'s lock for ``seconds``; returns once it holds it."""
    marker = tmp_path / f"held-{time.monotonic_ns()}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(marker), str(seconds)])
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert holder.poll() is None and time.monotonic() < deadline, "the holder did not take the lock"
        time.sleep(0.02)
    return holder


def test_a_second_process_waits_for_the_lock_then_fails_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    holder = _hold(folder, tmp_path, seconds=3.0)
    start = time.monotonic()
    with pytest.raises(InputError) as caught, folder_lock(folder, "test folder", wait_seconds=0.5):
        pytest.fail("the lock was taken twice")
    assert 0.4 < time.monotonic() - start < 2.5
    assert str(caught.value) == (
        f"{folder}: test folder is being written by another paraxl process (pid {holder.pid}); try again"
    )
    with folder_lock(folder, "test folder", wait_seconds=30):  # waits for the holder to finish
        assert holder.poll() == 0
    assert holder.wait() == 0
    assert not (folder / LOCK_FILE).exists()  # nothing left behind


def test_the_lock_survives_its_folder_being_replaced(tmp_path: Path) -> None:
    """An index save replaces the whole folder (and its lock file): a waiter must lock the new one."""
    folder = tmp_path / "ix"
    folder.mkdir()
    with folder_lock(folder, "index"):
        aside = tmp_path / "aside"
        os.replace(folder, aside)  # what atomic_directory does to the locked folder
        folder.mkdir()
        holder = _hold(folder, tmp_path, seconds=2.0)  # the lock of the new folder is free: taken
    with pytest.raises(InputError, match=f"pid {holder.pid}"), folder_lock(folder, "index", wait_seconds=0.2):
        pass
    holder.wait()


def test_a_lock_on_a_new_folder_leaves_nothing_when_the_work_fails(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper"
    with pytest.raises(RuntimeError), folder_lock(target, "index"):
        assert target.is_dir()
        raise RuntimeError("the work failed")
    assert not target.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"), folder_lock(tmp_path / "file", "index"):
        pass


@pytest.fixture()
def short_lock_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands give up on a held lock after 0.3 s instead of a minute."""
    monkeypatch.setattr("paraxl.io.locks.DEFAULT_WAIT_SECONDS", 0.3)


@pytest.mark.usefixtures("short_lock_wait")
def test_calibrate_export_and_eval_wait_for_their_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The other folders two commands may write at once: a model folder (calibrate, export-onnx), an eval output."""
    import shutil

    from .eval_fixtures import write_benchmark_data
    from .test_pi_cli import labeled_pairs

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = sorted(path.name for path in model.iterdir())
    pairs = labeled_pairs(tmp_path / "pairs.tsv")
    out = tmp_path / "eval-out"
    out.mkdir()
    data = write_benchmark_data(tmp_path / "data")
    for folder, what, command in [
        (model, "model folder", ["calibrate", str(model), "--data", str(pairs), "--folds", "2"]),
        (model, "model folder", ["export-onnx", str(model), "--no-int8"]),
        (out, "eval output folder", ["eval", str(model), "--tasks", "bucc", "--data-dir", str(data), "-o", str(out)]),
    ]:
        holder = _hold(folder, tmp_path, seconds=60.0)
        try:
            code, stdout, stderr = run(*command)
            # eval reports its progress on stderr ("loading ..."): the error is then its last line
            last = stderr.strip().splitlines()[-1] if command[0] == "eval" else stderr
            error = one_line_error(code, stdout, last)
            assert "Traceback" not in stderr
        finally:
            holder.send_signal(signal.SIGINT)  # KeyboardInterrupt: the holder unlocks and removes its file
            holder.wait()
        assert f"{what} is being written by another paraxl process (pid {holder.pid}); try again" in error, command
    assert sorted(path.name for path in model.iterdir()) == before  # nothing written beside the holder
    assert list(out.iterdir()) == []


def test_concurrent_index_adds_keep_every_row(tiny_model_dir: Path, tmp_path: Path) -> None:
    index_dir = build(tmp_path, tiny_model_dir, count=260)
    corpora = []
    for name in ("a", "b"):
        corpus = tmp_path / f"{name}.txt"
        corpus.write_text("\n".join(texts(30, seed=ord(name))) + "\n", encoding="utf-8")
        corpora.append((name, corpus))
    env = {**os.environ, "COLUMNS": "200"}
    adds = [
        subprocess.Popen(
            [str(PARAXL), "index", "add", str(index_dir), str(corpus), "--id-prefix", f"{name}:"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        for name, corpus in corpora
    ]  # fmt: skip
    results = [(add.wait(timeout=300), *(stream.decode() for stream in add.communicate())) for add in adds]
    index = VectorIndex.load(index_dir)
    succeeded = [name for (name, _), (code, _, _) in zip(corpora, results, strict=True) if code == 0]
    for code, out, err in results:
        assert "Traceback" not in out + err
        if code != 0:
            assert code == 2 and "being written by another paraxl process" in one_line_error(code, out, err)
    assert succeeded, results
    assert len(index) == 260 + 30 * len(succeeded)
    for name in ("a", "b"):
        present = [item for item in index.ids if item.startswith(f"{name}:")]
        assert len(present) == (30 if name in succeeded else 0)  # all of an add's rows, or none


# ------------------------------------------------------- the recorded model


def _tamper(index_dir: Path, **fields: object) -> None:
    path = index_dir / "index.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    record.update(fields)
    path.write_text(json.dumps(record), encoding="utf-8")


@pytest.mark.parametrize("spec", ["hub:someone/tampered-model", "someone/tampered-model"])
def test_a_hub_model_named_by_the_index_is_not_fetched_without_a_flag(
    spec: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = build(tmp_path, tiny_model_dir)
    _tamper(index_dir, model=spec)
    fetched: list[str] = []

    def fake_download(repo: str) -> Path:
        fetched.append(repo)
        raise ModelSpecError(f"cannot fetch {repo!r} (test)")

    monkeypatch.setattr("paraxl.loading.specs._download", fake_download)
    error = one_line_error(*run("search", str(index_dir), "the cat"))
    assert "--allow-hub-model" in error and spec in error and fetched == []
    more = tmp_path / "more.txt"
    more.write_text("the mat\n")
    assert "--allow-hub-model" in one_line_error(*run("index", "add", str(index_dir), str(more), "--id-prefix", "m"))
    assert fetched == []
    error = one_line_error(*run("search", str(index_dir), "the cat", "--allow-hub-model"))
    assert "cannot fetch" in error and fetched == ["someone/tampered-model"]


def test_the_model_must_match_the_recorded_fingerprint(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = build(tmp_path, tiny_model_dir)
    other = save_tiny(tmp_path / "other", seed=1)
    _tamper(index_dir, model=str(other))
    loads: list[Path] = []
    import paraxl.loading.model as model_module

    real_open = model_module.open_encoder
    monkeypatch.setattr(
        model_module, "open_encoder", lambda folder, backend: loads.append(folder) or real_open(folder, backend)
    )
    error = one_line_error(*run("search", str(index_dir), "the cat"))
    assert "fingerprint" in error and "--allow-model-mismatch" in error
    assert loads == []  # refused from the files' fingerprint, before the other weights load
    # an index whose fingerprints were removed cannot vouch for its model: refused too
    _tamper(index_dir, model_fingerprint=None, weights_fingerprint=None)
    error = one_line_error(*run("search", str(index_dir), "the cat"))
    assert "no model fingerprint" in error and "--allow-model-mismatch" in error
    more = tmp_path / "more.txt"
    more.write_text("the mat\n")
    error = one_line_error(*run("index", "add", str(index_dir), str(more), "--id-prefix", "m"))
    assert "no model fingerprint" in error
    code, out, err = run("search", str(index_dir), "the cat", "--allow-model-mismatch", "--json")
    assert code == 0 and len(out.splitlines()) == 10 and "cannot be checked" in err
    # the user's own --model on an unfingerprinted index: their choice, with the note
    code, out, err = run("search", str(index_dir), "the cat", "-m", str(tiny_model_dir), "--json")
    assert code == 0 and "cannot be checked" in err


# ------------------------------------------------------ vectors on load


def _faiss_rows(index_dir: Path, change: dict[int, float]) -> None:
    """Rewrite a flat index.faiss with rows scaled (a factor) or poisoned (NaN)."""
    import faiss

    raw = faiss.read_index(str(index_dir / "index.faiss"))
    vectors = raw.reconstruct_n(0, raw.ntotal)
    for row, factor in change.items():
        vectors[row] = vectors[row] * factor
    rebuilt = faiss.IndexFlatIP(raw.d)
    rebuilt.add(vectors)
    faiss.write_index(rebuilt, str(index_dir / "index.faiss"))


@pytest.mark.parametrize("index_type", ["exact", "flat", "hnsw"])
@pytest.mark.parametrize(("factor", "reason"), [(float("nan"), "NaN or infinity"), (1000.0, "norm 1000")])
def test_vectors_that_are_not_unit_rows_are_refused_on_load(
    index_type: str, factor: float, reason: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    index_dir = build(tmp_path, tiny_model_dir, index_type=index_type)
    stored_in = "vectors.npy" if index_type == "exact" else "index.faiss"
    if index_type == "exact":
        vectors = np.load(index_dir / "vectors.npy")
        vectors[7] *= factor
        np.save(index_dir / "vectors.npy", vectors)
    elif index_type == "flat":
        _faiss_rows(index_dir, {7: factor})
    else:
        import faiss

        raw = faiss.read_index(str(index_dir / "index.faiss"))
        stored = faiss.rev_swig_ptr(faiss.downcast_index(raw.storage).get_xb(), raw.ntotal * raw.d)
        stored.reshape(raw.ntotal, raw.d)[7] *= np.float32(factor)
        faiss.write_index(raw, str(index_dir / "index.faiss"))
    with pytest.raises(InputError, match=rf"{stored_in}: row 7 (holds|has) {reason}"):
        VectorIndex.load(index_dir)
    error = one_line_error(*run("search", str(index_dir), "the cat"))
    assert f"{stored_in}: row 7" in error


def test_ivf_vectors_are_checked_too(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 8)).astype(np.float32)
    index = VectorIndex.build(vectors, [f"i{n}" for n in range(200)], index_type="ivf", nlist=4)
    index.save(tmp_path / "ix")
    import faiss

    raw = faiss.read_index(str(tmp_path / "ix" / "index.faiss"))
    invlists = faiss.extract_index_ivf(raw).invlists
    cell = next(cell for cell in range(raw.nlist) if invlists.list_size(cell))
    row = int(faiss.rev_swig_ptr(invlists.get_ids(cell), 1)[0])
    codes = faiss.rev_swig_ptr(invlists.get_codes(cell), invlists.list_size(cell) * raw.code_size)
    codes.view(np.float32)[: raw.d] *= np.float32(1000)  # the first vector of that cell
    faiss.write_index(raw, str(tmp_path / "ix" / "index.faiss"))
    with pytest.raises(InputError, match=rf"index.faiss: row {row} has norm 1000"):
        VectorIndex.load(tmp_path / "ix")


# ------------------------------------------------------ damaged index files


def test_every_truncated_index_file_is_a_one_line_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Each file of an exact and a flat index cut to half and to 0 bytes in turn: `paraxl search` says which."""
    cases = 0
    for index_type in ("exact", "flat"):
        index_dir = build(tmp_path, tiny_model_dir, index_type=index_type)
        for path in sorted(index_dir.iterdir()):
            original = path.read_bytes()
            for size in (len(original) // 2, 0):
                path.write_bytes(original[:size])
                error = one_line_error(*run("search", str(index_dir), "the cat"))
                assert path.name in error or str(index_dir) in error, error
                cases += 1
            path.write_bytes(original)
        assert run("search", str(index_dir), "the cat")[0] == 0  # restored: fine again
    assert cases == 12
