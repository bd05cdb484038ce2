from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from paraxl.modeling.bi_encoder import BiEncoder

from .tiny import save_tiny

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny model folder; tests copy it before changing anything."""
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture()
def tiny_encoder(tiny_model_dir: Path, tmp_path: Path) -> BiEncoder:
    """A fresh copy of the tiny model per test."""
    copy = tmp_path / "tiny-copy"
    shutil.copytree(tiny_model_dir, copy)
    return BiEncoder.load(copy)


@pytest.fixture(scope="session")
def paraxl_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Bundled models are built into the user's PARAXL_CACHE_DIR if set, else a fresh temp cache."""
    existing = os.environ.get("PARAXL_CACHE_DIR")
    if existing:
        yield Path(existing)
        return
    folder = tmp_path_factory.mktemp("paraxl-cache")
    os.environ["PARAXL_CACHE_DIR"] = str(folder)
    yield folder
    os.environ.pop("PARAXL_CACHE_DIR", None)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Benchmark data: PARAXL_DATA_DIR, else ../shared/data beside the checkout; skip if absent."""
    folder = Path(os.environ.get("PARAXL_DATA_DIR", SHARED_DATA))
    if not folder.is_dir():
        pytest.skip(f"benchmark data not found at {folder}")
    return folder
