"""Shared test setup: every test session gets its own cache folder (bundled checkpoints, mini datasets, features)."""
from __future__ import annotations

import os
import tempfile

os.environ.setdefault("COCA_BENCH_CACHE", tempfile.mkdtemp(prefix="coca_bench_test_cache_"))
