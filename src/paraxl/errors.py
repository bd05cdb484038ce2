"""paraxl's own exception types: every user-facing failure is one of these.

The CLI prints ``str(error)`` as one line and exits non-zero; nothing deeper leaks out.
"""

from __future__ import annotations

from pathlib import Path


class ParaxlError(Exception):
    """Base class of every error paraxl raises on purpose."""


class InputError(ParaxlError):
    """Bad user input, located as precisely as we can: ``file:line: reason``."""

    def __init__(self, reason: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        self.line = line
        where = self.path or ""
        if self.path is not None and line is not None:
            where = f"{self.path}:{line}"
        super().__init__(f"{where}: {reason}" if where else reason)


class ModelSpecError(ParaxlError):
    """A model specification that names nothing loadable."""


class ModelFormatError(ParaxlError):
    """A model file or folder that is not what it claims to be."""


def check_counts(options: object, names: tuple[str, ...]) -> None:
    """Command-line counts (``argparse`` attributes) that must be at least 1; None: not given."""
    for name in names:
        value = getattr(options, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
