"""Multi-process training over torch.distributed (launch with ``torchrun``).

Every process builds the same step layout and embeds a contiguous slice of its texts.
Embeddings are all-gathered so each process computes the loss over the *global* batch
(all negatives); only the local slice carries gradient. Each process's parameter
gradient is then the local share of the global gradient, and summing the shares
(all-reduce) gives exactly the single-process gradient.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from paraxl.errors import InputError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def text_slices(self, total: int) -> list[slice]:
        """Contiguous, near-equal slices of ``total`` texts, one per process."""
        edges = np.linspace(0, total, self.world_size + 1).round().astype(int)
        return [slice(int(edges[r]), int(edges[r + 1])) for r in range(self.world_size)]

    def gather(self, local: torch.Tensor, total: int) -> torch.Tensor:
        """(local_n, dim) -> (total, dim): every process's slice, this one's keeping its gradient."""
        if not self.active:
            return local
        slices = self.text_slices(total)
        longest = max(s.stop - s.start for s in slices)
        padded = torch.zeros(longest, local.shape[1], dtype=local.dtype, device=local.device)
        padded[: local.shape[0]] = local.detach()
        received = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(received, padded)
        parts = [chunk[: s.stop - s.start] for chunk, s in zip(received, slices, strict=True)]
        parts[self.rank] = local
        return torch.cat(parts)

    def sum_gradients(self, parameters: list[torch.nn.Parameter]) -> None:
        """All-reduce (sum) the local gradient shares into the global gradient."""
        if not self.active:
            return
        grads = []
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            grads.append(parameter.grad)
        flat = torch.cat([grad.reshape(-1) for grad in grads])  # one message, not one per tensor
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment; else one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size())


def shutdown_distributed(context: DistContext) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()


def pick_device(name: str) -> torch.device:
    """The torch device a config's ``device`` names (auto: CUDA when there is one)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device: cuda requested but no CUDA device is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
