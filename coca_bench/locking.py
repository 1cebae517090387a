"""One run per output folder at a time: an exclusive ``flock`` on ``OUTPUT/.lock`` held for the whole run.

Why: two runs writing one folder would interleave ``summary.csv`` rewrites and race on the same result files; each
write is atomic, but which run's result survives would be chance. Why ``flock``: the kernel drops the lock when its
holder dies, however it dies (SIGKILL, a crashed node), so a stale ``.lock`` file never blocks the next run and
nothing has to be cleaned up by hand. The file keeps the holder's pid, only to name it in the error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from coca_bench.runner import RunError

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # not POSIX: no lock (the atomic writes still keep every file whole)
    fcntl = None  # type: ignore[assignment]


class OutputLockedError(RunError):
    """Another live run holds the output folder."""


@contextlib.contextmanager
def output_lock(output_dir: Path | str) -> Iterator[Path]:
    """Hold ``OUTPUT/.lock`` exclusively for the block; :class:`OutputLockedError` at once if another run holds it."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                who = f" (pid {holder})" if holder.isdigit() else ""
                raise OutputLockedError(
                    f"Another run{who} is writing to the output folder {folder}; wait for it to finish or pass "
                    "another --output."
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock; the file stays (removing it could race with the next run's open)


__all__ = ["LOCK_NAME", "OutputLockedError", "output_lock"]
