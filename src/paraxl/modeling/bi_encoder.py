"""BiEncoder: backbone -> pooling -> optional L2 normalisation, with batched encoding (``batching``'s policy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal, overload

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModel, PreTrainedModel, PreTrainedTokenizerBase

from paraxl.errors import ModelFormatError
from paraxl.io.atomic import atomic_directory
from paraxl.modeling.batching import (
    DEFAULT_MAX_TOKENS,
    Tokenized,
    encode_in_batches,
    prefixed,
    text_tokenizer,
)
from paraxl.modeling.model_files import check_model_folder, loading
from paraxl.modeling.pooling import pool
from paraxl.modeling.protocol import check_batch_size, check_encode_arguments, check_texts
from paraxl.modeling.st_layout import EncoderSettings, read_settings, write_st_files
from paraxl.modeling.threads import configure_torch_threads
from paraxl.modeling.tokenizer_files import load_tokenizer, save_tokenizer


class BiEncoder(torch.nn.Module):
    """A sentence embedding model in the sentence-transformers sense.

    ``forward`` maps tokenized features to embeddings (batch, dim) with gradients, for
    training; ``encode`` maps raw texts to float32 embeddings for inference, batched as every
    backend batches (``paraxl.modeling.batching``; ``max_batch_tokens`` is the padded-token budget
    of one forward pass, ``None`` for rows only).

    Example:
        >>> model = load_encoder("bundled:multilingual-e5-small")  # doctest: +SKIP
        >>> model.encode(["Hello", "Hallo"]).shape  # doctest: +SKIP
        (2, 384)
    """

    def __init__(
        self, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, settings: EncoderSettings
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.settings = settings
        # the folder this model was loaded from: its files decide the embeddings until it is trained
        self.source_folder: Path | None = None
        self.max_batch_tokens: int | None = DEFAULT_MAX_TOKENS
        if settings.freeze_word_embeddings:
            self.freeze_word_embeddings()

    # ------------------------------------------------------------ properties
    @property
    def dimension(self) -> int:
        return int(self.backbone.config.hidden_size)

    @property
    def max_seq_length(self) -> int:
        return self.settings.max_seq_length

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def fingerprint(self) -> str | None:
        """sha256 of the files it was loaded from (``None`` if built in memory); stale once trained."""
        from paraxl.io.hashing import model_folder_fingerprint

        return None if self.source_folder is None else model_folder_fingerprint(self.source_folder)

    def freeze_word_embeddings(self) -> None:
        """Stop gradients into the input word-embedding matrix (paper 1 trains the rest)."""
        self.backbone.get_input_embeddings().weight.requires_grad_(False)
        if not self.settings.freeze_word_embeddings:
            self.settings = replace(self.settings, freeze_word_embeddings=True)

    # ------------------------------------------------------------ tokenize / forward
    def prompt_prefix(self, prompt_name: str | None = None) -> str:
        """The prefix for ``prompt_name`` (default: the model's default prompt; ``""`` for none)."""
        return self.settings.prompt_prefix(prompt_name)

    def tokenize(self, texts: Sequence[str], prompt_name: str | None = None) -> dict[str, torch.Tensor]:
        """Tokenize with the prompt prefix, truncating to ``max_seq_length``; padded to the longest."""
        prefix = self.prompt_prefix(prompt_name)
        batch = self.tokenizer(
            [prefix + text for text in texts],
            padding=True,
            truncation=True,
            max_length=self.max_seq_length,
            return_tensors="pt",
        )
        return {key: batch[key] for key in ("input_ids", "attention_mask")}

    def tokenize_by_length(
        self, texts: Sequence[str], chunk_size: int, prompt_name: str | None = None
    ) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        """Tokenize once, sort by token count, pad per chunk (little padding in each).

        Returns ``(order, chunks)``: chunk ``i`` holds ``texts[order[i*chunk_size : (i+1)*chunk_size]]``,
        tokenized exactly as :meth:`tokenize` would. The sort is stable (ties keep input order).
        """
        prefix = self.prompt_prefix(prompt_name)
        encoded = self.tokenizer(
            [prefix + text for text in texts], truncation=True, max_length=self.max_seq_length
        )  # unpadded lists
        order = torch.sort(torch.tensor([len(ids) for ids in encoded["input_ids"]]), stable=True).indices
        chunks = []
        for start in range(0, len(texts), chunk_size):
            rows = order[start : start + chunk_size].tolist()
            batch = self.tokenizer.pad(
                {key: [encoded[key][i] for i in rows] for key in ("input_ids", "attention_mask")},
                return_tensors="pt",
            )
            chunks.append({key: batch[key] for key in ("input_ids", "attention_mask")})
        return order, chunks

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Shapes: input_ids/attention_mask (batch, seq) -> embeddings (batch, dim)."""
        outputs = self.backbone(input_ids=features["input_ids"], attention_mask=features["attention_mask"])
        embeddings = pool(outputs.last_hidden_state, features["attention_mask"], self.settings.pooling)
        if self.settings.normalize:
            embeddings = F.normalize(embeddings, p=2, dim=-1)
        return embeddings

    # ------------------------------------------------------------ encode
    @overload
    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = ...,
        prompt_name: str | None = ...,
        show_progress: bool | None = ...,
        output: Literal["numpy"] = ...,
    ) -> np.ndarray: ...

    @overload
    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = ...,
        prompt_name: str | None = ...,
        show_progress: bool | None = ...,
        *,
        output: Literal["torch"],
    ) -> torch.Tensor: ...

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        prompt_name: str | None = None,
        show_progress: bool | None = None,
        output: Literal["numpy", "torch"] = "numpy",
    ) -> np.ndarray | torch.Tensor:
        """Embed ``texts`` -> float32 (n, dim), in input order: :meth:`tokenize_texts` + :meth:`encode_tokenized`."""
        check_encode_arguments(texts, batch_size)
        embeddings = self.encode_tokenized(self.tokenize_texts(texts, prompt_name), batch_size, show_progress)
        return torch.from_numpy(embeddings) if output == "torch" else embeddings

    def tokenize_texts(self, texts: Sequence[str], prompt_name: str | None = None) -> Tokenized:
        """Token ids per text as the model reads them: prompt prefix, special tokens, truncated to
        ``max_seq_length``; unpadded. One batch call; safe from several threads (``batching.TextTokenizer``)."""
        check_texts(texts)
        prefix = self.prompt_prefix(prompt_name)
        return text_tokenizer(self, self.tokenizer, self.max_seq_length)(prefixed(texts, prefix))

    @torch.inference_mode()
    def encode_tokenized(
        self, tokenized: Tokenized, batch_size: int = 32, show_progress: bool | None = None
    ) -> np.ndarray:
        """Embed :meth:`tokenize_texts`'s output -> float32 (n, dim), in input order.

        Longest texts first in token-budget batches (``batching.plan_batches``), each padded to its
        longest row. The model is put in eval mode for the call and its previous mode restored.
        """
        check_batch_size(batch_size)
        device = self.device

        def forward(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
            features = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
            features = {key: value.to(device) for key, value in features.items()}  # (batch, seq) int64
            embeddings: np.ndarray = self(features).float().cpu().numpy()  # (batch, dim)
            return embeddings

        was_training = self.training
        self.eval()
        try:
            return encode_in_batches(
                tokenized,
                forward,
                dimension=self.dimension,
                batch_size=batch_size,
                max_tokens=self.max_batch_tokens,
                pad_id=self._pad_id(),
                show_progress=show_progress,
            )
        finally:
            self.train(was_training)

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0

    # ------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Save in the sentence-transformers layout (safetensors weights), atomically."""
        with atomic_directory(path) as tmp:
            self.backbone.save_pretrained(tmp, safe_serialization=True)
            save_tokenizer(self.tokenizer, tmp, self.max_seq_length)  # no state of earlier encode calls
            write_st_files(tmp, self.settings, self.dimension)

    @classmethod
    def load(cls, path: str | Path) -> BiEncoder:
        """Load a saved folder (sentence-transformers or plain Hugging Face layout).

        Every file is checked first (``model_files``): a damaged, foreign or incomplete folder
        raises ModelFormatError naming the file, and weights missing from the safetensors are
        refused rather than initialised at random.
        """
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise ModelFormatError(f"{folder}: not a model folder (no config.json)")
        weights = check_model_folder(folder)
        with loading(folder, "model weights"):
            backbone, info = AutoModel.from_pretrained(
                folder, use_safetensors=True, add_pooling_layer=False, output_loading_info=True
            )
        missing = sorted(info.get("missing_keys") or []) + sorted(info.get("mismatched_keys") or [])
        if missing:
            shown = ", ".join(str(name) for name in missing[:3])
            raise ModelFormatError(
                f"{weights[0]}: lacks {len(missing)} tensor(s) the model needs ({shown}); not this model's weights"
            )
        tokenizer = load_tokenizer(folder)
        limit = int(getattr(backbone.config, "max_position_embeddings", 512))
        settings = read_settings(folder, fallback_max_length=min(limit, int(tokenizer.model_max_length)))
        encoder = cls(backbone, tokenizer, settings)
        encoder.source_folder = folder
        configure_torch_threads()  # one intra-op thread per physical core at most (see modeling.threads)
        return encoder
