"""One step's gradient: embed (cached or not), global loss, backward, sum across processes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch

from paraxl.losses.cached import cached_backward
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.training.distributed import DistContext
from paraxl.training.layout import StepLayout

LossOnReps = Callable[[torch.Tensor], torch.Tensor]


def accumulate_step_gradient(
    model: BiEncoder,
    layout: StepLayout,
    loss_on_reps: LossOnReps,
    *,
    context: DistContext,
    grad_cache: bool,
    chunk_size: int,
    prompt_name: str | None = None,
    autocast: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> float:
    """Add this step's gradient to ``.grad`` of the trainable parameters; return the loss.

    The local texts are sorted by token count and cut into chunks of ``chunk_size`` (little
    padding per chunk); embeddings are put back in layout order before the loss. With
    ``grad_cache`` each chunk is embedded without gradient, the loss is taken on the cached
    embeddings, and each chunk is replayed with gradient (memory bounded by a chunk, gradient
    exact). Without it all chunks stay in one graph. The model's train/eval mode is the caller's.
    """
    total = len(layout.texts)
    if total < context.world_size:
        raise ValueError(f"a step of {total} texts cannot be split over {context.world_size} processes")
    local_texts = layout.texts[context.text_slices(total)[context.rank]]
    order = _by_token_count(model, local_texts, prompt_name)  # (local_n,)
    restore = torch.empty_like(order)
    restore[order] = torch.arange(order.numel())
    ordered = [local_texts[i] for i in order.tolist()]
    chunks = [
        _to(model.tokenize(ordered[i : i + chunk_size], prompt_name), model.device)
        for i in range(0, len(ordered), chunk_size)
    ]

    def embed(features: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast():
            embeddings: torch.Tensor = model(features)  # (chunk, dim)
        return embeddings

    def global_loss(sorted_reps: torch.Tensor) -> torch.Tensor:
        local_reps = sorted_reps[restore.to(sorted_reps.device)]  # back to layout order
        return loss_on_reps(context.gather(local_reps, total))

    if grad_cache:
        loss = cached_backward(embed, chunks, global_loss)
    else:
        loss = global_loss(torch.cat([embed(features) for features in chunks]))
        loss.backward()
    context.sum_gradients([p for p in model.parameters() if p.requires_grad])
    return float(loss.detach())


def _by_token_count(model: BiEncoder, texts: Sequence[str], prompt_name: str | None) -> torch.Tensor:
    """Indices that sort ``texts`` by (truncated) token count; stable, so ties keep their order."""
    prefix = model.prompt_prefix(prompt_name)
    ids = model.tokenizer([prefix + text for text in texts], truncation=True, max_length=model.max_seq_length)
    lengths = torch.tensor([len(row) for row in ids["input_ids"]])
    return torch.sort(lengths, stable=True).indices


def _to(features: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in features.items()}
