"""Where generated files live: ``$COCA_BENCH_CACHE``, else ``~/.cache/coca_bench``.

Bundled checkpoints, the mini datasets and the feature cache sit in subfolders of this one root.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("COCA_BENCH_CACHE") or "~/.cache/coca_bench").expanduser()
