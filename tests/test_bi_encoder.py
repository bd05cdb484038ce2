from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from paraxl.errors import InputError, ModelFormatError
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.pooling import pool

TEXTS = [
    "the cat sat on the mat",
    "der hund",
    "le chat ran",
    "猫は犬",
    "a",
    "dog dog dog dog dog dog dog dog",
    "ABC xyz",
]


def test_mean_and_cls_pooling_match_naive_loop() -> None:
    rng = torch.Generator().manual_seed(0)
    tokens = torch.randn(3, 5, 4, generator=rng)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    mean = pool(tokens, mask, "mean")
    for row in range(3):
        kept = [tokens[row, t] for t in range(5) if mask[row, t]]
        torch.testing.assert_close(mean[row], torch.stack(kept).mean(0))
    torch.testing.assert_close(pool(tokens, mask, "cls"), tokens[:, 0])


def test_encode_restores_order_and_is_batch_invariant(tiny_encoder: BiEncoder) -> None:
    one_by_one = np.stack([tiny_encoder.encode([t])[0] for t in TEXTS])
    batched = tiny_encoder.encode(TEXTS, batch_size=3)
    assert batched.dtype == np.float32 and batched.shape == (len(TEXTS), tiny_encoder.dimension)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_encode_applies_prompt_and_returns_torch(tiny_encoder: BiEncoder) -> None:
    default = tiny_encoder.encode(["the cat"], output="torch")
    assert isinstance(default, torch.Tensor)
    explicit = tiny_encoder.encode(["query: the cat"], prompt_name="")
    np.testing.assert_allclose(default.numpy(), explicit, atol=1e-6)
    passage = tiny_encoder.encode(["the cat"], prompt_name="passage")
    assert not np.allclose(passage, explicit)
    with pytest.raises(InputError, match="unknown prompt"):
        tiny_encoder.encode(["x"], prompt_name="nope")
    with pytest.raises(InputError, match="list of texts"):
        tiny_encoder.encode("a single string")  # type: ignore[arg-type]
    assert tiny_encoder.encode([]).shape == (0, tiny_encoder.dimension)


def test_encode_truncates_to_max_seq_length(tiny_encoder: BiEncoder) -> None:
    features = tiny_encoder.tokenize(["cat " * 500])
    assert features["input_ids"].shape[1] == tiny_encoder.max_seq_length
    assert np.isfinite(tiny_encoder.encode(["cat " * 500])).all()


def test_encode_restores_training_mode(tiny_encoder: BiEncoder) -> None:
    tiny_encoder.train()
    first = tiny_encoder.encode(["the cat sat"])
    assert tiny_encoder.training
    np.testing.assert_allclose(first, tiny_encoder.encode(["the cat sat"]), atol=1e-6)  # dropout was off


def test_freeze_word_embeddings_blocks_only_that_gradient(tiny_encoder: BiEncoder, tmp_path: Path) -> None:
    tiny_encoder.freeze_word_embeddings()
    tiny_encoder.train()
    embeddings = tiny_encoder(tiny_encoder.tokenize(["the cat", "der hund"]))
    embeddings.sum().backward()
    word = tiny_encoder.backbone.get_input_embeddings().weight
    assert word.grad is None and not word.requires_grad
    assert tiny_encoder.backbone.embeddings.position_embeddings.weight.grad is not None
    tiny_encoder.save(tmp_path / "frozen")
    reloaded = BiEncoder.load(tmp_path / "frozen")
    assert reloaded.settings.freeze_word_embeddings
    assert not reloaded.backbone.get_input_embeddings().weight.requires_grad


def test_save_load_roundtrip_and_sentence_transformers_parity(tiny_encoder: BiEncoder, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "saved"
    tiny_encoder.save(folder)
    ours = BiEncoder.load(folder).encode(TEXTS)
    np.testing.assert_allclose(ours, tiny_encoder.encode(TEXTS), atol=1e-6)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(TEXTS, convert_to_numpy=True)
    assert np.abs(ours - theirs).max() <= 1e-5


def test_save_replaces_existing_folder_atomically(tiny_encoder: BiEncoder, tmp_path: Path) -> None:
    parent = tmp_path / "out"
    folder = parent / "m"
    tiny_encoder.save(folder)
    (folder / "stale.txt").write_text("old")
    tiny_encoder.save(folder)
    assert not (folder / "stale.txt").exists()
    assert [p.name for p in parent.iterdir()] == ["m"]  # no temporary folders left behind


def test_load_refuses_pickled_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelFormatError, match="safetensors"):
        BiEncoder.load(folder)
    with pytest.raises(ModelFormatError, match=r"no config\.json"):
        BiEncoder.load(tmp_path)


def test_progress_bar_counts_every_text(tiny_encoder: BiEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.progress import Progress

    advanced: list[float] = []
    original = Progress.advance
    monkeypatch.setattr(Progress, "advance", lambda self, task, n: (advanced.append(n), original(self, task, n)))
    texts = [f"cat {i}" for i in range(300)]  # above the automatic threshold
    shown = tiny_encoder.encode(texts, batch_size=64)
    assert sum(advanced) == 300
    advanced.clear()
    quiet = tiny_encoder.encode(texts, batch_size=64, show_progress=False)
    assert advanced == []
    np.testing.assert_array_equal(shown, quiet)


def test_tokenize_by_length_equals_tokenize_per_chunk(tiny_encoder: BiEncoder) -> None:
    texts = ["the cat sat on the mat", "le", "der hund ran on the mat and sat", "猫", "the dog", "chat chat chat"]
    order, chunks = tiny_encoder.tokenize_by_length(texts, chunk_size=4, prompt_name="passage")
    assert sorted(order.tolist()) == list(range(len(texts)))
    lengths = [int(chunk["attention_mask"][i].sum()) for chunk in chunks for i in range(chunk["input_ids"].shape[0])]
    assert lengths == sorted(lengths)
    for start, chunk in zip(range(0, len(texts), 4), chunks, strict=True):
        expected = tiny_encoder.tokenize([texts[i] for i in order[start : start + 4].tolist()], "passage")
        assert chunk.keys() == expected.keys()
        for key in expected:
            assert torch.equal(chunk[key], expected[key]), key
