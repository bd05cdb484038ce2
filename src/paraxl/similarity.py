"""Cosine similarities shared by every command and task."""

from __future__ import annotations

import numpy as np


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    unit: np.ndarray = matrix / np.maximum(norms, 1e-12)
    return unit


def cosine_matrix(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Shapes: (n, dim), (m, dim) -> (n, m) cosine similarities (inputs need not be normalised)."""
    scores: np.ndarray = _unit(queries) @ _unit(candidates).T
    return scores


def paired_cosine(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Shapes: (n, dim), (n, dim) -> (n,) cosine of each row pair."""
    if first.shape != second.shape:
        raise ValueError(f"paired inputs differ in shape: {first.shape} vs {second.shape}")
    scores: np.ndarray = np.sum(_unit(first) * _unit(second), axis=-1)
    return scores
