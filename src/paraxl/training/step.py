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

    With ``grad_cache`` the local texts are embedded in chunks of ``chunk_size`` without
    gradient, the loss is taken on the cached embeddings, and each chunk is replayed with
    gradient (memory bounded by a chunk, gradient exact). Without it the local texts are
    embedded in one graph. The model's train/eval mode is the caller's.
    """
    total = len(layout.texts)
    if total < context.world_size:
        raise ValueError(f"a step of {total} texts cannot be split over {context.world_size} processes")
    local = context.text_slices(total)[context.rank]
    local_texts = layout.texts[local]
    device = model.device
    size = chunk_size if grad_cache else max(len(local_texts), 1)
    chunks = [
        _to(model.tokenize(local_texts[i : i + size], prompt_name), device) for i in range(0, len(local_texts), size)
    ]

    def embed(features: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast():
            embeddings: torch.Tensor = model(features)  # (chunk, dim)
        return embeddings

    def global_loss(local_reps: torch.Tensor) -> torch.Tensor:
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
