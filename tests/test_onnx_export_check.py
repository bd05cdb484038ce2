"""The ONNX export's check against torch: both backends' own tokenize + encode on probes that cover
truncation, very short texts, non-Latin scripts, padding and the model's prompts; planted encoder
bugs are refused. The probes the check used before (Hugging Face tokenizer, no prompt, texts under
the tiny model's max_seq_length here) are run through the same check to show what they missed."""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from paraxl.errors import ModelFormatError
from paraxl.inference import onnx_export
from paraxl.inference.export_check import probe_set, probe_texts
from paraxl.inference.onnx_encoder import OnnxEncoder
from paraxl.inference.onnx_export import export_onnx, measure_export
from paraxl.inference.onnx_files import BACKEND_FILES
from paraxl.modeling.batching import TextTokenizer, Tokenized, prefixed
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.st_layout import EncoderSettings

from .tiny import build_tiny_encoder

# the probe texts of the check before it ran the encoders' own paths (always without a prompt)
OLD_PROBES = [
    (
        "",
        (
            "the cat sat on the mat",
            "",
            "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 2,
            "Das Museum öffnet um neun Uhr morgens.",
            "博物館は朝九時に開館します。",
        ),
    )
]
POSITIONS = 160  # the long model's position table: longer than its max_seq_length, so a missed truncation runs


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model (max_seq_length 64, default prompt "query: ") with its fp32 export."""
    folder = tmp_path_factory.mktemp("check") / "model"
    shutil.copytree(tiny_model_dir, folder)
    export_onnx(folder, int8=False)
    return folder


@pytest.fixture(scope="module")
def long_exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT with 160 positions but max_seq_length 128, exported: longer than every old probe."""
    tiny = build_tiny_encoder()
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=len(tiny.tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=POSITIONS,
        pad_token_id=tiny.tokenizer.pad_token_id,
    )
    settings = EncoderSettings(max_seq_length=128, prompts=dict(tiny.settings.prompts), default_prompt_name="query")
    folder = tmp_path_factory.mktemp("check-long") / "model"
    BiEncoder(BertModel(config, add_pooling_layer=False).eval(), tiny.tokenizer, settings).save(folder)
    export_onnx(folder, int8=False)
    return folder


def _graph(folder: Path) -> Path:
    return folder / BACKEND_FILES["onnx"]


def _scripts(text: str) -> set[str]:
    return {unicodedata.name(char).split()[0] for char in text if char.isalpha()}


def test_probes_truncate_pad_and_cover_scripts_and_prompts(exported: Path) -> None:
    encoder = BiEncoder.load(exported)
    probes = probe_set(encoder.settings)
    # the default prompt first, then none, then the named prompt with another prefix ("query" is the default)
    assert [name for name, _ in probes] == [None, "", "passage"]
    texts = probes[0][1]
    raw = encoder.tokenizer(texts[0], add_special_tokens=True)["input_ids"]
    assert len(raw) > encoder.max_seq_length  # the long probe is truncated ...
    tokenized = encoder.tokenize_texts(texts)
    assert tokenized.lengths.max() == encoder.max_seq_length  # ... to max_seq_length, prompt included
    assert tokenized.lengths.min() <= 4 and "" in texts  # an empty text: prompt and special tokens only
    scripts = set().union(*map(_scripts, texts))
    assert {"CJK", "ARABIC", "HANGUL", "LATIN"} <= scripts
    # one encode call pads every row to the longest (a single batch under the default budget)
    assert encoder.max_batch_tokens is not None and len(texts) * encoder.max_seq_length <= encoder.max_batch_tokens
    # a 512-token model's long probe is truncated as well (the word count alone exceeds it)
    assert len(probe_texts(512)[0].split()) > 512


def test_the_check_passes_a_faithful_export_and_records_it(exported: Path) -> None:
    hidden, embedding = onnx_export._check_against_torch(_graph(exported), exported)
    assert hidden < 1e-4 and embedding <= onnx_export.EMBEDDING_TOLERANCE
    assert measure_export(exported) == pytest.approx(embedding, abs=1e-9)
    assert onnx_export.embedding_check(exported) is not None


def test_an_encoder_that_drops_the_prompt_is_refused_old_probes_missed_it(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(OnnxEncoder, "prompt_prefix", lambda self, prompt_name=None: "")
    with pytest.raises(ModelFormatError, match=r"does not reproduce torch .* in the embeddings"):
        onnx_export._check_against_torch(_graph(exported), exported)
    with pytest.raises(ModelFormatError, match="does not reproduce torch"):
        measure_export(exported)  # what `auto` runs on a user's unchecked export
    _, old = onnx_export._check_against_torch(_graph(exported), exported, OLD_PROBES)
    assert old <= onnx_export.EMBEDDING_TOLERANCE  # the old probes never applied a prompt


def test_an_encoder_that_ignores_max_seq_length_is_refused_old_probes_missed_it(
    long_exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted bug truncates at the position table (160), not at max_seq_length (128)."""

    def untruncated(self: OnnxEncoder, texts: Sequence[str], prompt_name: str | None = None) -> Tokenized:
        return TextTokenizer(self.tokenizer, POSITIONS)(prefixed(texts, self.prompt_prefix(prompt_name)))

    encoder = BiEncoder.load(long_exported)
    old_lengths = encoder.tokenize_texts(OLD_PROBES[0][1], "").lengths
    assert old_lengths.max() < encoder.max_seq_length  # no old probe reaches the truncation
    monkeypatch.setattr(OnnxEncoder, "tokenize_texts", untruncated)
    with pytest.raises(ModelFormatError, match=r"does not reproduce torch .* in the embeddings"):
        onnx_export._check_against_torch(_graph(long_exported), long_exported)
    _, old = onnx_export._check_against_torch(_graph(long_exported), long_exported, OLD_PROBES)
    assert old <= onnx_export.EMBEDDING_TOLERANCE


def test_a_failed_check_refuses_the_export(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """export_onnx runs the check on the new graph through the same encoders (here: one that drops the prompt)."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    monkeypatch.setattr(OnnxEncoder, "prompt_prefix", lambda self, prompt_name=None: "")
    with pytest.raises(ModelFormatError, match="does not reproduce torch"):
        export_onnx(folder, int8=False)
    assert list((folder / "onnx").iterdir()) == []
