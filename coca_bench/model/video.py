"""Video through the shared image encoder, as in the paper: each frame is encoded on its own (no temporal fusion).

Zero-shot retrieval uses the mean of the normalised frame embeddings; frozen-feature classification reads the
spatio-temporal tokens of all frames with a learned attentional pooler (see the probe tasks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .coca import CoCa


def encode_video(network: CoCa, frames: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """frames [B, T, 3, H, W] -> [B, E]: mean of the per-frame normalised embeddings (renormalised if asked)."""
    b, t = frames.shape[:2]
    per_frame = network.encode_image(frames.flatten(0, 1), normalize=True).view(b, t, -1)
    pooled = per_frame.mean(dim=1)
    return F.normalize(pooled, dim=-1) if normalize else pooled


def video_tokens(network: CoCa, frames: torch.Tensor) -> torch.Tensor:
    """frames [B, T, 3, H, W] -> [B, T * tokens_per_frame, width]: every frame's encoder tokens, frame-major."""
    b, t = frames.shape[:2]
    tokens = network.visual.tokens(frames.flatten(0, 1))
    return tokens.view(b, t * tokens.shape[1], tokens.shape[2])


VIDEO_POOLINGS = ("mean", "concat")


def video_decoder_tokens(network: CoCa, frames: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
    """frames [B, T, 3, H, W] -> the tokens the multimodal decoder attends to for a video: each frame's decoder image
    tokens, averaged over time (``mean``, [B, M, width]) or laid end to end (``concat``, [B, T * M, width])."""
    if pooling not in VIDEO_POOLINGS:
        raise ValueError(f"pooling must be one of {VIDEO_POOLINGS}, not {pooling!r}.")
    b, t = frames.shape[:2]
    tokens = network.image_features(frames.flatten(0, 1))[1]
    tokens = tokens.view(b, t, tokens.shape[1], tokens.shape[2])
    return tokens.mean(dim=1) if pooling == "mean" else tokens.flatten(1, 2)
