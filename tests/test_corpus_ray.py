"""Corpus encoding, mining and index building on Ray: a 2-node local cluster (1 CPU each), bound to
loopback, against the local engine.

Bounded: one cluster for the module, one small Ray job per test, an alarm per test.
"""

from __future__ import annotations

import json
import os

# set before Ray is imported anywhere: with it Ray's GCS and both nodes use 127.0.0.1 only
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import numpy as np
import pytest

from paraxl.corpus.encode import encode_corpus

from .test_corpus_encode import load_output, request, without_provenance, write_corpus

ray = pytest.importorskip("ray")
LIMIT_SECONDS = 150  # per test, startup included


@pytest.fixture(autouse=True)
def alarm() -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"Ray test ran past {LIMIT_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(LIMIT_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    from ray.cluster_utils import Cluster

    local = {"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"}
    # ray.init replaces SIGTERM/SIGINT handlers and leaves them after shutdown: later tests (the service's
    # SIGTERM drain) need the originals back
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    started = Cluster(initialize_head=True, head_node_args=local)
    try:
        started.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        ray.init(address=started.address, include_dashboard=False, log_to_driver=False)
        assert started.address.startswith("127.0.0.1:")
        assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"} and len(ray.nodes()) == 2
        yield started.address
    finally:
        ray.shutdown()
        started.shutdown()
        for number, handler in handlers.items():
            if handler is not None:
                signal.signal(number, handler)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("ray-corpus") / "corpus"
    write_corpus(folder, data_dir)
    return folder


def test_ray_actors_equal_the_local_engine(cluster: str, corpus: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    encode_corpus(request(corpus, tmp_path / "local", tiny_model_dir))
    summary = encode_corpus(request(corpus, tmp_path / "ray", tiny_model_dir, engine="ray", workers=2))
    local, on_ray = load_output(tmp_path / "local"), load_output(tmp_path / "ray")
    np.testing.assert_allclose(local[0], on_ray[0], atol=1e-6)
    np.testing.assert_array_equal(local[1], on_ray[1])
    assert without_provenance(local[2]) == without_provenance(on_ray[2])  # checksums too: 1 torch thread each
    assert summary.encoded == 13 and on_ray[2]["provenance"]["runs"][0]["engine"] == "ray"
    # (which actors did the shards is timing: one may finish all of them while the other still loads torch)


def test_a_killed_actor_is_restarted_and_the_output_is_unchanged(
    cluster: str, corpus: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import psutil

    encode_corpus(request(corpus, tmp_path / "local", tiny_model_dir))
    killed: list[int] = []

    def kill_one_actor(done: int, total: int) -> None:
        # SIGKILL one mapper actor's process once a shard is done: Ray restarts it and retries its shard
        if done >= 1 and not killed:
            for process in psutil.process_iter(["cmdline"]):
                if "MapWorker" in " ".join(process.info["cmdline"] or []):
                    killed.append(process.pid)
                    process.kill()
                    break

    encode_corpus(request(corpus, tmp_path / "ray", tiny_model_dir, engine="ray", workers=2), progress=kill_one_actor)
    assert killed
    local, on_ray = load_output(tmp_path / "local"), load_output(tmp_path / "ray")
    np.testing.assert_allclose(local[0], on_ray[0], atol=1e-6)
    assert without_provenance(local[2]) == without_provenance(on_ray[2])


def test_sharded_mining_on_ray_equals_the_local_engine(cluster: str, tmp_path: Path) -> None:
    from paraxl.corpus.mine import MineRequest, mine_corpus
    from paraxl.corpus.vectors_folder import write_vectors_folder

    from .test_mine_sharded import JOB, comparable

    source, target = comparable(150, 16, 5)
    write_vectors_folder(tmp_path / "src", source, 40, JOB)
    write_vectors_folder(tmp_path / "tgt", target, 40, JOB)
    outputs = {}
    for engine in ("local", "ray"):
        outputs[engine] = tmp_path / f"{engine}.tsv"
        request = MineRequest(
            tmp_path / "src", tmp_path / "tgt", outputs[engine], engine=engine, workers=2, texts=False, query_block=8
        )
        mine_corpus(request)
    assert outputs["local"].read_text() == outputs["ray"].read_text()
    record = json.loads(outputs["ray"].with_suffix(".json").read_text())
    assert record["run"]["engine"] == "ray" and record["run"]["workers"] == 2 and record["pairs"] > 100
    # query blocks of 8 rows: a task per 40-row shard, 4 per direction (default blocks: 1 per direction)
    forward = [name for name in record["run"]["task_workers"] if name.startswith("forward-")]
    assert record["run"]["tasks"] == 8 and len(forward) == 4


def test_sharded_index_build_on_ray_equals_the_local_build(cluster: str, tmp_path: Path) -> None:
    from paraxl.corpus.index_build import ShardedBuildRequest, build_sharded

    from .test_index_sharded import CORPUS, write_embeddings

    emb = write_embeddings(tmp_path / "emb", CORPUS)  # 5 shards
    params: dict[str, object] = {"nlist": 16, "nprobe": 4, "pq_m": 8}
    for engine in ("local", "ray"):
        build_sharded(
            ShardedBuildRequest(
                emb, tmp_path / engine, "ivfpq", params, texts=False, engine=engine, workers=2, cpus_per_worker=1
            )
        )
    assert (tmp_path / "local" / "index.faiss").read_bytes() == (tmp_path / "ray" / "index.faiss").read_bytes()
    build = json.loads((tmp_path / "ray" / "index.json").read_text())["build"]
    assert build["engine"] == "ray" and build["workers"] == 2 and len(build["shard_workers"]) == 5
