"""Write a sharded build's index folder: the same files as :meth:`VectorIndex.save`, items streamed.

``items.jsonl`` is written shard by shard (ids: each row's corpus row number as a string, as the shards'
``.ids.npy`` hold it; texts re-read from the manifest's inputs, or null with ``texts=False``), so the
build never holds the corpus's texts; ``paraxl search`` reads them all when it loads the index, as for
any index (a 1M-row corpus of sentences: a few hundred MB of Python strings).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from paraxl.corpus.embeddings_folder import shard_texts
from paraxl.corpus.model_identity import model_identity
from paraxl.corpus.sources import SourceFile
from paraxl.io.atomic import atomic_directory
from paraxl.retrieval import FaissIndex
from paraxl.retrieval.faiss_index import faiss_module
from paraxl.serving import index_files
from paraxl.serving.index import IndexInfo


def write_index_folder(
    output: Path,
    search: FaissIndex,
    embeddings_dir: Path,
    document: dict[str, Any],
    inputs: list[SourceFile] | None,
    build: dict[str, object] | None = None,
) -> None:
    """``output`` as a paraxl index folder (atomically: a failure leaves the previous one, or nothing);
    ``inputs``: the manifest's inputs, checked by :func:`~paraxl.corpus.embeddings_folder.input_sources`
    before the build (None: no texts); ``build``: how it was built, kept in ``index.json`` under
    ``build`` (loaders read only the known keys)."""
    from paraxl.version import __version__

    info = IndexInfo(
        backend=search.index_type,
        dimension=int(document["dimension"]),
        count=search.count,
        backend_params=search.params,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        paraxl_version=__version__,
        **model_identity(document),
    )
    record = {
        "format": index_files.FORMAT,
        "format_version": index_files.FORMAT_VERSION,
        "metric": index_files.METRIC,
        **asdict(info),
    }
    if build is not None:
        record["build"] = build
    index_files.check_target(output)
    with atomic_directory(output) as tmp:
        faiss_module().write_index(search.raw, str(tmp / index_files.FAISS_FILE))
        with (tmp / index_files.ITEMS_FILE).open("w", encoding="utf-8", newline="\n") as handle:
            texts_of = shard_texts(embeddings_dir, document, sources=inputs) if inputs is not None else None
            for shard in document["shards"]:
                first, rows = int(shard["first_id"]), int(shard["rows"])
                shard_text: list[str | None] = list(next(texts_of)[1]) if texts_of is not None else [None] * rows
                for row, text in zip(range(first, first + rows), shard_text, strict=True):
                    handle.write(json.dumps({"id": str(row), "text": text}, ensure_ascii=False) + "\n")
        (tmp / index_files.INFO_FILE).write_text(
            json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
