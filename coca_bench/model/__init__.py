"""The CoCa model: network, configs and presets, checkpoints, tokenizer, preprocessing, generation, video."""

from .api import CocaModel, from_network, load_model
from .checkpoints import BUNDLED_CHECKPOINTS, DEFAULT_CHECKPOINTS, load_checkpoint, save_native
from .coca import CoCa
from .config import PRESETS, CocaConfig, get_preset
from .generation import GenerationConfig

__all__ = [
    "BUNDLED_CHECKPOINTS",
    "CoCa",
    "CocaConfig",
    "CocaModel",
    "DEFAULT_CHECKPOINTS",
    "GenerationConfig",
    "PRESETS",
    "from_network",
    "get_preset",
    "load_checkpoint",
    "load_model",
    "save_native",
]
