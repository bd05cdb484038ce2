"""What the ONNX exporter and the ONNX encoder share: the export's files, its record, the session.

Layout (sentence-transformers' convention, so its ONNX backend finds the same files):

    MODEL/onnx/model.onnx          fp32 transformer: input_ids, attention_mask (batch, seq) int64
                                   -> last_hidden_state (batch, seq, hidden) float32
    MODEL/onnx/model_qint8.onnx    the same graph, MatMul and embedding weights in int8
    MODEL/onnx/paraxl_onnx.json    how they were made and from which weights (see ``onnx_export``)

A cross-encoder folder's export has the same files; its graph maps the pair's token ids to logits
(batch, 1) and its record says ``"kind": "cross-encoder"`` (``cross_encoder_onnx``).

``onnx_export`` writes these files, ``onnx_encoder`` reads them; both import this module and
neither imports the other, so running an export needs no encoder and loading one needs no torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paraxl.errors import ModelFormatError
from paraxl.io.hashing import file_sha256, model_folder_fingerprint
from paraxl.modeling.threads import intra_op_threads

if TYPE_CHECKING:  # onnxruntime loads only where a session opens: the layout is plain data
    import onnxruntime

ONNX_DIR = "onnx"
MANIFEST_NAME = "paraxl_onnx.json"
# inference backend name -> file inside the model folder
BACKEND_FILES = {"onnx": f"{ONNX_DIR}/model.onnx", "onnx-int8": f"{ONNX_DIR}/model_qint8.onnx"}
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "last_hidden_state"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportedFile:
    """One ONNX file of a model folder, as recorded in its manifest."""

    backend: str
    path: Path
    sha256: str

    def encoder_fingerprint(self, folder: Path) -> str:
        """What decides an ONNX encoder's vectors: sha256 of (the folder's weights fingerprint, the backend,
        this graph's sha256), so caches and corpus jobs never mix fp32, int8 or re-exported vectors."""
        key = f"{model_folder_fingerprint(folder)}\0{self.backend}\0{self.sha256}"
        return hashlib.sha256(key.encode()).hexdigest()


def manifest_path(folder: Path) -> Path:
    return folder / ONNX_DIR / MANIFEST_NAME


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's export record, or ``None`` when there is none."""
    path = manifest_path(folder)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: unreadable ONNX export record ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ModelFormatError(f"{path}: not a paraxl ONNX export record")
    return manifest


def locate_export(folder: Path, backend: str) -> ExportedFile:
    """The verified ONNX file of ``backend`` in ``folder``; ModelFormatError saying how to fix it.

    Checks that an export exists, that it was made from the folder's current weights and
    config (``model_folder_fingerprint``), and that the file's sha256 is the recorded one.
    """
    rerun = f"re-run `paraxl export-onnx {folder} --force`"
    manifest = read_manifest(folder)
    if manifest is None:
        raise ModelFormatError(f"{folder}: no ONNX export; run `paraxl export-onnx {folder}`")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"{manifest_path(folder)}: an export of another format version; {rerun}")
    if manifest.get("source_fingerprint") != model_folder_fingerprint(folder):
        raise ModelFormatError(
            f"{folder}: the ONNX export is stale (the model's weights or config changed after it was made); {rerun}"
        )
    entry = manifest["files"].get(backend)
    if not isinstance(entry, dict):
        kind = "int8 " if backend == "onnx-int8" else ""
        raise ModelFormatError(f"{folder}: no {kind}ONNX export; run `paraxl export-onnx {folder}`")
    path = folder / BACKEND_FILES[backend]
    if not path.is_file():
        raise ModelFormatError(f"{path}: missing although {manifest_path(folder)} records it; {rerun}")
    digest = file_sha256(path)
    if digest != entry.get("sha256"):
        raise ModelFormatError(f"{path}: does not match its record in {manifest_path(folder)}; {rerun}")
    return ExportedFile(backend, path, digest)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under taskset or a container)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)  # pragma: no cover (macOS, Windows)


SPINNING_VARIABLE = "PARAXL_ORT_SPINNING"
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def session_settings() -> dict[str, Any]:
    """The ONNX Runtime session options paraxl uses, and why (``paraxl.modeling.threads`` for the threads).

    * ``intra_op_num_threads`` = physical cores of the affinity mask (fewer if ``OMP_NUM_THREADS`` says
      so): the MatMul/Gemm kernels split across them; a hyper-thread sibling shares a core's vector
      units, so it adds no FLOPs.
    * ``inter_op_num_threads`` = 1 and ``execution_mode`` sequential: a BERT graph is one chain of
      operators, so the parallel executor would only add scheduling (ONNX Runtime's docs advise
      sequential unless the graph has many branches).
    * ``graph_optimization_level`` = all: fuses attention, LayerNorm, GELU and bias-adds (the
      "extended" fusions need no particular CPU; "layout" ones only apply where they help).
    * intra-op threads spin while waiting for work (ONNX Runtime's default): between the many small
      kernels of one pass, waking sleeping threads costs more than the spin on dedicated cores.
      ``PARAXL_ORT_SPINNING=0`` turns it off, for a process whose cores are not dedicated: there a
      spinning thread takes CPU from the threads it waits for (``paraxl serve`` shares its cores with
      the HTTP layer; see RESULTS.md for the measurement).
    * ``disabled_optimizers``: ONNX Runtime's SkipLayerNormFusion. Its fused CPU kernel (residual add +
      LayerNorm in one) took 1.7 ms per call on an int8 PAWS-X batch of multilingual-e5-small against
      0.2 ms for LayerNormalization plus 0.1 ms for the Add it replaces (2 AVX-512 cores; an fp32
      export keeps them apart anyway, so this changes int8 graphs only; RESULTS.md).
    """
    return {
        "intra_op_num_threads": intra_op_threads(),
        "inter_op_num_threads": 1,
        "execution_mode": "ORT_SEQUENTIAL",
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "allow_spinning": os.environ.get(SPINNING_VARIABLE, "1").strip() != "0",
        "disabled_optimizers": list(DISABLED_OPTIMIZERS),
    }


def session_options() -> onnxruntime.SessionOptions:
    """Options for every paraxl ONNX Runtime session (see :func:`session_settings`), warnings only."""
    import onnxruntime

    settings = session_settings()
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, settings["graph_optimization_level"])
    options.execution_mode = getattr(onnxruntime.ExecutionMode, settings["execution_mode"])
    options.intra_op_num_threads = settings["intra_op_num_threads"]
    options.inter_op_num_threads = settings["inter_op_num_threads"]
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings["allow_spinning"] else "0")
    options.log_severity_level = 3  # errors only: no optimizer chatter on the user's terminal
    return options


def open_session(path: Path) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on ``path`` (CPU) with paraxl's settings (:func:`session_settings`)."""
    import onnxruntime

    return onnxruntime.InferenceSession(
        str(path),
        session_options(),
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(DISABLED_OPTIMIZERS),
    )
