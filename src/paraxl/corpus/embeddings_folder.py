"""Read a finished embeddings folder of ``paraxl encode-corpus``: the one reader of such folders.

The sharded index build (:mod:`~paraxl.corpus.index_build`) and sharded mining (:mod:`~paraxl.corpus.mine`)
read their inputs through this module:

    :func:`load_manifest`   ``manifest.json``, checked: format, version, every shard done;
    :func:`shard_list`      the shards in corpus order (:class:`EmbeddingShard`, JSON-able task values);
    :func:`open_shard`      one shard's ``(rows, dim)`` float matrix, memory-mapped (not read yet), after
                            checking both its files against the manifest (sha256, shape, ids = row numbers);
    :func:`input_sources`   the inputs the manifest records, each checked unchanged (sha256);
    :func:`shard_texts`     the texts of the chosen shards, re-read from those inputs, one shard in
                            memory at a time;
    :func:`texts_of_rows`   the texts of given corpus rows only (mined pairs), streamed shard by shard.

Every error is one :class:`InputError` line naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.corpus.manifest import MANIFEST, read_manifest
from paraxl.corpus.plan import plan_shards
from paraxl.corpus.reading import read_shard_texts
from paraxl.corpus.sources import SourceFile, scan_source
from paraxl.errors import InputError
from paraxl.io.hashing import file_sha256


@dataclass(frozen=True)
class EmbeddingShard:
    """One shard as the manifest records it (file names relative to the embeddings folder)."""

    index: int
    embeddings: str
    embeddings_sha256: str
    ids: str
    ids_sha256: str
    first_id: int
    rows: int
    dimension: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> EmbeddingShard:
        return cls(**json.loads(text))


def load_manifest(folder: Path) -> dict[str, Any]:
    """The complete manifest of embeddings folder ``folder``; InputError naming what is wrong."""
    if not folder.is_dir():
        raise InputError("no such embeddings folder" if not folder.exists() else "not a folder", folder)
    document = read_manifest(folder)  # format and version checked there
    shards = document.get("shards") or []
    pending = [shard.get("index") for shard in shards if not shard.get("done")]
    if not shards or pending or not document.get("complete"):
        raise InputError(
            f"the embeddings are not complete ({len(pending)} of {len(shards)} shards pending): "
            "finish `paraxl encode-corpus` first",
            folder / MANIFEST,
        )
    return document


def shard_list(document: dict[str, Any]) -> list[EmbeddingShard]:
    """The manifest's shards in corpus order."""
    dimension = int(document["dimension"])
    return [
        EmbeddingShard(
            index=int(shard["index"]),
            embeddings=str(shard["embeddings"]),
            embeddings_sha256=str(shard["embeddings_sha256"]),
            ids=str(shard["ids"]),
            ids_sha256=str(shard["ids_sha256"]),
            first_id=int(shard["first_id"]),
            rows=int(shard["rows"]),
            dimension=dimension,
        )
        for shard in document["shards"]
    ]


def open_shard(folder: Path, shard: EmbeddingShard) -> np.ndarray:
    """Shard ``shard``'s ``(rows, dim)`` float16/32 matrix, memory-mapped, after checking both its files
    against the manifest: sha256, shape, and ids = its corpus row numbers ``first_id..first_id+rows-1``.

    Raises:
        InputError: naming the file (a missing, altered or malformed shard).
    """
    paths = (folder / shard.embeddings, folder / shard.ids)
    for path, expected in zip(paths, (shard.embeddings_sha256, shard.ids_sha256), strict=True):
        if not path.is_file():
            raise InputError("missing embeddings shard file (listed as done in manifest.json)", path)
        if file_sha256(path) != expected:
            raise InputError("differs from its sha256 in manifest.json: the shard was altered or damaged", path)
    vectors = _load_npy(paths[0], mmap=True)  # (rows, dim), not read yet
    if vectors.ndim != 2 or vectors.shape != (shard.rows, shard.dimension) or vectors.dtype.kind != "f":
        raise InputError(
            f"expected a ({shard.rows}, {shard.dimension}) float matrix, found shape {vectors.shape} "
            f"of dtype {vectors.dtype}",
            paths[0],
        )
    ids = _load_npy(paths[1], mmap=False)  # (rows,) int64
    if not np.array_equal(ids, np.arange(shard.first_id, shard.first_id + shard.rows)):
        raise InputError(f"expected the row numbers {shard.first_id}..{shard.first_id + shard.rows - 1}", paths[1])
    return vectors


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    """``np.load`` of a plain ``.npy`` array (no pickles), memory-mapped if ``mmap``; InputError naming it."""
    try:
        array: np.ndarray = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy array ({exc})", path) from None
    return array


def input_sources(folder: Path, document: dict[str, Any]) -> list[SourceFile]:
    """The inputs the manifest of ``folder`` records, scanned again and checked unchanged (sha256)."""
    job = document["job"]
    if not job.get("inputs"):
        raise InputError("records no input texts (vectors made elsewhere); pass --no-texts", folder / MANIFEST)
    sources = []
    for recorded in job["inputs"]:
        path = Path(recorded["path"])
        if not path.is_file():
            raise InputError("input of the embeddings is gone; pass --no-texts to go without texts", path)
        source = scan_source(path, recorded["format"], recorded["column"], int(job["shard_size"]))
        if source.identity() != recorded:
            raise InputError(
                "input changed since it was embedded (sha256 differs); re-encode it or pass --no-texts", path
            )
        sources.append(source)
    return sources


def shard_texts(
    folder: Path,
    document: dict[str, Any],
    shards: set[int] | None = None,
    sources: list[SourceFile] | None = None,
) -> Iterator[tuple[int, list[str]]]:
    """``(shard position, its texts)`` for each shard of ``folder`` in corpus order (only those in
    ``shards`` if given), re-read from its inputs (``sources``: :func:`input_sources`, scanned now if
    None); a shard's texts are read only when it is reached."""
    if sources is None:
        sources = input_sources(folder, document)
    tasks = plan_shards(sources, int(document["job"]["shard_size"]))
    if len(tasks) != len(document["shards"]):
        raise InputError(f"lists {len(document['shards'])} shards but its inputs make {len(tasks)}", folder / MANIFEST)
    for position, (task, shard) in enumerate(zip(tasks, document["shards"], strict=True)):
        if task.range_record() != {key: shard.get(key) for key in task.range_record()}:
            raise InputError(f"shard {position} does not match its inputs' rows", folder / MANIFEST)
        if shards is None or position in shards:
            yield position, read_shard_texts(task)


def texts_of_rows(
    folder: Path, document: dict[str, Any], rows: np.ndarray, sources: list[SourceFile] | None = None
) -> dict[int, str]:
    """The texts of corpus rows ``rows`` (any order, repeats allowed), reading only the shards they lie
    in, one at a time: memory is one shard's texts plus the chosen ones, never the whole corpus's."""
    wanted = np.unique(np.asarray(rows, dtype=np.int64))  # sorted
    firsts = np.array([int(shard["first_id"]) for shard in document["shards"]], dtype=np.int64)
    owners = np.searchsorted(firsts, wanted, side="right") - 1  # (wanted,) the shard position of each row
    texts: dict[int, str] = {}
    for position, shard_rows in shard_texts(folder, document, set(owners.tolist()), sources):
        low, high = np.searchsorted(owners, [position, position + 1])  # owners is sorted, as wanted is
        for row in wanted[low:high].tolist():
            texts[row] = shard_rows[row - int(firsts[position])]
    return texts
