"""Where generated files live: ``$COCA_BENCH_CACHE``, else ``~/.cache/coca_bench``.

Bundled checkpoints, the mini datasets, the file-hash memo and the feature cache sit in subfolders of this one root.
"""

from __future__ import annotations

import os
from pathlib import Path

# The feature cache's layout, written by coca_bench.features and read by coca_bench.cache_admin:
# <feature cache dir>/<kind>/<namespace[:16]>/<chunk key><CHUNK_SUFFIX>
CHUNK_SUFFIX = ".npz"


def cache_root() -> Path:
    return Path(os.environ.get("COCA_BENCH_CACHE") or "~/.cache/coca_bench").expanduser()


def feature_cache_dir() -> Path:
    """The default feature cache: ``<cache root>/features`` (``--cache-dir`` overrides it)."""
    return cache_root() / "features"
