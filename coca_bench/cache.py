"""Where generated files live: ``$COCA_BENCH_CACHE``, else ``~/.cache/coca_bench``.

Bundled checkpoints, the mini datasets, the file-hash memo and the feature cache sit in subfolders of this one root.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# The feature cache's layout, written by coca_bench.features and read by coca_bench.cache_admin:
# <feature cache dir>/<kind>/<namespace[:16]>/<chunk key><CHUNK_SUFFIX>
CHUNK_SUFFIX = ".npz"

# A file of the feature cache's own at its top: `cache prune` deletes only inside a folder that carries it, so a wrong
# --cache-dir can never cost anyone files that merely look like chunks.
CACHE_MARKER = ".coca_bench_feature_cache"
_MARKER_TEXT = (
    "This folder is a coca-bench feature cache; `coca-bench cache prune` deletes chunk files only in folders that"
    " carry this file.\n"
)


def cache_root() -> Path:
    return Path(os.environ.get("COCA_BENCH_CACHE") or "~/.cache/coca_bench").expanduser()


def feature_cache_dir() -> Path:
    """The default feature cache: ``<cache root>/features`` (``--cache-dir`` overrides it)."""
    return cache_root() / "features"


def is_marked_feature_cache(cache_dir: Path) -> bool:
    return (cache_dir / CACHE_MARKER).is_file()


def mark_feature_cache(cache_dir: Path | None) -> None:
    """Give ``cache_dir`` the marker (before a chunk is written into it); a no-op when it has one or is None.

    Best effort: a folder the marker cannot be written to only loses `cache prune`, which then says how to mark it.
    """
    if cache_dir is None or is_marked_feature_cache(cache_dir):
        return
    with contextlib.suppress(OSError):  # FileExistsError included: a concurrent run marked it first
        cache_dir.mkdir(parents=True, exist_ok=True)
        with open(cache_dir / CACHE_MARKER, "x", encoding="utf-8") as handle:
            handle.write(_MARKER_TEXT)
