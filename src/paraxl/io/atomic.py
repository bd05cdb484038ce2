"""Atomic writes: a reader sees the old file/folder or the complete new one, never half of it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600; a finished file gets normal rights
            tmp.chmod(0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(
    target: str | Path,
    value: object,
    *,
    indent: int | None = None,
    ensure_ascii: bool = True,
    allow_nan: bool = True,
    sort_keys: bool = False,
    trailing_newline: bool = True,
) -> None:
    """Write ``value`` as JSON (UTF-8) to ``target`` through :func:`atomic_path`.

    The keywords are ``json.dumps``'s (same defaults); ``trailing_newline`` ends the file with
    ``"\\n"``. ``value`` is serialised before any file is made, so a value JSON cannot hold (NaN
    with ``allow_nan=False``, an unknown type) raises with ``target`` untouched. No fsync (none of the
    writers it replaced had one): atomic against a killed process, not a guarantee across power loss.
    """
    text = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, allow_nan=allow_nan, sort_keys=sort_keys)
    with atomic_path(target, suffix=".json") as tmp:
        tmp.write_text(text + "\n" if trailing_newline else text, encoding="utf-8")


def read_json_record(path: str | Path) -> object | None:
    """The JSON that :func:`write_json_atomic` left at ``path``, or None when there is none or it cannot
    be read (cut short, edited, not UTF-8): for work-folder records, where an unreadable one only means
    that nothing recorded beside it may be reused."""
    try:
        record: object = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: JSONDecodeError and UnicodeDecodeError among others
        return None
    return record


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; move it onto ``target`` on success.

    An existing ``target`` is replaced only after the new folder is complete (it is
    first renamed aside, then deleted), so a crash leaves either the old or the new one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _normal_modes(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "replaced")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _normal_modes(root: Path) -> None:
    """Give ``root`` and everything in it the mode ``mkdir``/``open`` would: 0777/0666 less the umask.

    mkdtemp makes the folder 0700, and libraries that write through their own temporary files
    leave theirs 0600 (transformers' ``model.safetensors``): one output folder would otherwise mix
    files other users can read with files they cannot. Executable files keep their x bits.
    """
    umask = _umask()
    for path in (root, *root.rglob("*")):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o777 & ~umask)
        else:
            path.chmod((0o777 if path.stat().st_mode & 0o111 else 0o666) & ~umask)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
