"""Write vectors made elsewhere (or synthetic ones) as an embeddings folder of ``paraxl encode-corpus``.

The one writer of such folders for the tests and benchmarks of the sharded miner and the sharded index
build (no model needed): shards, ids and a complete ``manifest.json`` that
:mod:`~paraxl.corpus.embeddings_folder` reads like one encode-corpus wrote. ``job`` stands in for the
model and prompt identity (mining compares it between its two inputs; an index build records it); with
no ``inputs`` in it, the folder has no texts (mine and build with ``texts=False``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from paraxl.corpus.encode_job import shard_names
from paraxl.corpus.manifest import FORMAT, MANIFEST, VERSION
from paraxl.io.atomic import write_json_atomic
from paraxl.io.hashing import file_sha256


def write_vectors_folder(folder: Path, vectors: np.ndarray, shard_size: int, job: dict[str, Any]) -> Path:
    """``vectors`` (rows, dim) as shards of ``shard_size`` rows in ``folder``; the manifest's path."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for index, first in enumerate(range(0, vectors.shape[0], shard_size)):
        rows = min(shard_size, vectors.shape[0] - first)
        names = shard_names(index)
        np.save(folder / names[0], vectors[first : first + rows])
        np.save(folder / names[1], np.arange(first, first + rows, dtype=np.int64))
        shards.append(
            {
                "index": index,
                "first_id": first,
                "rows": rows,
                "done": True,
                "embeddings": names[0],
                "embeddings_sha256": file_sha256(folder / names[0]),
                "ids": names[1],
                "ids_sha256": file_sha256(folder / names[1]),
            }
        )
    document = {
        "format": FORMAT,
        "version": VERSION,
        "job": job,
        "rows": int(vectors.shape[0]),
        "dimension": int(vectors.shape[1]),
        "complete": True,
        "shards": shards,
        "provenance": {"written_by": "paraxl.corpus.vectors_folder"},
    }
    write_json_atomic(folder / MANIFEST, document, indent=1)
    return folder / MANIFEST
