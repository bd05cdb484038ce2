"""One writer per folder at a time: an OS file lock (``fcntl.flock``) on ``.paraxl.lock`` inside it.

Every command that writes into a folder another command may write at the same moment (an index
folder: build, add, rebuild; a model folder: calibrate, ONNX export; an eval output folder) does its
whole read-modify-write inside :func:`folder_lock`. Without it two ``paraxl index add`` each read
the index, appended their rows and saved, and the second save dropped the first's rows.

The kernel releases a flock when its process ends, however it ends, so a crash never leaves a stale
lock; the file itself is removed by the process that held it (a process killed outright leaves the
empty file, which the next writer reuses and removes). Two subtleties:

* an index save replaces the whole folder (lock file included) while the lock is held: a process that
  was waiting then holds a lock on a file no longer in the folder. After taking the lock, the file at
  the path is checked to be the one locked; if not, the lock is taken again on the current file.
* a second writer waits ``wait_seconds`` (polling; flock has no timeout of its own), then fails with
  one line naming the holder's process id, which the holder writes into the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from paraxl.errors import InputError

LOCK_FILE = ".paraxl.lock"
# Long enough for a short command (an `index add` of a few texts, a calibration file write) to finish,
# short enough that a user whose command waits behind an hour-long build hears about it.
DEFAULT_WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.05


@contextmanager
def folder_lock(folder: str | Path, what: str, wait_seconds: float | None = None) -> Iterator[None]:
    """Hold the write lock of ``folder`` (created if missing) for the ``with`` block.

    Args:
        folder: the folder written in the block; created (with its parents) if missing, and removed
            again afterwards if it was created here and is empty (a failed first write leaves nothing).
        what: what the folder is, for the message (``"index"``, ``"model folder"``, ...).
        wait_seconds: how long to wait for another process's lock before giving up (default:
            :data:`DEFAULT_WAIT_SECONDS`, read at each call).

    Raises:
        InputError: the lock is still held after ``wait_seconds`` ("``<folder>: <what> is being written
            by another paraxl process (pid N); try again``"), or ``folder`` cannot be created or locked.
    """
    folder = Path(folder)
    created = _make_folder(folder)
    path = folder / LOCK_FILE
    wait = DEFAULT_WAIT_SECONDS if wait_seconds is None else wait_seconds
    handle = _acquire(path, what, time.monotonic() + max(0.0, wait))
    try:
        yield
    finally:
        _release(handle, path)
        if created:
            _remove_if_empty(folder)


def _make_folder(folder: Path) -> bool:
    """Create ``folder`` if needed; whether it was created here (the topmost new folder is not tracked:
    only ``folder`` itself is removed again)."""
    if folder.is_dir():
        return False
    if folder.exists():
        raise InputError("exists and is not a folder", folder)
    try:
        folder.mkdir(parents=True)
    except FileExistsError:  # another writer made it just now, or a file appeared
        if not folder.is_dir():
            raise InputError("exists and is not a folder", folder) from None
        return False
    except OSError as exc:
        raise InputError(f"cannot create the folder ({exc.strerror})", folder) from None
    return True


def _acquire(path: Path, what: str, deadline: float) -> int:
    """An open descriptor of ``path`` holding its exclusive flock, with our pid written into it."""
    while True:
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # the folder was replaced or removed between two tries: make it again
            _make_folder(path.parent)
            continue
        except OSError as exc:
            raise InputError(f"cannot lock this {what} for writing ({exc.strerror})", path.parent) from None
        if not _lock_until(handle, deadline):
            holder = _holder(handle)
            os.close(handle)
            raise InputError(
                f"{what} is being written by another paraxl process (pid {holder}); try again", path.parent
            )
        if _is_current(handle, path):
            os.ftruncate(handle, 0)
            os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
            return handle
        os.close(handle)  # we locked a file that was replaced or removed meanwhile: lock the new one


def _lock_until(handle: int, deadline: float) -> bool:
    """Take the exclusive flock of ``handle``, polling until ``deadline``; whether it was taken."""
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)


def _is_current(handle: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``handle``."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle)
    return (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)


def _holder(handle: int) -> str:
    """The pid the holder wrote into the lock file ("unknown" while it is still writing it)."""
    text = os.pread(handle, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"


def _release(handle: int, path: Path) -> None:
    """Remove the lock file if it is still ours, then unlock (closing the descriptor unlocks).

    Only the holder removes the file, and only while holding it, so a waiter never loses a lock it
    took: it finds the file gone and locks a new one.
    """
    try:
        if _is_current(handle, path):
            path.unlink()
    except OSError:
        pass  # a read-only or vanished folder: the kernel still releases the lock below
    finally:
        os.close(handle)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (the work wrote into it, or another writer is in it): kept
        folder.rmdir()
