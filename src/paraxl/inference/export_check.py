"""The check every ONNX export passes before it is written: the graph against torch, end to end.

The folder's ``BiEncoder`` (loaded afresh, as the torch backend loads it) and an ``OnnxEncoder`` on
the new graph each tokenize and encode the probe texts (:func:`probe_set`) by their own
``tokenize_texts`` + ``encode_tokenized``, under every prompt the model has. The probes cover what
the export's tracing batch did not: a text longer than ``max_seq_length`` (truncation), an empty and
a one-letter text, Chinese, Arabic, Korean and Japanese, and rows of very different lengths in one
padded batch. Token states must agree within 1e-4 (relative to their scale), embeddings within
``EMBEDDING_TOLERANCE``. See :mod:`paraxl.inference.onnx_export` for why the bound matters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paraxl.errors import ModelFormatError
from paraxl.inference.onnx_files import OUTPUT_NAME, ExportedFile
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.st_layout import EncoderSettings

# The probes besides the long one: very short, and scripts a Latin-only check would miss.
PROBE_TEXTS = (
    "",  # the prompt and special tokens only
    "x",
    "the cat sat on the mat",
    "Das Museum öffnet um neun Uhr morgens.",
    "博物馆每天早上九点开门，周一闭馆。",  # zh
    "يفتح المتحف أبوابه في الساعة التاسعة صباحًا.",  # ar
    "박물관은 매일 오전 아홉 시에 문을 엽니다.",  # ko
    "博物館は朝九時に開館します。",  # ja
)
# Words of the long probe: each whitespace-separated word is at least one token in any subword
# vocabulary, so ``max_seq_length + 16`` of them are always truncated.
_LONG_WORDS = (
    *("the", "museum", "opens", "at", "nine"),
    *("博物馆", "开门", "المتحف", "يفتح", "박물관은", "엽니다", "Museum", "öffnet"),
)
# Max-abs difference allowed between torch's and the fp32 graph's pooled (normalised) embeddings
# on the probes. Measured on multilingual-e5-small: 1.2e-7 on 350 PAWS-X sentences, so the bound
# has two orders of magnitude of room and still sits below the 4th decimal of any cosine.
EMBEDDING_TOLERANCE = 1e-5
# token states: max-abs difference on real (non-padding) tokens, relative to their largest magnitude
_HIDDEN_TOLERANCE = 1e-4
# Rows per forward pass in the check. Two put the truncated long probe and a short one in one padded
# batch (the planner sorts longest first) at half the cost of encode's default 32 rows, whose budget
# would pad 3 short rows to max_seq_length (multilingual-e5-small: ~2 s per backend on a loaded 2-core CPU).
_BATCH_SIZE = 2
# (prompt name, texts) pairs the check encodes; a prompt name as ``encode`` takes it (None: the default)
Probes = Sequence[tuple[str | None, Sequence[str]]]


def probe_set(settings: EncoderSettings) -> list[tuple[str | None, tuple[str, ...]]]:
    """What the export's check encodes: :func:`probe_texts` under the model's default prompt (what
    ``encode`` applies when a caller names none), then ``PROBE_TEXTS`` under no prompt and each named
    one whose prefix differs from those before (the long probe once: it costs the most to encode)."""
    chosen: dict[str, str | None] = {settings.prompt_prefix(None): None}
    for name in ("", *sorted(settings.prompts)):
        chosen.setdefault(settings.prompt_prefix(name), name)
    others = [(name, PROBE_TEXTS) for name in list(chosen.values())[1:]]
    return [(None, probe_texts(settings.max_seq_length)), *others]


def probe_texts(max_seq_length: int) -> tuple[str, ...]:
    """A text longer than ``max_seq_length`` tokens in any vocabulary, then ``PROBE_TEXTS``: one call
    of ``encode`` pads a short one to the truncated long one (rows of very different lengths)."""
    long_text = " ".join(islice(cycle(_LONG_WORDS), max_seq_length + 16))
    return (long_text, *PROBE_TEXTS)


def check_against_torch(graph: Path, folder: Path, probes: Probes | None = None) -> tuple[float, float]:
    """Max abs differences of the graph at ``graph`` vs torch on ``probes``: token states, embeddings.

    The embeddings are each backend's own ``tokenize_texts`` + ``encode_tokenized`` (``folder``'s
    ``BiEncoder`` and an ``OnnxEncoder`` on ``graph``), so the second number is the difference a
    user of the file gets. The token states are torch's from those same forward passes, against
    the graph run on the same padded batches. ``probes`` defaults to :func:`probe_set` of the
    model's settings. Raises ModelFormatError when either is outside its bound (module docstring).
    """
    from paraxl.inference.onnx_encoder import OnnxEncoder

    reference = BiEncoder.load(folder).eval()  # eval: see the module docstring's note
    # the sha256 names the graph in the encoder's fingerprint only, which this throwaway encoder never shows
    exported = OnnxEncoder.open(folder, ExportedFile("onnx", graph, sha256="unrecorded"))
    batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    hidden = embedding = 0.0
    scale = 1.0
    with _recording_token_states(reference, batches):
        for prompt_name, texts in probe_set(reference.settings) if probes is None else probes:
            expected = reference.encode_tokenized(reference.tokenize_texts(texts, prompt_name), _BATCH_SIZE)
            got = exported.encode_tokenized(exported.tokenize_texts(texts, prompt_name), _BATCH_SIZE)  # (n, dim)
            embedding = max(embedding, float(np.abs(got - expected).max(initial=0.0)))
    for input_ids, attention_mask, states in batches:  # (batch, seq) x2, (batch, seq, hidden)
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        got_states = exported.session.run([OUTPUT_NAME], feeds)[0]
        real = feeds["attention_mask"].astype(bool)  # padding positions may differ and are pooled away
        hidden = max(hidden, float(np.abs(got_states - states.numpy())[real].max()))
        scale = max(scale, float(np.abs(states.numpy()[real]).max()))
    if not (hidden <= _HIDDEN_TOLERANCE * scale and embedding <= EMBEDDING_TOLERANCE):
        raise ModelFormatError(
            f"{folder}: the ONNX export does not reproduce torch (max abs difference {hidden:.3g} in the token "
            f"states, {embedding:.3g} in the embeddings; the bound is {EMBEDDING_TOLERANCE:g}); "
            "this architecture is not supported by the ONNX backend"
        )
    return hidden, embedding


@contextlib.contextmanager
def _recording_token_states(
    encoder: BiEncoder, batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
) -> Iterator[None]:
    """Append (input_ids, attention_mask, last_hidden_state) of every backbone call to ``batches``:
    the token states of ``encode``'s own forward passes, without running torch a second time."""

    def record(module: torch.nn.Module, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        batches.append((kwargs["input_ids"].cpu(), kwargs["attention_mask"].cpu(), output.last_hidden_state.cpu()))

    handle = encoder.backbone.register_forward_hook(record, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
