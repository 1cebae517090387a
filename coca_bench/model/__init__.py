"""The CoCa model: network, configs and presets, checkpoints, tokenizer, preprocessing, generation, video.

Names are imported on first use (PEP 562), so that the torch-free parts (:mod:`.catalog`, :mod:`.config`) can be
used without importing torch: a fully cached run never builds a network.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the modules behind the names, stated so that readers of the import graph (the code
    # fingerprint in every result and feature key) see what a lazy import hides
    from . import api, catalog, checkpoints, coca, config, generation  # noqa: F401

_WHERE = {
    "CocaModel": "api",
    "from_network": "api",
    "load_model": "api",
    "BUNDLED_CHECKPOINTS": "catalog",
    "DEFAULT_CHECKPOINTS": "catalog",
    "checkpoint_identity": "catalog",
    "load_checkpoint": "checkpoints",
    "save_native": "checkpoints",
    "CoCa": "coca",
    "PRESETS": "config",
    "CocaConfig": "config",
    "get_preset": "config",
    "GenerationConfig": "generation",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'coca_bench.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = sorted(_WHERE)
