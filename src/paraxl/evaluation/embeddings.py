"""What evaluation tasks embed texts with: any ``Embedder``, usually a cached ``BiEncoder``.

Tasks see only ``embed(texts) -> (n, dim) float32``, so they run the same on a real model, a
mock encoder in tests, or (later) an ONNX backend. ``CachedEmbedder`` keys every vector by
(model fingerprint, prompt prefix + text): a text shared by several tasks (Tatoeba's English
sides, PAWS-X sentences reused in cross-lingual pairs) is encoded once, and with a cache
folder a second ``paraxl eval`` of the same model re-encodes nothing.

On disk a cache is a folder per model fingerprint holding shards ``shard-*.npz`` (``keys``:
(n, 16) uint8 digests, ``vectors``: (n, dim) float32). Every ``embed`` call that encodes
something appends one shard, written atomically; concurrent writers never share a file.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from paraxl.io.atomic import atomic_path
from paraxl.modeling.protocol import Embedder, FloatMatrix, SentenceEncoder

__all__ = ["CachedEmbedder", "Embedder", "FloatMatrix", "cache_folder"]

log = logging.getLogger(__name__)

_DIGEST_BYTES = 16


class CachedEmbedder:
    """Embeds with ``encoder``, remembering every vector by (model, prompt prefix + text).

    Args:
        encoder: the model; its default prompt applies unless ``prompt_name`` is given.
        folder: where shards persist (one folder per model fingerprint); ``None``: memory only.
            Give a folder only when the weights are those of the fingerprint (not while training).
        batch_size: texts per forward pass.
        show_progress: a progress bar for large encodes.
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        folder: Path | None = None,
        batch_size: int = 64,
        prompt_name: str | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.encoder = encoder
        self.folder = folder
        self.batch_size = batch_size
        self.prompt_name = prompt_name
        self.show_progress = show_progress
        self._prefix = encoder.prompt_prefix(prompt_name).encode()
        self._vectors: dict[bytes, np.ndarray] = {}
        self.encoded = 0  # texts actually run through the model (the rest came from the cache)
        if folder is not None:
            self._load_shards(folder)

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(self._prefix + b"\0" + text.encode("utf-8", "surrogatepass")).digest()[:_DIGEST_BYTES]

    def _load_shards(self, folder: Path) -> None:
        for shard in sorted(folder.glob("shard-*.npz")):
            try:
                with np.load(shard) as data:
                    keys, vectors = data["keys"], data["vectors"]
            except (OSError, ValueError, KeyError) as exc:  # a damaged shard only costs re-encoding
                log.warning("ignoring unreadable embedding cache shard %s: %s", shard, exc)
                continue
            if vectors.ndim != 2 or vectors.shape[1] != self.encoder.dimension or len(keys) != len(vectors):
                log.warning("ignoring embedding cache shard %s: shape %s does not fit", shard, vectors.shape)
                continue
            for key, vector in zip(keys, vectors, strict=True):
                self._vectors[key.tobytes()] = vector

    def __len__(self) -> int:
        return len(self._vectors)

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Vectors for ``texts`` (n, dim) float32, encoding only those not seen before."""
        keys = [self._key(text) for text in texts]
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._vectors and key not in missing:
                missing[key] = text
        if missing:
            # one encode call with every text not yet cached: the encoder's batching policy
            # (paraxl.modeling.batching: tokenize once, sort by token count, token-budget batches,
            # input order restored) sees them all at once; nothing here sorts or splits them.
            new_keys = list(missing)
            vectors = self.encoder.encode(
                list(missing.values()),
                batch_size=self.batch_size,
                prompt_name=self.prompt_name,
                show_progress=self.show_progress,
            )
            self.encoded += len(new_keys)
            for key, vector in zip(new_keys, vectors, strict=True):
                self._vectors[key] = vector
            if self.folder is not None:
                self._write_shard(new_keys, vectors)
        if not keys:
            return np.empty((0, self.encoder.dimension), dtype=np.float32)
        return np.stack([self._vectors[key] for key in keys]).astype(np.float32, copy=False)

    def _write_shard(self, keys: list[bytes], vectors: np.ndarray) -> None:
        assert self.folder is not None
        name = hashlib.sha256(b"".join(keys)).hexdigest()[:16]
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), _DIGEST_BYTES)
        with atomic_path(self.folder / f"shard-{name}.npz", suffix=".npz") as tmp, tmp.open("wb") as handle:
            np.savez(handle, keys=key_array, vectors=vectors.astype(np.float32))


def cache_folder(root: Path, fingerprint: str) -> Path:
    """The shard folder of one model under a cache root."""
    return root / "embeddings" / fingerprint[:32]
