"""Model identity checks of an embeddings folder: the model a sharded index build records, and --model.

The index records the model that made the embeddings (so ``paraxl search`` embeds queries with the same
model and refuses another); the folder itself is read by :mod:`~paraxl.corpus.embeddings_folder`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paraxl.errors import InputError


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
