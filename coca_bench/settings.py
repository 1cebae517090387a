"""The run settings: one typed object from the command line through the runner into every task and the cache.

Why one object: the same settings used to be restated in argparse, the runner, the task context, the feature
extractor and a provenance dict, each with its own checks. Here they are validated once, at the boundary
(:meth:`RunSettings.validated`), and passed inward as a frozen value that nobody re-checks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coca_bench.errors import CocaBenchError

PRECISIONS = ("fp32", "bf16", "fp16")


class SettingsError(CocaBenchError, ValueError):
    """A run setting is out of range; the message names the command-line option."""


@dataclass(frozen=True)
class RunSettings:
    """How every task of a run is computed.

    ``seed``, ``limit``, ``strict`` and ``precision`` change the numbers, so they form their own part of every
    result key (:meth:`key_fields`), apart from task parameters, so that a parameter of the same name can never
    overwrite them. ``device`` is ``auto`` until the runner resolves it.
    """

    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 32
    num_workers: int = 2
    seed: int = 0
    limit: int | None = None
    strict: bool = False
    force: bool = False
    cache_dir: Path | None = None  # None: coca_bench.cache.feature_cache_dir()
    progress: bool = True

    def validated(self) -> RunSettings:
        if self.precision not in PRECISIONS:
            raise SettingsError(f"--precision {self.precision!r} is not one of {list(PRECISIONS)}.")
        if self.batch_size < 1:
            raise SettingsError(f"--batch-size must be at least 1; got {self.batch_size}.")
        if self.num_workers < 0:
            raise SettingsError(f"--num-workers must be 0 or more; got {self.num_workers}.")
        if self.limit is not None and self.limit < 1:
            raise SettingsError(f"--limit must be at least 1; got {self.limit}.")
        return self

    def replace(self, **changes: Any) -> RunSettings:
        return dataclasses.replace(self, **changes)

    def key_fields(self) -> dict[str, Any]:
        """The settings that change a result's numbers (the runner's part of the result key)."""
        return {"seed": self.seed, "limit": self.limit, "strict": self.strict, "precision": self.precision}

    def as_dict(self) -> dict[str, Any]:
        """For provenance: every setting, paths as strings."""
        out = dataclasses.asdict(self)
        out["cache_dir"] = None if self.cache_dir is None else str(self.cache_dir)
        return out


__all__ = ["PRECISIONS", "RunSettings", "SettingsError"]
