"""One run per output folder: a second concurrent run stops at once; a killed holder never blocks the next run."""

from __future__ import annotations

import contextlib
import multiprocessing
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
        pass
    assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"  # read after: a read inside would drop the lock


def _taken_elsewhere(output: Path) -> bool:
    """Whether a fresh process is refused the folder's lock."""
    code = f"from coca_bench.locking import output_lock\nwith output_lock({str(output)!r}):\n    pass\n"
    probe = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 or "OutputLockedError" in probe.stderr, probe.stderr
    return probe.returncode != 0


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    with output_lock(tmp_path):
        with pytest.raises(OutputLockedError, match=f"pid {os.getpid()}"):  # even within one process
            with output_lock(tmp_path):
                pass
        assert _taken_elsewhere(tmp_path)  # the refused second attempt did not release the first one's lock
    with output_lock(tmp_path):  # released: the next run takes it
        pass


def test_a_run_killed_while_its_forked_workers_live_does_not_block_the_rerun(tmp_path):
    """Issue 16: SIGKILL during captioning leaves forked DataLoader workers alive for a few seconds; the rerun started
    at once must get the folder, since the dead run is the only holder."""
    code = textwrap.dedent(
        f"""
        import multiprocessing, time
        from coca_bench.locking import output_lock
        with output_lock({str(tmp_path)!r}):
            worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(120,))  # as DataLoader does
            worker.start()
            print(worker.pid, flush=True)
            time.sleep(120)
        """
    )
    run = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    worker = int(run.stdout.readline())
    try:
        with pytest.raises(OutputLockedError, match=f"pid {run.pid}"):
            with output_lock(tmp_path):
                pass
        run.send_signal(signal.SIGKILL)
        run.wait()
        os.kill(worker, 0)  # the orphaned worker is still alive (it sleeps for two minutes)
        with output_lock(tmp_path):
            pass
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    finally:
        run.kill()
        run.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)


def test_workers_that_exit_do_not_release_the_runs_lock_and_exec_does_not_inherit_it(tmp_path):
    """A forked worker closes its copy of the descriptor when it ends; the run must still hold the folder. A program
    the run starts gets no copy of the descriptor at all."""
    with output_lock(tmp_path):
        worker = multiprocessing.get_context("fork").Process(target=os.getpid)
        worker.start()
        worker.join()
        assert worker.exitcode == 0
        assert _taken_elsewhere(tmp_path)
        code = "import os\nfor n in os.listdir('/proc/self/fd'):\n    print(os.path.realpath(f'/proc/self/fd/{n}'))"
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, close_fds=False)
        assert child.returncode == 0
        assert str((tmp_path / LOCK_NAME).resolve()) not in child.stdout.splitlines()  # even with close_fds=False
