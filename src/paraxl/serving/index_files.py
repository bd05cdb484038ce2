"""The on-disk form of a vector index: one folder, written atomically, read without unpickling anything.

    index.json    ``{"format": "paraxl-vector-index", "format_version": 1, "metric": ..., <IndexInfo fields>}``
    items.jsonl   one ``{"id": ..., "text": ...}`` object per row, in row order (JSON, so tabs,
                  newlines and any Unicode round-trip; ``text`` is null when none was stored)
    vectors.npy   exact only: the float32 (n, dim) unit rows (``np.save``, no pickle)
    index.faiss   flat / ivf / ivfpq / hnsw: ``faiss.write_index`` (FAISS's own binary format)

Loading checks that the files agree (count, dimension, index type) and names the file that does not,
and that every stored vector is a finite unit row (:func:`~paraxl.retrieval.checked_unit_rows`: a NaN
row scored ``nan`` and a row scaled x1000 won every query); it names the row.
Writers hold the folder's lock (:func:`paraxl.io.locks.folder_lock`); its ``.paraxl.lock`` is not
part of the index.
The key ``backend`` of ``index.json`` holds the index type (its name predates the word).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np

from paraxl.errors import InputError
from paraxl.io.atomic import atomic_directory
from paraxl.io.locks import LOCK_FILE
from paraxl.retrieval import INDEX_TYPES, ExactIndex, FaissIndex, SearchIndex, checked_unit_rows
from paraxl.retrieval.faiss_index import faiss_class, faiss_module

FORMAT = "paraxl-vector-index"
FORMAT_VERSION = 1
METRIC = "cosine (inner product of L2-normalised vectors)"
INFO_FILE = "index.json"
ITEMS_FILE = "items.jsonl"
VECTORS_FILE = "vectors.npy"
FAISS_FILE = "index.faiss"
_OPTIONAL_TEXT_FIELDS = (
    "model",
    "model_fingerprint",
    "prompt_name",
    "weights_fingerprint",
    "inference_backend",
    "created",
    "paraxl_version",
)


def encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (lone surrogates cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def save(folder: Path, info: object, search: SearchIndex, ids: Sequence[str], texts: Sequence[str | None]) -> None:
    """Write the index folder atomically; refuses to replace a folder that is not an index."""
    check_target(folder)
    assert is_dataclass(info) and not isinstance(info, type)
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, "metric": METRIC, **asdict(info)}
    with atomic_directory(folder) as tmp:
        _save_search_index(tmp, search)
        with (tmp / ITEMS_FILE).open("w", encoding="utf-8", newline="\n") as handle:
            for item, text in zip(ids, texts, strict=True):
                handle.write(json.dumps({"id": item, "text": text}, ensure_ascii=False) + "\n")
        (tmp / INFO_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def check_target(folder: Path) -> None:
    """Raise unless ``folder`` may receive an index: absent, empty, or an index (which is then replaced).

    (Replacing is atomic but total: a user's non-empty folder given by mistake must survive.)
    """
    if folder.exists():
        if not folder.is_dir():
            raise InputError("exists and is not a folder", folder)
        others = (path for path in folder.iterdir() if path.name != LOCK_FILE)  # a writer's lock: not content
        if any(others) and not (folder / INFO_FILE).is_file():
            raise InputError("exists, is not empty and is not a paraxl index: refusing to replace it", folder)


def check_folder(folder: Path) -> None:
    """Raise unless ``folder`` is an existing folder (before anything reads or locks it)."""
    if not folder.is_dir():
        raise InputError("no such index folder" if not folder.exists() else "not a folder", folder)


def load(folder: Path) -> tuple[dict[str, object], SearchIndex, list[str], list[str | None]]:
    """``(info fields, search index, ids, texts)`` of a saved index, after checking the files agree."""
    check_folder(folder)
    info = read_info(folder / INFO_FILE)
    index_type, dimension, count = str(info["backend"]), int(info["dimension"]), int(info["count"])  # type: ignore[call-overload]
    search: SearchIndex
    if index_type == "exact":
        search = _load_exact(folder, dimension)
        stored_in = folder / VECTORS_FILE
    else:
        params = info["backend_params"]
        assert isinstance(params, dict)
        search = _load_faiss(folder, index_type, dimension, params)
        stored_in = folder / FAISS_FILE
    ids, texts = read_items(folder / ITEMS_FILE)
    if not count == len(ids) == search.count:
        raise InputError(
            f"damaged index: {INFO_FILE} says {count} items, {ITEMS_FILE} holds {len(ids)}, "
            f"{stored_in.name} holds {search.count}",
            folder,
        )
    info["backend_params"] = search.params
    return info, search, ids, texts


def _save_search_index(folder: Path, search: SearchIndex) -> None:
    """``vectors.npy`` (exact: ``np.save``, no pickle) or ``index.faiss`` (FAISS's own format)."""
    if isinstance(search, ExactIndex):
        with (folder / VECTORS_FILE).open("wb") as handle:
            np.save(handle, search.stored, allow_pickle=False)
    else:
        assert isinstance(search, FaissIndex)
        faiss_module().write_index(search.raw, str(folder / FAISS_FILE))


def _load_exact(folder: Path, dimension: int) -> ExactIndex:
    """``vectors.npy`` as an exact index, checked to be a float32 (n, dimension) matrix."""
    path = folder / VECTORS_FILE
    try:
        vectors = np.load(path, allow_pickle=False)  # never unpickle: object arrays raise
    except FileNotFoundError:
        raise InputError("missing index file", path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy matrix ({exc})", path) from None
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise InputError(f"expected a float32 (n, {dimension}) matrix, found {vectors.dtype} {vectors.shape}", path)
    try:
        checked_unit_rows(vectors)
    except InputError as exc:
        raise InputError(exc.reason, path) from None
    return ExactIndex(vectors)


def _load_faiss(folder: Path, index_type: str, dimension: int, params: dict[str, object]) -> FaissIndex:
    """Read ``index.faiss`` (nothing is unpickled) and check it is what index.json says."""
    faiss = faiss_module()
    path = folder / FAISS_FILE
    if not path.is_file():
        raise InputError("missing index file", path)
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        # FAISS prefixes "Error in <C++ signature> at <file>:<line>: "; the rest is the reason
        reason = re.sub(r"^Error in .*? at \S+:\d+: ", "", str(exc).strip()) or type(exc).__name__
        raise InputError(f"not a readable FAISS index ({reason})", path) from None
    expected = faiss_class(index_type)
    if not isinstance(index, expected):
        found = type(index).__name__
        raise InputError(f"expected a {expected.__name__} (index.json says {index_type}), found {found}", path)
    if index.d != dimension or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise InputError(f"expected an inner-product index of dimension {dimension}, found dimension {index.d}", path)
    try:
        search = FaissIndex.wrap(index_type, index, params)
    except InputError as exc:
        raise InputError(f"backend_params: {exc.reason}", folder / INFO_FILE) from None
    try:
        search.check_stored_rows()
    except InputError as exc:
        raise InputError(exc.reason, path) from None
    return search


def read_info(path: Path) -> dict[str, object]:
    """``index.json``, checked field by field; returns the IndexInfo fields only."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"missing index file (is {path.parent.name} an index folder?)", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not readable JSON ({exc})", path) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError(f'not a paraxl index description (no "format": "{FORMAT}")', path)
    if record.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"index format version {record.get('format_version')!r}; this paraxl reads version {FORMAT_VERSION}",
            path,
        )
    if record.get("backend") not in INDEX_TYPES:
        raise InputError(f"unknown index type {record.get('backend')!r}", path)
    for key in ("dimension", "count"):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{key} must be an integer >= 1, found {value!r}", path)
    for key in _OPTIONAL_TEXT_FIELDS:
        if not isinstance(record.get(key), str | None):
            raise InputError(f"{key} must be a string or null, found {record.get(key)!r}", path)
    params = record.get("backend_params", {})
    if not isinstance(params, dict):
        raise InputError(f"backend_params must be an object, found {params!r}", path)
    fields = {key: record.get(key) for key in ("backend", "dimension", "count", *_OPTIONAL_TEXT_FIELDS)}
    fields["backend_params"] = params
    return fields


def read_items(path: Path) -> tuple[list[str], list[str | None]]:
    """Ids and texts of ``items.jsonl``, checking each line and that ids are unique."""
    ids: list[str] = []
    texts: list[str | None] = []
    seen: set[str] = set()
    try:
        handle = path.open("r", encoding="utf-8", newline="\n")
    except FileNotFoundError:
        raise InputError("missing index file", path) from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                item, text = _item(line, path, number)
                if item in seen:
                    raise InputError(f"duplicate id {item!r}", path, number)
                seen.add(item)
                ids.append(item)
                texts.append(text)
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-8 ({exc.reason})", path) from None
    return ids, texts


def _item(line: str, path: Path, number: int) -> tuple[str, str | None]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON ({exc.msg} at column {exc.colno})", path, number) from None
    if not isinstance(record, dict):
        raise InputError("expected a JSON object with id and text", path, number)
    item, text = record.get("id"), record.get("text")
    if not isinstance(item, str) or not item:
        raise InputError(f"id must be a non-empty string, found {item!r}", path, number)
    if not isinstance(text, str | None):
        raise InputError(f"text must be a string or null, found {type(text).__name__}", path, number)
    return item, text
