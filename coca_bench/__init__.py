"""coca-bench: benchmark suite for CoCa-family image-text models.

``from coca_bench import load_model`` imports torch lazily, so light entry points (``--tasks list``) stay fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("load_model", "CocaModel"):
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'coca_bench' has no attribute {name!r}")


__all__ = ["CocaModel", "__version__", "load_model"]
