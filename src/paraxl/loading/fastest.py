"""The ``auto`` inference backend: the fastest backend whose vectors are torch's, for one model folder.

ONNX Runtime fp32 runs the same transformer 1.75-2x faster than PyTorch on a CPU and its
embeddings equal torch's to <= 1e-5 max-abs (``onnx_export.EMBEDDING_TOLERANCE``, checked on
every export; 1.2e-7 measured on multilingual-e5-small), so ``auto`` picks it whenever the model
has, or may be given, a checked fp32 export, and PyTorch otherwise. int8 changes the vectors
(0.2-0.8 points on PAWS-X and Tatoeba) and is never picked: it stays an explicit choice.

Where the export comes from:
    * the folder's own ``onnx/`` export when it is current and carries the embedding check;
    * a folder in paraxl's cache (bundled models): exported there on first use;
    * a user's folder, which paraxl never writes into: exported into a *mirror* under
      ``$PARAXL_CACHE_DIR/onnx-exports/<weights fingerprint>/`` (links to the folder's files plus
      the export), reused by later runs on the same weights; with ``keep_export=False`` the mirror
      lives only until the encoder has loaded (nothing is left in the cache).

When the export fails its check against torch (or cannot be made at all), the choice is torch
and ``reason`` says why, for the caller to print.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from paraxl.errors import ModelFormatError
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.loading.backends import EXPORT_DIRS, open_encoder, owned_by_paraxl
from paraxl.modeling.protocol import SentenceEncoder
from paraxl.paths import cache_dir

log = logging.getLogger(__name__)

AUTO_BACKEND = "auto"
MIRROR_ROOT = "onnx-exports"


@dataclass(frozen=True)
class BackendChoice:
    """What ``auto`` picked for a folder: the backend, the folder holding its files, and why."""

    backend: str  # "onnx" or "torch"
    folder: Path  # the model folder (the export may lie in its mirror in paraxl's cache)
    reason: str  # one line for the user
    numerics: str | None  # numerics_fingerprint of the encoder: what caches and result files key on
    fell_back: bool = False  # True when ONNX was tried and failed: say it loudly
    export_seconds: float = 0.0  # time spent exporting or checking now (0 when an export was ready)


def open_fastest_identical(
    folder: Path, keep_export: bool = True, export_user_folder: bool = True
) -> tuple[SentenceEncoder, BackendChoice]:
    """The encoder of ``folder`` on the fastest backend identical to torch, and the choice made.

    Args:
        folder: a model folder (bundled, local or downloaded).
        keep_export: for a folder outside paraxl's cache, keep the export in the cache for later
            runs (True) or drop it once the encoder has loaded (False: for weights seen once).
        export_user_folder: False: a folder outside paraxl's cache without a checked export of its
            own runs on torch (for a caller that encodes too little to repay an export).
    """
    if not (export_user_folder or owned_by_paraxl(folder) or _has_checked_export(folder)):
        encoder = open_encoder(folder, "torch")
        reason = "torch (the folder has no checked ONNX export; making one would cost more than it saves here)"
        return encoder, BackendChoice("torch", folder, reason, encoder.fingerprint)
    began = time.perf_counter()
    once: list[Path] = []  # a mirror to drop when done (keep_export=False)
    try:
        target, difference = _checked_export(folder, keep_export, once)
        spent = time.perf_counter() - began
        encoder = open_encoder(target, "onnx")
        # checked to <= EMBEDDING_TOLERANCE: torch's key (see numerics_fingerprint)
        numerics = model_folder_fingerprint(target)
        reason = f"ONNX fp32 (checked against torch on the export's probe texts: max |difference| {difference:.1e})"
        return encoder, BackendChoice("onnx", folder, reason, numerics, export_seconds=spent)
    except Exception as problem:  # any failure to export or check: torch, said loudly (the caller prints it)
        line = str(problem).splitlines()[0] if str(problem) else type(problem).__name__
        reason = f"torch: falling back from ONNX fp32, whose export failed ({line})"
        log.warning("%s", reason)
        torch_encoder = open_encoder(folder, "torch")
        return torch_encoder, BackendChoice("torch", folder, reason, torch_encoder.fingerprint, fell_back=True)
    finally:
        for mirror in once:  # the session holds the graph in memory: the files may go
            shutil.rmtree(mirror, ignore_errors=True)


def _checked_export(folder: Path, keep_export: bool, once: list[Path]) -> tuple[Path, float]:
    """A folder holding ``folder``'s files and an fp32 export within the embedding bound; its difference.

    Raises ModelFormatError (or the exporter's error) when no such export can be had.
    """
    from paraxl.inference.onnx_export import EMBEDDING_TOLERANCE, embedding_check, ensure_export, measure_export
    from paraxl.inference.onnx_files import locate_export

    if owned_by_paraxl(folder):
        target = folder  # exported here on first use; an older export gets its check recorded
    else:
        try:  # the user's own export (paraxl export-onnx): read only
            locate_export(folder, "onnx")
            checked = embedding_check(folder)
            checked = measure_export(folder) if checked is None else checked  # an older export: check it now
            if checked <= EMBEDDING_TOLERANCE:
                return folder, checked
        except ModelFormatError as problem:
            log.info("%s: no usable ONNX export in the folder (%s); exporting into paraxl's cache", folder, problem)
        target = _mirror(folder, keep_export)
        if not keep_export:
            once.append(target)
    ensure_export(target, "onnx")
    checked = embedding_check(target)
    if checked is None or not checked <= EMBEDDING_TOLERANCE:  # ensure_export records it; never expected
        raise ModelFormatError(f"{target}: the ONNX export carries no embedding check within {EMBEDDING_TOLERANCE:g}")
    return target, checked


def _has_checked_export(folder: Path) -> bool:
    """Whether ``folder`` holds a current fp32 export whose record shows the embedding check passed."""
    from paraxl.inference.onnx_export import EMBEDDING_TOLERANCE, embedding_check
    from paraxl.inference.onnx_files import locate_export

    try:
        locate_export(folder, "onnx")
    except ModelFormatError:
        return False
    checked = embedding_check(folder)
    return checked is not None and checked <= EMBEDDING_TOLERANCE


def _mirror(folder: Path, keep_export: bool) -> Path:
    """A folder in paraxl's cache whose entries link to ``folder``'s (its own export aside).

    Keyed by the weights fingerprint, so the mirror of changed weights is another folder and an
    export is never used for weights it was not made from (``locate_export`` checks it as well).
    """
    root = cache_dir() / MIRROR_ROOT
    root.mkdir(parents=True, exist_ok=True)
    if keep_export:
        mirror = root / model_folder_fingerprint(folder)[:32]
        mirror.mkdir(exist_ok=True)
    else:
        mirror = Path(tempfile.mkdtemp(prefix=".once-", dir=root))
    source = folder.resolve()
    for entry in source.iterdir():
        link = mirror / entry.name
        if entry.name in EXPORT_DIRS or entry.name.startswith(".") or link.exists() or link.is_symlink():
            continue
        try:
            link.symlink_to(entry, target_is_directory=entry.is_dir())
        except FileExistsError:  # another paraxl process made the same link meanwhile
            continue
    return mirror


def numerics_fingerprint(encoder: SentenceEncoder, backend: str, folder: Path) -> str | None:
    """The key of what decides ``encoder``'s vectors *up to fp32 noise*: caches and summaries key on it.

    torch and a checked ONNX fp32 export share it (the weights fingerprint, which is what torch's
    ``encoder.fingerprint`` has always been, so caches filled before this key existed stay valid).
    Sharing is safe because the export's embeddings were checked against torch to <= 1e-5 max-abs:
    that moves a cosine by at most ~2e-5, far below the 2 decimals of a percentage (or the 3 of an
    alignment) every score is reported at; a threshold or nearest neighbour decided by less than
    that is a coin toss either way, and tests/test_backend_identity.py shows every task's main score
    unchanged. int8 (and an fp32 export never checked at that bound) keeps its own key: its vectors differ.

    ``folder``: the folder holding the export (the model's own, or its mirror in the cache).
    """
    if backend == "onnx":
        from paraxl.inference.onnx_export import EMBEDDING_TOLERANCE, embedding_check

        checked = embedding_check(folder)
        if checked is not None and checked <= EMBEDDING_TOLERANCE:
            return model_folder_fingerprint(folder)
    return encoder.fingerprint
