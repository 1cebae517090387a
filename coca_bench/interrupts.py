"""SIGTERM ends a run the way Ctrl-C does: the same unwinding, the same one-line message, no traceback.

Why: schedulers (Slurm, Kubernetes, ``timeout``) stop jobs with SIGTERM, whose default action kills the process
without running ``finally`` blocks; raised as an interrupt instead, atomic writes in flight remove their temp files
and the CLI says what was kept. Finished tasks and cache chunks are on disk either way (each is written atomically
as soon as it is complete), so even SIGKILL loses only the work in progress.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; a KeyboardInterrupt so that every handler of Ctrl-C handles it too."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"received signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread; the old handler is restored after."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers can only be set there
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["EXIT_TERMINATED", "Terminated", "sigterm_as_interrupt"]
