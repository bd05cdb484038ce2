"""The batching policy every backend shares (``paraxl.modeling.batching``), against naive oracles, and the
PyTorch encoder through it (ONNX through it: ``test_onnx_backend.py``)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from paraxl.errors import InputError
from paraxl.modeling.batching import DEFAULT_MAX_TOKENS, TextTokenizer, Tokenized, pad_batch, plan_batches
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.threads import configure_torch_threads, physical_cores, torch_thread_settings

TEXTS = [
    "the cat sat on the mat",
    "x",
    "",
    "le chat der hund " * 12,
    "the dog ran",
    "猫は犬",
    "a b c d e f g h i j k l m n o p",
    "ABC xyz 123 !?",
    "cat " * 300,  # past max_seq_length: truncated
]


# ---------------------------------------------------------------- plan_batches
def naive_plan(lengths: list[int], batch_size: int, max_tokens: int | None) -> list[list[int]]:
    """Oracle: a stable sort by decreasing length, then rows added one at a time while they fit."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # Python's sort is stable
    batches: list[list[int]] = []
    for index in order:
        current = batches[-1] if batches else None
        if current is not None and len(current) < batch_size:
            width = max(max(lengths[i] for i in current), lengths[index], 1)
            if max_tokens is None or (len(current) + 1) * width <= max_tokens:
                current.append(index)
                continue
        batches.append([index])
    return batches


@pytest.mark.parametrize("seed", range(40))
def test_plan_batches_matches_the_naive_plan_and_keeps_its_promises(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    lengths = rng.integers(1, 80, size=n).tolist()
    if seed % 3 == 0 and n:  # many ties: stability matters
        lengths = rng.integers(1, 4, size=n).tolist()
    batch_size = int(rng.integers(1, 12))
    max_tokens = None if seed % 4 == 0 else int(rng.integers(1, 200))
    plan = plan_batches(lengths, batch_size, max_tokens)
    assert [batch.tolist() for batch in plan] == naive_plan(lengths, batch_size, max_tokens)
    flat = [int(i) for batch in plan for i in batch]
    assert sorted(flat) == list(range(n))  # every index exactly once
    assert flat == sorted(range(n), key=lambda i: -lengths[i])  # longest first, ties in input order
    for batch in plan:
        assert 1 <= len(batch) <= batch_size
        width = max(lengths[i] for i in batch)
        if max_tokens is not None and len(batch) > 1:
            assert len(batch) * width <= max_tokens  # only a lone over-long row may exceed the budget


def test_plan_batches_small_cases_and_bad_arguments() -> None:
    assert plan_batches([], 4) == []
    assert [b.tolist() for b in plan_batches([5, 500, 5, 5], 2, max_tokens=100)] == [[1], [0, 2], [3]]
    assert [b.tolist() for b in plan_batches([3, 3, 3], 8)] == [[0, 1, 2]]
    with pytest.raises(InputError, match="batch_size"):
        plan_batches([1], 0)
    with pytest.raises(InputError, match="max_tokens"):
        plan_batches([1], 2, max_tokens=0)
    assert DEFAULT_MAX_TOKENS >= 32 * 64  # PAWS-length texts keep whole 32-row batches


# ---------------------------------------------------------------- pad_batch, Tokenized
def test_pad_batch_equals_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    rows = [rng.integers(2, 1000, size=int(rng.integers(1, 20))).tolist() for _ in range(17)]
    ids, mask = pad_batch(rows, pad_id=1)
    width = max(len(row) for row in rows)
    for r, row in enumerate(rows):
        assert ids[r].tolist() == row + [1] * (width - len(row))
        assert mask[r].tolist() == [1] * len(row) + [0] * (width - len(row))
    assert ids.dtype == mask.dtype == np.int64


def test_tokenized_lengths_and_concat() -> None:
    first, second = Tokenized(([0, 5, 2], [0, 2])), Tokenized(([0, 7, 7, 7, 2],))
    merged = Tokenized.concat([first, second])
    assert len(merged) == 3 and merged.lengths.tolist() == [3, 2, 5] and merged.total_tokens == 10
    assert merged.input_ids[2] == [0, 7, 7, 7, 2]
    assert len(Tokenized(())) == 0 and Tokenized(()).lengths.shape == (0,)


# ---------------------------------------------------------------- tokenizing once
def test_tokenize_texts_equals_the_hugging_face_call(tiny_encoder: BiEncoder) -> None:
    for prompt_name, prefix in ((None, "query: "), ("passage", "passage: "), ("", "")):
        expected = tiny_encoder.tokenizer(
            [prefix + text for text in TEXTS], truncation=True, max_length=tiny_encoder.max_seq_length
        )["input_ids"]
        got = tiny_encoder.tokenize_texts(TEXTS, prompt_name)
        assert [list(ids) for ids in got.input_ids] == expected
        assert got.lengths.tolist() == [len(ids) for ids in expected]
    assert tiny_encoder.tokenize_texts(["cat " * 300]).lengths.tolist() == [tiny_encoder.max_seq_length]
    with pytest.raises(InputError, match="single string"):
        tiny_encoder.tokenize_texts("the cat")


def test_the_tokenizer_follows_a_new_max_seq_length(tiny_encoder: BiEncoder) -> None:
    from dataclasses import replace

    assert tiny_encoder.tokenize_texts(["cat " * 300]).lengths.tolist() == [tiny_encoder.max_seq_length]
    tiny_encoder.settings = replace(tiny_encoder.settings, max_seq_length=10)  # as the trainer does
    assert tiny_encoder.tokenize_texts(["cat " * 300]).lengths.tolist() == [10]


def test_tokenizing_from_threads_beside_hugging_face_calls(tiny_encoder: BiEncoder) -> None:
    # the private Rust copy is never reconfigured, so it never meets "Already borrowed"; the encoder's own
    # tokenizer keeps being reconfigured by `tokenize` (padding on) in other threads meanwhile
    expected = [len(ids) for ids in tiny_encoder.tokenize_texts(TEXTS).input_ids]
    failures: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(30):
                if i % 2:
                    assert tiny_encoder.tokenize_texts(TEXTS).lengths.tolist() == expected
                else:
                    tiny_encoder.tokenize(TEXTS[:3])
        except BaseException as exc:  # collected: an exception in a thread would not fail the test
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures


def test_text_tokenizer_keeps_the_encoders_tokenizer_untouched(tiny_encoder: BiEncoder) -> None:
    tokenizer = tiny_encoder.tokenizer
    before = tokenizer.backend_tokenizer.truncation
    TextTokenizer(tokenizer, 7)(["the cat sat on the mat and more"])
    assert tokenizer.backend_tokenizer.truncation == before


# ---------------------------------------------------------------- the PyTorch encoder through the policy
@pytest.mark.parametrize("max_tokens", [None, DEFAULT_MAX_TOKENS, 40])
def test_torch_encode_equals_each_text_alone(tiny_encoder: BiEncoder, max_tokens: int | None) -> None:
    tiny_encoder.max_batch_tokens = max_tokens  # 40: the long texts get batches of their own
    alone = np.stack([tiny_encoder.encode([text])[0] for text in TEXTS])
    together = tiny_encoder.encode(TEXTS, batch_size=4)
    assert together.dtype == np.float32 and together.shape == (len(TEXTS), tiny_encoder.dimension)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    tokenized = tiny_encoder.tokenize_texts(TEXTS)
    np.testing.assert_array_equal(tiny_encoder.encode_tokenized(tokenized, batch_size=4), together)


def test_torch_encode_matches_sentence_transformers(tiny_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    ours = BiEncoder.load(tiny_model_dir).encode(TEXTS, prompt_name="query")
    theirs = SentenceTransformer(str(tiny_model_dir), device="cpu").encode(TEXTS, prompt_name="query")
    assert np.abs(ours - theirs).max() <= 1e-5


def test_encode_tokenized_checks_batch_size_and_handles_nothing(tiny_encoder: BiEncoder) -> None:
    with pytest.raises(InputError, match="batch_size"):
        tiny_encoder.encode_tokenized(tiny_encoder.tokenize_texts(["a"]), batch_size=0)
    assert tiny_encoder.encode_tokenized(Tokenized(())).shape == (0, tiny_encoder.dimension)


# ---------------------------------------------------------------- thread settings
def test_thread_settings_are_chosen_and_recorded() -> None:
    import os

    import torch

    cores = physical_cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    settings = configure_torch_threads()
    assert settings["intra_op_threads"] == min(before, cores)  # lowered to the cores, never raised
    assert settings == torch_thread_settings() and settings["physical_cores"] == cores
    torch.set_num_threads(before)
