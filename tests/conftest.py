"""Shared test setup: every test session gets its own cache folder (bundled checkpoints, mini datasets, features)."""
from __future__ import annotations

import os
import tempfile

os.environ.setdefault("COCA_BENCH_CACHE", tempfile.mkdtemp(prefix="coca_bench_test_cache_"))


def randomize_open_clip_coca(model, seed: int = 0, scale: float = 0.02):
    """Seeded random weights for an open_clip CoCa. Its decoder's vocabulary projection is ``torch.empty`` and never
    initialised (often zeros, sometimes garbage), so set it first; then perturb every weight so that no parity test can
    pass on a degenerate model."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        projection = model.text_decoder.text_projection
        projection.copy_(torch.randn(projection.shape, generator=generator) * projection.shape[0] ** -0.5)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * (scale if p.dim() > 1 else 2.5 * scale))
    return model.eval()
