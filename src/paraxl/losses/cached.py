"""GradCache: exact gradients for a loss over a large batch in memory bounded by a mini-batch.

1. embed every mini-batch without gradient (recording the RNG state, so dropout replays
   identically);
2. compute the loss on the cached embeddings and back-propagate to them only;
3. replay each mini-batch with gradient and push the cached embedding gradients through it.

The parameter gradients equal those of one big forward/backward (tested on a tiny model).
The model's train/eval mode is whatever the caller set; this function never changes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from paraxl.losses.phases import Clock, no_clock

Features = dict[str, torch.Tensor]
RngState = tuple[torch.Tensor, list[torch.Tensor]]


def _get_rng() -> RngState:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return torch.get_rng_state(), cuda


def _set_rng(state: RngState) -> None:
    torch.set_rng_state(state[0])
    if state[1]:
        torch.cuda.set_rng_state_all(state[1])


def cached_backward(
    embed: Callable[[Features], torch.Tensor],
    mini_batches: Sequence[Features],
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    clock: Clock = no_clock,
) -> torch.Tensor:
    """Accumulate into the parameters' ``.grad`` the gradient of ``loss_fn(cat(embed(b) for b))``.

    Args:
        embed: maps tokenized features to (batch, dim) embeddings (e.g. a BiEncoder).
        mini_batches: the features of each mini-batch, in order.
        loss_fn: maps all embeddings (total, dim), concatenated in mini-batch order, to a scalar.
        clock: times the phases ``no_grad_pass``, ``loss``, ``forward`` and ``backward`` (replay).
    Returns:
        The loss value (detached).
    """
    rng_states: list[RngState] = []
    cached: list[torch.Tensor] = []
    with clock("no_grad_pass"), torch.no_grad():
        for features in mini_batches:
            rng_states.append(_get_rng())
            cached.append(embed(features))  # (batch, dim)
    sizes = [chunk.shape[0] for chunk in cached]
    replay_state = _get_rng()
    with clock("loss"):
        reps = torch.cat(cached).detach().requires_grad_(True)  # (total, dim)
        loss = loss_fn(reps)
        loss.backward()
    assert reps.grad is not None
    for features, state, grad in zip(mini_batches, rng_states, reps.grad.split(sizes), strict=True):
        _set_rng(state)
        with clock("forward"):
            replayed = embed(features)
        with clock("backward"):
            replayed.backward(gradient=grad)
    _set_rng(replay_state)  # continue as if the embeddings were computed once
    return loss.detach()
