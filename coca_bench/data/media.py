"""The one error type for images and videos that cannot be read.

Readers never open media; the task opens each file while encoding and turns an
:class:`UnreadableMediaError` into a recorded skip (``registry.Skip``), so one bad
file costs one sample instead of the whole run.
"""

from __future__ import annotations

from pathlib import Path

from coca_bench.errors import CocaBenchError


class UnreadableMediaError(CocaBenchError):
    """An image or video file is missing, truncated or not decodable."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read {self.path}: {reason}")


__all__ = ["UnreadableMediaError"]
