"""The image transform that matches a checkpoint (open_clip's eval transform: resize, centre crop, normalise)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict

import torch
from PIL import Image
from torchvision import transforms as T

from .config import PreprocessConfig

_INTERPOLATION = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}


def build_preprocess(cfg: PreprocessConfig) -> Callable[[Image.Image], torch.Tensor]:
    if cfg.interpolation not in _INTERPOLATION:
        raise ValueError(
            f"preprocess.interpolation must be one of {sorted(_INTERPOLATION)}, not {cfg.interpolation!r}."
        )
    if cfg.resize_mode == "shortest":
        resize = [
            T.Resize(cfg.image_size, interpolation=_INTERPOLATION[cfg.interpolation]),
            T.CenterCrop(cfg.image_size),
        ]
    elif cfg.resize_mode == "squash":
        resize = [T.Resize((cfg.image_size, cfg.image_size), interpolation=_INTERPOLATION[cfg.interpolation])]
    else:
        raise ValueError(f"preprocess.resize_mode must be 'shortest' or 'squash', not {cfg.resize_mode!r}.")
    return T.Compose([*resize, _to_rgb, T.ToTensor(), T.Normalize(cfg.mean, cfg.std)])


def _to_rgb(image: Image.Image) -> Image.Image:
    """A named function, not a lambda, so DataLoader workers can pickle the transform."""
    return image.convert("RGB")


def preprocess_fingerprint(cfg: PreprocessConfig) -> str:
    """Changes whenever the pixels a model sees could change (config, or the libraries doing the resampling)."""
    import PIL
    import torchvision

    payload = {"cfg": asdict(cfg), "pillow": PIL.__version__, "torchvision": torchvision.__version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
