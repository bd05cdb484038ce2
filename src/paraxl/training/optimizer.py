"""The one optimizer and learning-rate schedule of a run (every task of a multi-task run shares them)."""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import get_scheduler

from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.training.config import OptimConfig

# the config's schedule names -> transformers' scheduler names
_SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def build_optimizer(model: BiEncoder, optim: OptimConfig, total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW over the trainable parameters and its warm-up + decay schedule over ``total_steps``."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    # no weight decay on biases and LayerNorm weights (1-D), as in BERT
    groups = [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": optim.weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=optim.lr)
    warmup = math.ceil(optim.warmup_ratio * total_steps)
    scheduler = get_scheduler(
        _SCHEDULES[optim.schedule], optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
    )
    return optimizer, scheduler
