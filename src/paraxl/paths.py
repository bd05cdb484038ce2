"""Where paraxl keeps its cache and where it looks for benchmark data.

Functions read the environment when called, never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "PARAXL_CACHE_DIR"
DATA_ENV = "PARAXL_DATA_DIR"


def cache_dir() -> Path:
    """``$PARAXL_CACHE_DIR``, else ``$XDG_CACHE_HOME/paraxl``, else ``~/.cache/paraxl``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "paraxl"


def data_dir(explicit: str | Path | None = None) -> Path | None:
    """The benchmark data folder: the explicit option, else ``$PARAXL_DATA_DIR``, else None."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else None
