"""Streaming, sharded, resumable corpus encoding on the local engine (paraxl.corpus), tiny model, real text."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paraxl.corpus.encode import CorpusRequest, encode_corpus
from paraxl.corpus.manifest import MANIFEST
from paraxl.errors import InputError
from paraxl.io.text_input import read_texts
from paraxl.modeling.bi_encoder import BiEncoder

from .tiny import save_tiny

SHARD = 8
REPO = Path(__file__).resolve().parents[1]


def write_corpus(folder: Path, data_dir: Path) -> list[str]:
    """Four inputs of real sentences (txt, tsv, jsonl, parquet in two row groups); their texts in order."""
    folder.mkdir(parents=True)
    german = (data_dir / "tatoeba/v1/tatoeba.deu-eng.deu").read_text(encoding="utf-8").splitlines()
    (folder / "a.txt").write_text("\n".join(german[:37]) + "\n", encoding="utf-8")
    sib = (data_dir / "sib200/eng_Latn/dev.tsv").read_text(encoding="utf-8").splitlines()
    (folder / "b.tsv").write_text("\n".join(sib[:25]) + "\n", encoding="utf-8")
    french = [
        line.split("\t")[0] for line in (data_dir / "xnli/dev-fr.tsv").read_text(encoding="utf-8").splitlines()[1:20]
    ]
    (folder / "c.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(french)))
    portuguese = (data_dir / "tatoeba/v1/tatoeba.por-eng.por").read_text(encoding="utf-8").splitlines()[:15]
    pq.write_table(pa.table({"text": portuguese}), folder / "d.parquet", row_group_size=7)
    texts = read_texts(folder / "a.txt") + read_texts(folder / "b.tsv") + read_texts(folder / "c.jsonl")
    return texts + portuguese


def request(inputs: Path | list[Path], output: Path, model: Path, **changes: Any) -> CorpusRequest:
    names = inputs if isinstance(inputs, list) else [inputs]
    settings: dict[str, Any] = {"shard_size": SHARD, "cpus_per_worker": 1, "batch_size": 4}
    return CorpusRequest(tuple(str(p) for p in names), output, str(model), **(settings | changes))


def load_output(folder: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(rows, dim) embeddings and (rows,) ids of every shard in order, and the manifest."""
    manifest = json.loads((folder / MANIFEST).read_text())
    assert all(shard["done"] for shard in manifest["shards"]) and manifest["complete"]
    embeddings = np.concatenate([np.load(folder / shard["embeddings"]) for shard in manifest["shards"]])
    ids = np.concatenate([np.load(folder / shard["ids"]) for shard in manifest["shards"]])
    return embeddings, ids, manifest


def without_provenance(manifest: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in manifest.items() if key != "provenance"}


@pytest.fixture()
def corpus(tmp_path: Path, data_dir: Path) -> tuple[Path, list[str]]:
    texts = write_corpus(tmp_path / "corpus", data_dir)
    return tmp_path / "corpus", texts


def test_shards_equal_one_encode_of_the_whole_corpus(
    corpus: tuple[Path, list[str]], tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, texts = corpus
    summary = encode_corpus(request(folder, tmp_path / "out", tiny_model_dir))
    embeddings, ids, manifest = load_output(tmp_path / "out")
    # the oracle: one encode of every text, read by paraxl's whole-file reader (and pyarrow), batched otherwise
    expected = BiEncoder.load(tiny_model_dir).encode(texts, batch_size=32)
    np.testing.assert_allclose(embeddings, expected, atol=1e-6)
    np.testing.assert_array_equal(ids, np.arange(len(texts)))
    assert summary.shards == len(manifest["shards"]) == 5 + 3 + 3 + 2 and summary.rows_encoded == len(texts) == 95
    shards = manifest["shards"]
    assert [s["first_line"] for s in shards[5:8]] == [2, 10, 18]  # the tsv's header is line 1
    assert [s["first_line"] for s in shards[11:]] == [1, 9]  # parquet: row numbers
    assert [item["format"] for item in manifest["job"]["inputs"]] == ["txt", "tsv", "jsonl", "parquet"]
    assert manifest["job"]["prompt"] == {"name": None, "text": "query: "}
    assert manifest["provenance"]["runs"][0]["engine"] == "local"


def test_float16_is_the_float32_output_rounded(
    corpus: tuple[Path, list[str]], tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, _ = corpus
    encode_corpus(request(folder, tmp_path / "f32", tiny_model_dir))
    encode_corpus(request(folder, tmp_path / "f16", tiny_model_dir, dtype="float16"))
    full, half = load_output(tmp_path / "f32")[0], load_output(tmp_path / "f16")[0]
    assert full.dtype == np.float32 and half.dtype == np.float16
    np.testing.assert_array_equal(half, full.astype(np.float16))
    assert np.abs(half.astype(np.float32) - full).max() <= 2**-11 * np.abs(full).max()


def test_an_interrupted_run_resumes_to_the_uninterrupted_output(
    corpus: tuple[Path, list[str]], tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, _ = corpus
    encode_corpus(request(folder, tmp_path / "whole", tiny_model_dir))

    def stop_after_three(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode_corpus(request(folder, tmp_path / "resumed", tiny_model_dir), progress=stop_after_three)
    partial = json.loads((tmp_path / "resumed" / MANIFEST).read_text())
    assert [s["done"] for s in partial["shards"]].count(True) == 3 and not partial["complete"]
    summary = encode_corpus(request(folder, tmp_path / "resumed", tiny_model_dir))
    assert (summary.skipped, summary.encoded) == (3, 10)
    whole, resumed = load_output(tmp_path / "whole"), load_output(tmp_path / "resumed")
    np.testing.assert_array_equal(whole[0], resumed[0])
    assert without_provenance(whole[2]) == without_provenance(resumed[2])
    assert [run["shards_encoded"] for run in resumed[2]["provenance"]["runs"]] == [3, 10]


def test_a_sigkilled_driver_resumes_from_its_finished_shards(
    corpus: tuple[Path, list[str]], tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, _ = corpus
    encode_corpus(request(folder, tmp_path / "whole", tiny_model_dir))
    # a driver process that SIGKILLs itself when its fourth shard is recorded (every record saved at once)
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        import paraxl.corpus.manifest as manifest
        from paraxl.corpus.encode import CorpusRequest, encode_corpus
        manifest.SAVE_EVERY_SECONDS = 0.0
        def progress(done, total):
            if done == 4:
                os.kill(os.getpid(), signal.SIGKILL)
        encode_corpus(CorpusRequest(({str(folder)!r},), Path({str(tmp_path / "killed")!r}), {str(tiny_model_dir)!r},
                      shard_size={SHARD}, cpus_per_worker=1, batch_size=4), progress=progress)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    finished = subprocess.run([sys.executable, "-c", script], env=env, timeout=120, capture_output=True)
    assert finished.returncode == -signal.SIGKILL, finished.stderr.decode()[-2000:]
    summary = encode_corpus(request(folder, tmp_path / "killed", tiny_model_dir))
    assert summary.skipped == 4 and summary.encoded == 9
    whole, resumed = load_output(tmp_path / "whole"), load_output(tmp_path / "killed")
    np.testing.assert_array_equal(whole[0], resumed[0])
    assert without_provenance(whole[2]) == without_provenance(resumed[2])


def test_two_local_processes_equal_one_even_when_a_worker_is_killed(
    corpus: tuple[Path, list[str]], tiny_model_dir: Path, tmp_path: Path
) -> None:
    import multiprocessing

    folder, _ = corpus
    encode_corpus(request(folder, tmp_path / "one", tiny_model_dir))
    killed: list[int] = []

    def kill_one_worker(done: int, total: int) -> None:
        # SIGKILL a pool process once two shards are done: its shards are retried in a fresh pool
        workers = multiprocessing.active_children()
        if done >= 2 and not killed and workers:
            killed.append(workers[0].pid or 0)
            os.kill(killed[0], signal.SIGKILL)

    encode_corpus(request(folder, tmp_path / "two", tiny_model_dir, workers=2), progress=kill_one_worker)
    assert killed
    one, two = load_output(tmp_path / "one"), load_output(tmp_path / "two")
    np.testing.assert_allclose(one[0], two[0], atol=1e-6)
    np.testing.assert_array_equal(one[1], two[1])
    assert without_provenance(one[2]) == without_provenance(two[2])  # checksums too: 1 torch thread each
    assert two[2]["provenance"]["runs"][0]["workers"] == 2
    assert len(set(two[2]["provenance"]["shard_workers"].values())) >= 2  # several processes encoded shards


def test_a_changed_input_or_model_is_refused(
    corpus: tuple[Path, list[str]], tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder, _ = corpus
    out = tmp_path / "out"
    encode_corpus(request(folder, out, tiny_model_dir))
    other_model = save_tiny(tmp_path / "other-model", seed=1)
    with pytest.raises(InputError, match="another model"):
        encode_corpus(request(folder, out, other_model))
    with pytest.raises(InputError, match="dtype"):
        encode_corpus(request(folder, out, tiny_model_dir, dtype="float16"))
    with pytest.raises(InputError, match=r"b\.tsv of the run in this folder is not among this run's inputs"):
        encode_corpus(request([folder / "a.txt"], out, tiny_model_dir))
    with (folder / "a.txt").open("a", encoding="utf-8") as handle:
        handle.write("one more sentence\n")
    with pytest.raises(InputError, match=r"a\.txt changed since the run"):
        encode_corpus(request(folder, out, tiny_model_dir))
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds no manifest"):
        encode_corpus(request(folder, tmp_path / "stray", tiny_model_dir))


def test_a_malformed_line_names_file_and_line_and_keeps_finished_shards(
    data_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    lines = (data_dir / "tatoeba/v1/tatoeba.deu-eng.deu").read_text(encoding="utf-8").splitlines()[:50]
    lines[34] = "   "  # line 35: an empty text, in shard 3 of 5 (10 rows each)
    source = tmp_path / "bad.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"bad\.txt:35: empty text"):
        encode_corpus(request(source, out, tiny_model_dir, shard_size=10))
    manifest = json.loads((out / MANIFEST).read_text())
    done = [shard["index"] for shard in manifest["shards"] if shard["done"]]
    assert done == [0, 1, 2] and not manifest["complete"]
    expected = BiEncoder.load(tiny_model_dir).encode(lines[:30], batch_size=32)
    found = np.concatenate([np.load(out / manifest["shards"][i]["embeddings"]) for i in range(3)])
    np.testing.assert_allclose(found, expected, atol=1e-6)


def test_corpus_cli_writes_shards_and_resumes(
    corpus: tuple[Path, list[str]], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from paraxl.cli.main import app

    folder, _ = corpus
    args = ["encode-corpus", str(folder / "*.txt"), str(folder / "c.jsonl"), "-o", str(tmp_path / "out")]
    args += ["-m", str(tiny_model_dir), "--shard-size", "10", "--dtype", "float16"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "6 shards" in first.output and "56 texts" in first.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "6 from an earlier run, 0 encoded" in again.output
    missing = CliRunner().invoke(
        app, ["encode-corpus", str(folder / "*.csv"), "-o", str(tmp_path / "x"), "-m", str(tiny_model_dir)]
    )
    assert missing.exit_code == 2 and "the pattern matches no file" in missing.output


def test_ray_engine_without_ray_says_how_to_install(
    corpus: tuple[Path, list[str]], tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paraxl.errors import ParaxlError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ModuleNotFoundError
    with pytest.raises(ParaxlError, match=r"pip install 'paraxl\[ray\]'"):
        encode_corpus(request(corpus[0], tmp_path / "out", tiny_model_dir, engine="ray", workers=2))
    assert not (tmp_path / "out").exists()


def test_a_worker_that_finds_another_model_stops_the_job_with_one_error(
    corpus: tuple[Path, list[str]], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from paraxl.corpus.encode_job import EncodeSettings, ShardResult
    from paraxl.corpus.engines import run_shards
    from paraxl.corpus.plan import plan_shards
    from paraxl.corpus.sources import scan_source

    # the driver fingerprinted other weights than this worker loads (a node with another model)
    settings = EncodeSettings(str(tiny_model_dir), "torch", "0" * 64, None, 4, "float32", str(tmp_path / "out"), 1)
    tasks = plan_shards([scan_source(corpus[0] / "a.txt", None, None, SHARD)], SHARD)
    results: list[ShardResult] = []
    run_shards("local", settings, tasks, 1, results.append)
    assert len(results) == 1 and results[0].error is not None
    assert "has weights" in results[0].error and "every worker needs the same model" in results[0].error
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_second_run_on_a_folder_being_written_is_refused_not_mixed(
    corpus: tuple[Path, list[str]], tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs on one folder would write the same shard names and the last manifest save would win: the
    second waits for the folder's lock and gives up with one line; the lock file is no "foreign" file."""
    import paraxl.io.locks as locks
    from paraxl.io.locks import folder_lock

    folder, texts = corpus
    output = tmp_path / "out"
    monkeypatch.setattr(locks, "DEFAULT_WAIT_SECONDS", 0.2)
    with folder_lock(output, "corpus embeddings folder"), pytest.raises(InputError, match="another paraxl process"):
        encode_corpus(request(folder, output, tiny_model_dir))
    assert not (output / MANIFEST).exists()  # nothing written while the other run held the folder
    encode_corpus(request(folder, output, tiny_model_dir))  # the lock file left behind is not "a foreign file"
    embeddings, _, manifest = load_output(output)
    assert embeddings.shape[0] == len(texts) and manifest["complete"] is True
    assert manifest["job"]["model"]["graph"] is None  # torch: the weights decide; ONNX adds its graph's fingerprint
