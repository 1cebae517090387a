"""One run per output folder: a second concurrent run stops at once; a killed holder never blocks the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coca_bench.locking import LOCK_NAME, OutputLockedError, output_lock

ROOT = Path(__file__).resolve().parent.parent


def _hold_lock(output: Path) -> subprocess.Popen:
    """Another process that takes the folder's lock (as a run does), says so, and keeps it until killed."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from coca_bench.locking import output_lock
        with output_lock({str(output)!r}):
            print("held", flush=True)
            time.sleep(120)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_on_a_held_folder_fails_at_once_with_one_sentence(tmp_path):
    output = tmp_path / "out"
    holder = _hold_lock(output)
    try:
        run = subprocess.run(
            [sys.executable, "run_suite.py", "--tasks", "imagenet_zeroshot", "--output", str(output), "--no-progress"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        f"error: Another run (pid {holder.pid}) is writing to the output folder {output}; wait for it to finish or "
        "pass another --output."
    ]
    assert sorted(p.name for p in output.iterdir()) == [LOCK_NAME]  # it wrote nothing


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path):
    holder = _hold_lock(tmp_path)
    with pytest.raises(OutputLockedError, match="Another run"):
        with output_lock(tmp_path):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / LOCK_NAME).is_file()  # the file stays; the kernel released the lock with the process
    with output_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    with output_lock(tmp_path):
        with pytest.raises(OutputLockedError):  # even within one process: each run opens the file anew
            with output_lock(tmp_path):
                pass
    with output_lock(tmp_path):  # released: the next run takes it
        pass
