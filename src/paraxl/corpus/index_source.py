"""What a sharded index build reads from an embeddings folder (``paraxl encode-corpus``'s output).

``manifest.json`` gives the shards (:class:`~paraxl.corpus.index_job.IndexShardTask`), the model
identity the index records (so ``paraxl search`` embeds queries with the same model and refuses
another), and the inputs, whose texts are read again shard by shard for ``items.jsonl``: never the
whole corpus at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from paraxl.corpus.index_job import IndexShardTask
from paraxl.corpus.manifest import FORMAT, MANIFEST, VERSION
from paraxl.corpus.plan import plan_shards
from paraxl.corpus.reading import read_shard_texts
from paraxl.corpus.sources import scan_source
from paraxl.errors import InputError


def load_manifest(folder: Path) -> dict[str, Any]:
    """A complete embeddings manifest of ``folder``, checked; InputError naming what is wrong."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise InputError("no such embeddings folder" if not folder.exists() else "not a folder", folder)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no manifest.json: not an embeddings folder of `paraxl encode-corpus`", folder) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable manifest ({exc})", path) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} manifest", path)
    if document.get("version") != VERSION:
        raise InputError(f"manifest version {document.get('version')!r}; this paraxl reads {VERSION}", path)
    shards = document.get("shards") or []
    pending = [shard["index"] for shard in shards if not shard.get("done")]
    if not shards or pending or not document.get("complete"):
        raise InputError(
            f"the embeddings are not complete ({len(pending)} of {len(shards)} shards pending): "
            "finish `paraxl encode-corpus` first",
            path,
        )
    return document


def shard_tasks(document: dict[str, Any]) -> list[IndexShardTask]:
    """One task per shard, in corpus order."""
    dimension = int(document["dimension"])
    return [
        IndexShardTask(
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


def model_identity(document: dict[str, Any]) -> dict[str, str | None]:
    """The IndexInfo fields naming the model that made the embeddings: spec, fingerprints, backend, prompt.

    The encoder's fingerprint is the weights' on torch and the ONNX graph's otherwise (the manifest's
    ``graph``), as ``encoder.fingerprint`` is at query time.
    """
    model = document["job"]["model"]
    spec = str(document.get("provenance", {}).get("model_spec") or "") or None
    if spec is not None and Path(spec).expanduser().is_dir():
        spec = str(Path(spec).expanduser().resolve())  # a relative folder breaks from another directory
    backend = str(model["backend"])
    return {
        "model": spec,
        "model_fingerprint": model["weights_fingerprint"] if backend == "torch" else model.get("graph"),
        "weights_fingerprint": model["weights_fingerprint"],
        "inference_backend": backend,
        "prompt_name": document["job"]["prompt"]["name"],
    }


def check_model(document: dict[str, Any], spec: str, path: Path) -> None:
    """Refuse ``spec`` (the user's --model) unless it is the model that made the embeddings (weights
    fingerprint, on the manifest's backend); its folder's files are hashed, no weights loaded."""
    from paraxl.loading.model import resolve_model

    recorded = document["job"]["model"]
    found = resolve_model(spec, str(recorded["backend"])).weights_fingerprint
    if found != recorded["weights_fingerprint"]:
        raise InputError(
            f"the embeddings were made by another model (weights {str(recorded['weights_fingerprint'])[:12]}) than "
            f"--model {spec} (weights {found[:12]}): queries would be embedded with the wrong model",
            path,
        )


def shard_texts(document: dict[str, Any]) -> Iterator[list[str]]:
    """Each shard's texts in corpus order, re-read from the inputs the manifest records (checked unchanged)."""
    job = document["job"]
    sources = []
    for recorded in job["inputs"]:
        path = Path(recorded["path"])
        if not path.is_file():
            raise InputError("input of the embeddings is gone; pass --no-texts to index without texts", path)
        source = scan_source(path, recorded["format"], recorded["column"], int(job["shard_size"]))
        if source.identity() != recorded:
            raise InputError(
                "input changed since it was embedded (sha256 differs); re-encode it or pass --no-texts", path
            )
        sources.append(source)
    tasks = plan_shards(sources, int(job["shard_size"]))
    for task, shard in zip(tasks, document["shards"], strict=True):
        assert task.range_record() == {key: shard[key] for key in task.range_record()}, "same inputs, same plan"
        yield read_shard_texts(task)
