"""Health checks of an embedding set (pure numpy): is a contrastive head collapsed?

A model whose contrastive head is untrained (open_clip's caption-only COCO finetune of ``coca_ViT-B-32``) embeds
every image nearly identically; retrieval and zero-shot then report a near-chance number that looks like a result.
These checks turn that into a warning carried by the result.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

COLLAPSE_THRESHOLD = 0.99


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    """Mean cosine similarity over all pairs of distinct rows, in O(N * D): (|sum u|^2 - N) / (N (N - 1))."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a [items, dim] array; got shape {x.shape}.")
    n = x.shape[0]
    if n < 2:
        return float("nan")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("An embedding has zero norm; its direction (and any cosine) is undefined.")
    total = (x / norms).sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def collapse_warnings(embeddings: Mapping[str, np.ndarray], threshold: float = COLLAPSE_THRESHOLD) -> list[str]:
    """One sentence per embedding set whose mean pairwise cosine exceeds ``threshold``."""
    warnings = []
    for name, vectors in embeddings.items():
        cosine = mean_pairwise_cosine(vectors)
        if cosine > threshold:
            warnings.append(
                f"the {name} embeddings are collapsed (mean pairwise cosine {cosine:.4f} > {threshold}): the "
                "contrastive head looks untrained, so this near-chance number says little about the model"
            )
    return warnings


__all__ = ["COLLAPSE_THRESHOLD", "collapse_warnings", "mean_pairwise_cosine"]
