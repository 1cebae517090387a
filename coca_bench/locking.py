"""One run per output folder at a time: an exclusive POSIX record lock (``lockf``) on ``OUTPUT/.lock``, held for the
whole run.

Why: two runs writing one folder would interleave ``summary.csv`` rewrites and race on the same result files; each
write is atomic, but which run's result survives would be chance. Why a kernel lock: the kernel drops it when its
holder dies, however it dies (SIGKILL, the OOM killer), so a stale ``.lock`` file never blocks the next run and nothing
has to be cleaned up by hand. The file keeps the holder's pid, only to name it in the error.

Why ``lockf`` and not ``flock``: an ``flock`` belongs to the open file, which forked children (DataLoader workers)
share; orphaned workers outlive a killed run by seconds and kept its lock, refusing the rerun started at once. A
``lockf`` lock belongs to the process that took it: a fork does not inherit it, and it ends with that process. The
descriptor is not inheritable (``os.open``'s default, PEP 446), so a program the run starts gets no copy of it.

The price, POSIX semantics: closing *any* descriptor of the lock file in the holding process releases the lock, and a
second lock from the same process would succeed rather than conflict. So nothing else may open ``OUTPUT/.lock`` in a
process that holds it (read it from another process, or after the run), and this module remembers the lock files it
holds, refusing a second :func:`output_lock` on one of them without ever opening it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from coca_bench.runner import RunError

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # not POSIX: no lock (the atomic writes still keep every file whole)
    fcntl = None  # type: ignore[assignment]

_HELD: set[tuple[int, int]] = set()  # (st_dev, st_ino) of each lock file this process holds
_HELD_GUARD = threading.Lock()


class OutputLockedError(RunError):
    """Another live run holds the output folder."""


def _locked(folder: Path, holder: str) -> OutputLockedError:
    who = f" (pid {holder})" if holder.isdigit() else ""
    return OutputLockedError(
        f"Another run{who} is writing to the output folder {folder}; wait for it to finish or pass another --output."
    )


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)  # a stat, never an open: closing a descriptor would drop a lock this process holds
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


@contextlib.contextmanager
def output_lock(output_dir: Path | str) -> Iterator[Path]:
    """Hold ``OUTPUT/.lock`` exclusively for the block; :class:`OutputLockedError` at once if another run holds it,
    in this process or another."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    with _HELD_GUARD:  # stat, open and lock as one step, so two threads cannot both take it
        if _file_id(path) in _HELD:
            raise _locked(folder, str(os.getpid()))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # not inheritable across exec (PEP 446)
        try:
            if fcntl is not None:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno not in (errno.EACCES, errno.EAGAIN):
                        raise
                    raise _locked(folder, os.pread(fd, 64, 0).decode("ascii", "replace").strip()) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except BaseException:
            os.close(fd)
            raise
        stat = os.fstat(fd)
        held = (stat.st_dev, stat.st_ino)
        _HELD.add(held)
    try:
        yield path
    finally:
        with _HELD_GUARD:
            _HELD.discard(held)
            os.close(fd)  # releases the lock; the file stays (removing it could race with the next run's open)


__all__ = ["LOCK_NAME", "OutputLockedError", "output_lock"]
