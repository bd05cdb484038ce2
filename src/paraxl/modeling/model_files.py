"""Check a model folder's files before a library parses them: damage becomes one ModelFormatError.

transformers, tokenizers and safetensors raise whatever their parsers raise on a damaged file
(SafetensorError, OSError, JSONDecodeError, a bare ``Exception`` from Rust), and name the folder
at best. Here every file a load will read is checked first, and the message names the file and
what is wrong with it. Nothing is unpickled: weights are read only as safetensors (an 8-byte
length, a JSON header, raw bytes), and a pickle or a ``torch.save`` zip is recognised by its
first bytes and refused. No torch here: the ONNX encoder (which needs none) uses it too.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from paraxl.errors import ModelFormatError

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
# files transformers would unpickle (or that hold weights paraxl cannot read): named, never opened
FOREIGN_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "tf_model.h5", "flax_model.msgpack")
# the tokenizer files a load parses as JSON when present
TOKENIZER_JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
_NEVER_UNPICKLED = "paraxl never unpickles weight files; convert them to safetensors"


def check_model_folder(folder: Path) -> list[Path]:
    """Check ``folder``'s config, weights and tokenizer files; return its safetensors weight files."""
    read_json_object(folder / "config.json")
    weights = weight_files(folder)
    for path in weights:
        check_safetensors(path)
    check_tokenizer_files(folder)
    return weights


def check_tokenizer_files(folder: Path) -> None:
    """Every tokenizer JSON file present parses as a JSON object."""
    for name in TOKENIZER_JSON_FILES:
        if (folder / name).exists():
            read_json_object(folder / name)


def weight_files(folder: Path) -> list[Path]:
    """``model.safetensors``, or the shards its index names; ModelFormatError naming what is there instead."""
    index = folder / WEIGHTS_INDEX_NAME
    if index.exists():
        weight_map = read_json_object(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelFormatError(f"{index}: no weight_map of tensor names to shard files")
        shards = sorted({folder / str(shard) for shard in weight_map.values()})
        for shard in shards:
            if not shard.is_file():
                raise ModelFormatError(f"{shard}: missing, although {index} names it")
        return shards
    single = folder / WEIGHTS_NAME
    if single.is_file():
        return [single]
    found = [name for name in FOREIGN_WEIGHTS if (folder / name).exists()]
    others = sorted(path.name for path in folder.glob("*.safetensors"))
    detail = f"; found {', '.join(found)} ({_NEVER_UNPICKLED})" if found else ""
    if others:
        detail += f"; {', '.join(others)} is not the model's weights file (transformers reads only {WEIGHTS_NAME})"
    raise ModelFormatError(f"{single}: missing{detail}")


def check_safetensors(path: Path) -> list[str]:
    """The tensor names of a safetensors file, after checking its header and that its data is all there."""
    size = path.stat().st_size
    if size == 0:
        raise ModelFormatError(f"{path}: empty file (0 bytes); the weights are missing")
    with path.open("rb") as handle:
        head = handle.read(8)
    kind = _foreign_kind(head)
    if kind is not None:
        raise ModelFormatError(f"{path}: {kind}, not safetensors ({_NEVER_UNPICKLED})")
    if size < 8:
        raise ModelFormatError(f"{path}: {size} bytes, too short for a safetensors file")
    (header_length,) = struct.unpack("<Q", head)
    if header_length > size - 8:
        raise ModelFormatError(
            f"{path}: truncated or not safetensors (its header claims {header_length} bytes, the file has {size})"
        )
    from safetensors import safe_open

    try:  # checks the JSON header and that the tensors' byte ranges cover the file exactly
        with safe_open(str(path), framework="numpy") as handle:
            names = list(handle.keys())
    except Exception as exc:  # SafetensorError and friends: the file, not the program, is wrong
        raise ModelFormatError(f"{path}: damaged safetensors file ({exc})") from None
    if not names:
        raise ModelFormatError(f"{path}: holds no tensors")
    return names


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ModelFormatError naming the file when absent, unreadable or not an object."""
    if not path.exists():
        raise ModelFormatError(f"{path}: missing; not a model folder")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(loaded, dict):
        raise ModelFormatError(f"{path}: expected a JSON object, found {type(loaded).__name__}")
    return loaded


@contextmanager
def loading(path: Path, what: str) -> Iterator[None]:
    """Turn whatever a third-party loader raises on ``path``'s files into one ModelFormatError.

    Used only around library calls that parse files already checked above, for the damage a
    check cannot foresee (a JSON file of the wrong shape, a tensor of the wrong size).
    """
    try:
        yield
    except ModelFormatError:
        raise
    except Exception as exc:  # transformers/tokenizers raise any type, even bare Exception, for bad files
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelFormatError(f"{path}: cannot load the {what} ({type(exc).__name__}: {message})") from exc


def _foreign_kind(head: bytes) -> str | None:
    """What a file whose first bytes are ``head`` is, when it is a pickle or a zip (``torch.save``)."""
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (a torch.save file?)"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:  # PROTO opcode + protocol 2..5
        return "a Python pickle"
    return None
