"""One step's gradient: embed (cached or not), global loss, backward, sum across processes."""

from __future__ import annotations

from collections.abc import Callable
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
    order, token_chunks = model.tokenize_by_length(local_texts, chunk_size, prompt_name)  # order: (local_n,)
    restore = torch.empty_like(order)
    restore[order] = torch.arange(order.numel())
    chunks = [_to(features, model.device) for features in token_chunks]

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


def _to(features: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in features.items()}
