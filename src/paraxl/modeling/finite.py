"""Refuse NaN and infinity in a model's tensors before they are written anywhere.

A NaN weight makes every embedding NaN, and an infinite one makes them NaN after the first
normalisation; a folder holding either loads and "works" until its first score. Writers of
weights (the soup, the trainer's checkpoints) call :func:`check_finite_tensors` first, so such a
folder is never written.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from paraxl.errors import ModelFormatError


def check_finite_tensors(tensors: Mapping[str, torch.Tensor], where: str) -> None:
    """ModelFormatError naming ``where``, the first bad tensor and its count of NaN/inf values.

    Integer tensors (buffers such as ``position_ids``) cannot hold either and are skipped.
    """
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            continue
        bad = int((~torch.isfinite(tensor.detach())).sum())
        if bad:
            raise ModelFormatError(
                f"{where}: {name} holds {bad} non-finite value(s) (NaN or inf) of {tensor.numel()}; nothing written"
            )
