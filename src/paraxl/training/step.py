"""One step's gradient: embed (cached or not), global loss, backward, sum across processes."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from paraxl.losses.cached import cached_backward
from paraxl.losses.phases import Clock, no_clock
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
    clock: Clock = no_clock,
) -> float:
    """Add this step's gradient to ``.grad`` of the trainable parameters; return the loss.

    The local texts are sorted by token count and cut into chunks of ``chunk_size`` (little
    padding per chunk); embeddings are put back in layout order before the loss. With
    ``grad_cache`` each chunk is embedded without gradient, the loss is taken on the cached
    embeddings, and each chunk is replayed with gradient (memory bounded by a chunk, gradient
    exact). Without it all chunks stay in one graph. The model's train/eval mode is the caller's.

    ``autocast`` wraps every forward pass (the no-grad mining pass included); the embeddings
    leave it as float32 and the loss is taken outside it (see ``embed``). ``clock`` times the
    phases (tokenize, no_grad_pass, forward, loss, backward) for a benchmark.
    """
    total = len(layout.texts)
    if total < context.world_size:
        raise ValueError(f"a step of {total} texts cannot be split over {context.world_size} processes")
    local_texts = layout.texts[context.text_slices(total)[context.rank]]
    with clock("tokenize"):
        order, token_chunks = model.tokenize_by_length(local_texts, chunk_size, prompt_name)  # order: (local_n,)
        restore = torch.empty_like(order)
        restore[order] = torch.arange(order.numel())
        chunks = [_to(features, model.device) for features in token_chunks]

    def embed(features: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast():
            embeddings: torch.Tensor = model(features)  # (chunk, dim)
        # The loss runs in float32 even under bf16 autocast: its logits are scale (20) x cosine,
        # and bf16's 8-bit mantissa rounds a logit near 20 in steps of 0.125, close to the 0.3
        # margin it must resolve; the softmax's log-sum-exp would add more. Only bf16/fp16 are
        # cast, so float32 (no copy: bit-identical to before) and float64 models pass through.
        if embeddings.dtype in (torch.bfloat16, torch.float16):
            embeddings = embeddings.float()
        return embeddings

    def global_loss(sorted_reps: torch.Tensor) -> torch.Tensor:
        local_reps = sorted_reps[restore.to(sorted_reps.device)]  # back to layout order
        return loss_on_reps(context.gather(local_reps, total))

    if grad_cache:
        loss = cached_backward(embed, chunks, global_loss, clock)
    else:
        with clock("forward"):
            reps = torch.cat([embed(features) for features in chunks])  # (local_n, dim), length order
        with clock("loss"):
            loss = global_loss(reps)
        with clock("backward"):
            loss.backward()
    context.sum_gradients([p for p in model.parameters() if p.requires_grad])
    return float(loss.detach())


def _to(features: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in features.items()}
