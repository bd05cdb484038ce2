"""The shard mapper: a callable class that loads the encoder once and turns shards into embedding files.

Every engine runs this same class (in the driver, in local worker processes, as Ray Data actors), so
the output does not depend on the engine. A shard ``s`` becomes two files in the output folder,
each written atomically (a temporary file renamed into place, so a killed worker leaves no half file):
    ``shard-<s>.npy``      (rows, dim) float32 or float16 embeddings, in row order;
    ``shard-<s>.ids.npy``  (rows,) int64 ids: each row's position in the whole corpus.
Memory is one shard's texts and embeddings, whatever the corpus's size.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.corpus.plan import ShardTask
from paraxl.corpus.reading import read_shard_texts
from paraxl.errors import InputError, ParaxlError
from paraxl.io.atomic import atomic_path
from paraxl.modeling.protocol import SentenceEncoder
from paraxl.modeling.threads import physical_cores

DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class EncodeSettings:
    """What every worker needs: the model (and the fingerprint it must have), prompt, batch, dtype, folder.

    ``threads``: intra-op threads per worker, torch and ONNX Runtime (the worker's share of the cores; 0
    leaves the backend's own). ``encoder_fingerprint``: for ONNX backends, the encoder's fingerprint, which
    also names the ``.onnx`` graph (a re-export or re-quantisation of the same weights gives other vectors).
    """

    model: str
    backend: str
    weights_fingerprint: str
    prompt_name: str | None
    batch_size: int
    dtype: str
    output_dir: str
    threads: int = 0
    encoder_fingerprint: str | None = None


@dataclass(frozen=True)
class ShardResult:
    """A finished shard (file names and sha256s), or the input error that stopped it (``error``)."""

    index: int
    rows: int = 0
    dimension: int = 0
    embeddings: str = ""
    embeddings_sha256: str = ""
    ids: str = ""
    ids_sha256: str = ""
    seconds: float = 0.0
    worker: str = ""
    error: str | None = None
    error_path: str | None = None
    error_line: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ShardResult:
        return cls(**json.loads(text))

    def input_error(self) -> InputError:
        """The worker's error as the driver raises it (``file:line: reason``)."""
        return InputError(self.error or "unknown error", self.error_path, self.error_line)


def shard_names(index: int) -> tuple[str, str]:
    """(embeddings file, ids file) of shard ``index``."""
    return f"shard-{index:06d}.npy", f"shard-{index:06d}.ids.npy"


class ShardEncoder:
    """Load the encoder once; :meth:`encode_shard` per shard; ``__call__`` is the Ray Data batch form.

    Refuses to start when the model it finds (on this machine: a worker on another node resolves the
    spec itself) is not the one the driver fingerprinted, so shards of two models never mix.
    """

    def __init__(self, settings: EncodeSettings) -> None:
        _quiet_worker()
        if 0 < settings.threads < physical_cores():
            # this worker's share of the cores: torch now, ONNX Runtime when its session is made (it reads
            # OMP_NUM_THREADS through paraxl.modeling.threads.intra_op_threads); N workers x all cores each
            # would oversubscribe the machine N times over
            os.environ["OMP_NUM_THREADS"] = str(settings.threads)
            import torch

            torch.set_num_threads(settings.threads)
        self.settings = settings
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        # a model that does not load (or is another model) comes back as every shard's error, not as an
        # exception here: a failed Ray actor constructor or pool initializer would surface as a traceback
        self.load_error: InputError | None = None
        try:
            self.encoder = self._load()
        except ParaxlError as exc:
            self.load_error = exc if isinstance(exc, InputError) else InputError(str(exc))

    def _load(self) -> SentenceEncoder:
        from paraxl.loading.model import load_model

        model = load_model(self.settings.model, self.settings.backend)
        if model.weights_fingerprint != self.settings.weights_fingerprint:
            raise InputError(
                f"model {self.settings.model!r} on {socket.gethostname()} has weights "
                f"{model.weights_fingerprint[:12]}, not {self.settings.weights_fingerprint[:12]} as on the driver: "
                "every worker needs the same model"
            )
        found = model.encoder.fingerprint
        if self.settings.encoder_fingerprint is not None and found != self.settings.encoder_fingerprint:
            raise InputError(
                f"model {self.settings.model!r} on {socket.gethostname()} has the {self.settings.backend} graph "
                f"{(found or '?')[:12]}, not {self.settings.encoder_fingerprint[:12]} as on the driver: "
                "every worker needs the same export"
            )
        return model.encoder

    def encode_shard(self, task: ShardTask) -> ShardResult:
        """Read, encode and write shard ``task``; an input error comes back as the result, not raised."""
        start = time.perf_counter()
        try:
            if self.load_error is not None:
                raise self.load_error
            texts = read_shard_texts(task)
        except ParaxlError as exc:
            where = exc if isinstance(exc, InputError) else InputError(str(exc))
            return ShardResult(task.index, error=where.reason, error_path=where.path, error_line=where.line)
        settings = self.settings
        # (rows, dim) float32, L2-normalised when the model normalises
        embeddings = self.encoder.encode(texts, batch_size=settings.batch_size, prompt_name=settings.prompt_name)
        ids = np.arange(task.first_id, task.first_id + task.rows, dtype=np.int64)  # (rows,)
        folder = Path(settings.output_dir)
        names = shard_names(task.index)
        sums = [_save(folder / names[0], embeddings.astype(settings.dtype)), _save(folder / names[1], ids)]
        return ShardResult(
            index=task.index,
            rows=task.rows,
            dimension=int(embeddings.shape[1]),
            embeddings=names[0],
            embeddings_sha256=sums[0],
            ids=names[1],
            ids_sha256=sums[1],
            seconds=time.perf_counter() - start,
            worker=self.worker,
        )

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ray Data's ``map_batches`` form: a ``task`` column of JSON shard tasks -> a ``result`` column."""
        results = [self.encode_shard(ShardTask.from_json(str(text))).to_json() for text in batch["task"]]
        return {"result": np.array(results, dtype=object)}


def _quiet_worker() -> None:
    """No model-loading bars from each worker process (the driver draws one bar over shards)."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _save(target: Path, array: np.ndarray) -> str:
    """Write ``array`` as ``.npy`` atomically; its sha256."""
    with atomic_path(target) as tmp:
        with tmp.open("wb") as handle:
            np.save(handle, array)
        digest = hashlib.sha256()
        with tmp.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()
