"""The same command and seed give the same metrics and per-sample records, run after run, probes included.

The session's default run (``run_suite.py --tasks all``, conftest's ``default_run``) against a second real run of
its probes and captioning in a subprocess with its own fresh cache root (mini data generated anew, empty feature
cache) and another ``PYTHONHASHSEED``, so that neither a cache hit nor set ordering can hide a difference. The thread
count is the default run's: results are promised identical for a seed, a torch version and a thread count (a float
sum over another number of threads rounds differently).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = "demo"
# Every kind of trained probe (linear, attentive on images and on video, the multimodal decoder's) and beam captioning.
TASKS = ["imagenet_linear_probe", "imagenet_attentive_probe", "kinetics_attentive_probe", "snli_ve", "coco_captioning"]


def _results(output: Path) -> dict[str, tuple[dict, list[dict]]]:
    results = {}
    for task in TASKS:
        stem = output / CHECKPOINT / task
        record = json.loads(stem.with_suffix(".json").read_text())
        samples = [json.loads(line) for line in Path(f"{stem}.samples.jsonl").read_text().splitlines()]
        results[task] = record, samples
    return results


@pytest.mark.slow
def test_a_fresh_run_gives_the_default_runs_metrics_and_samples(tmp_path, default_run):
    env = {**os.environ, "COCA_BENCH_CACHE": str(tmp_path / "cache_root"), "PYTHONHASHSEED": "2"}
    command = [sys.executable, "run_suite.py", "--tasks", ",".join(TASKS), "--checkpoint", CHECKPOINT,
               "--output", str(tmp_path / "out"), "--no-progress", "--no-compare"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = _results(default_run.output), _results(tmp_path / "out")
    for task in TASKS:
        (record, samples), (again, again_samples) = first[task], second[task]
        assert again["run"]["feature_cache"]["chunks_from_cache"] == 0, task  # computed, not read back
        assert samples == again_samples, task
        assert record["metrics"] == again["metrics"], task
        assert record["config"] == again["config"], task  # parameters and what a probe chose (its extra config)
        assert record["checkpoint"]["sha256"] == again["checkpoint"]["sha256"], task
        assert record["dataset"]["fingerprint"] == again["dataset"]["fingerprint"], task
        assert record["key"] == again["key"], task
