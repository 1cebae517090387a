"""A run killed at any moment loses nothing that had finished, and the resumed run equals an uninterrupted one.

Real runs of ``run_suite.py`` in subprocesses (the bundled tiny checkpoint, a linear probe then greedy captioning, four
samples each), with chunks of two items so that a task is killed between two of its chunks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = "tiny-random-s0"
TASKS = ["imagenet_linear_probe", "coco_captioning"]
ARGS = [
    "--tasks", ",".join(TASKS), "--checkpoint", CHECKPOINT, "--limit", "4", "--batch-size", "2",
    "--param", "coco_captioning.strategy=greedy", "--param", "coco_captioning.max_new_tokens=6",
    "--param", "coco_captioning.caption_batch_size=2", "--param", "coco_captioning.spice=false",
    "--no-progress", "--num-workers", "0", "--no-compare",
]  # fmt: skip
# Batches never straddle chunks (chunk size a multiple of every batch size), so a resumed chunk is computed exactly
# as in an uninterrupted run.
CHUNK_SIZE = "2"


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private COCA_BENCH_CACHE for these runs (bundled checkpoint and mini data generated once)."""
    return tmp_path_factory.mktemp("cache_root")


def _env(cache_root: Path) -> dict[str, str]:
    return {**os.environ, "COCA_BENCH_CACHE": str(cache_root), "COCA_BENCH_CHUNK_SIZE": CHUNK_SIZE}


def _command(output: Path, cache: Path) -> list[str]:
    return [sys.executable, "run_suite.py", *ARGS, "--output", str(output), "--cache-dir", str(cache)]


def _run(output: Path, cache: Path, cache_root: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        _command(output, cache), cwd=ROOT, env=_env(cache_root), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _start(output: Path, cache: Path, cache_root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        _command(output, cache), cwd=ROOT, env=_env(cache_root), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


# The real CLI, whose process SIGKILLs itself right after its first caption chunk is written: killed between two
# chunks of a task on every machine, where a parent polling for the chunk can be outrun by a fast second chunk.
_KILLED_AFTER_FIRST_CAPTION_CHUNK = """
import os, signal, sys
from coca_bench.features import store
from coca_bench.cli import main

save = store.ChunkStore.save
def save_then_die(self, lookup, index, item_keys):
    save(self, lookup, index, item_keys)
    if lookup.paths[index] is not None and lookup.paths[index].parent.parent.name == "caption":
        os.kill(os.getpid(), signal.SIGKILL)
store.ChunkStore.save = save_then_die
sys.argv[0] = "run_suite.py"
raise SystemExit(main())
"""


def _run_killed_between_caption_chunks(output: Path, cache: Path, cache_root: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", _KILLED_AFTER_FIRST_CAPTION_CHUNK, *_command(output, cache)[2:]]
    return subprocess.run(command, cwd=ROOT, env=_env(cache_root), capture_output=True, text=True, timeout=300)


def _wait_for(process: subprocess.Popen, condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before it could be interrupted: {process.communicate()[1]}"
        assert time.monotonic() < deadline, "the run produced nothing to interrupt after"
        time.sleep(0.02)


def _results(output: Path) -> dict[str, tuple[dict, list[dict]]]:
    """Per task: (the stored record, its per-sample records)."""
    folder = output / CHECKPOINT
    return {
        task: (
            json.loads((folder / f"{task}.json").read_text()),
            [json.loads(line) for line in (folder / f"{task}.samples.jsonl").read_text().splitlines()],
        )
        for task in TASKS
    }


def _chunks(cache: Path) -> dict[Path, int]:
    """Each finished chunk and its inode (an atomic rewrite gives a new one)."""
    return {path: path.stat().st_ino for path in cache.rglob("*.npz")}


@pytest.fixture(scope="module")
def uninterrupted(cache_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("uninterrupted")
    _run(folder / "out", folder / "features", cache_root)
    return folder / "out", folder / "features"


def test_sigkill_mid_task_then_rerun_reuses_what_finished_and_equals_an_uninterrupted_run(
    tmp_path, cache_root, uninterrupted
):
    output, cache = tmp_path / "out", tmp_path / "features"
    # The probe's result is stored and captioning has finished one of its two chunks: killed between them.
    killed = _run_killed_between_caption_chunks(output, cache, cache_root)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]

    finished_results = {
        p.name: p.read_bytes() for p in (output / CHECKPOINT).glob("*.json") if p.name != "checkpoint.json"
    }
    finished_chunks = _chunks(cache)
    assert f"{TASKS[0]}.json" in finished_results and f"{TASKS[1]}.json" not in finished_results
    assert any(p.parent.parent.name == "caption" for p in finished_chunks)

    _run(output, cache, cache_root)

    # Nothing that had finished was redone: stored results untouched, every finished chunk still the same file ...
    for name, data in finished_results.items():
        assert (output / CHECKPOINT / name).read_bytes() == data
    now = _chunks(cache)
    assert all(now.get(path) == inode for path, inode in finished_chunks.items())
    # ... and the rerun encoded exactly the chunks that were missing, reading the finished ones from the cache.
    results = _results(output)
    rerun_stats = results[TASKS[1]][0]["run"]["feature_cache"]
    assert rerun_stats["chunks_encoded"] == len(now) - len(finished_chunks) > 0
    assert rerun_stats["chunks_from_cache"] == sum(p.parent.parent.name == "caption" for p in finished_chunks)
    assert len(now) == len(_chunks(uninterrupted[1]))

    # The resumed run's results are the uninterrupted run's: same keys, metrics and per-sample records.
    reference = _results(uninterrupted[0])
    for task in TASKS:
        (record, samples), (expected, expected_samples) = results[task], reference[task]
        assert record["key"] == expected["key"], task
        assert record["metrics"] == expected["metrics"], task
        assert samples == expected_samples, task


def test_sigterm_stops_a_run_cleanly(tmp_path, cache_root):
    output, cache = tmp_path / "out", tmp_path / "features"
    run = _start(output, cache, cache_root)
    _wait_for(run, lambda: any(cache.rglob("*.npz")) if cache.is_dir() else False)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 143, stderr
    assert "Traceback" not in stderr
    message = "terminated (SIGTERM): every task and cache chunk finished before this point is saved; rerun to continue."
    assert stderr.splitlines()[-1] == message
    assert not list(cache.rglob("*.tmp"))  # an atomic write in flight removed its temp file


def _run_that(monkeypatch, action) -> int:
    """``cli.main`` for a run whose work is ``action`` (the signal handling around it is the real one)."""
    from coca_bench import cli

    monkeypatch.setattr(cli, "_run", lambda args, argv: action())
    return cli.main(["--tasks", "imagenet_zeroshot", "--output", str(Path(os.environ["COCA_BENCH_CACHE"]) / "o")])


def test_sigterm_in_process_exits_143_and_restores_the_handler(monkeypatch, capsys):
    def not_the_runs_handler(signum, frame):  # what SIGTERM does here unless the run installs its own
        raise AssertionError("the run did not handle SIGTERM")

    previous = signal.signal(signal.SIGTERM, not_the_runs_handler)
    try:

        def terminated() -> int:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
            return 0

        assert _run_that(monkeypatch, terminated) == 143
        assert signal.getsignal(signal.SIGTERM) is not_the_runs_handler  # restored after the run
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert capsys.readouterr().err.startswith("terminated (SIGTERM): ")


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted() -> int:
        raise KeyboardInterrupt

    assert _run_that(monkeypatch, interrupted) == 130
    assert capsys.readouterr().err.startswith("interrupted: every task and cache chunk finished")
