"""The same command and seed give the same metrics and per-sample records, run after run, probes included.

Two real runs in subprocesses, each with its own fresh cache root (bundled checkpoint and mini data generated anew,
empty feature cache) and another ``PYTHONHASHSEED``, so neither a cache hit nor set ordering can hide a difference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = "tiny-random-s0"
TASKS = ["imagenet_linear_probe", "imagenet_attentive_probe", "kinetics_attentive_probe", "vqav2", "coco_captioning"]
ARGS = [
    "--tasks", ",".join(TASKS), "--checkpoint", CHECKPOINT, "--limit", "4", "--seed", "3",
    "--param", "vqav2.mode=probe", "--param", "epochs=3", "--param", "kinetics_attentive_probe.num_frames=2",
    "--param", "kinetics_attentive_probe.min_steps=0",
    "--param", "coco_captioning.strategy=greedy", "--param", "coco_captioning.max_new_tokens=6",
    "--param", "coco_captioning.spice=false", "--no-progress", "--num-workers", "0", "--no-compare",
]  # fmt: skip


def _run(folder: Path, hash_seed: str) -> dict[str, tuple[dict, list[dict]]]:
    env = {**os.environ, "COCA_BENCH_CACHE": str(folder / "cache_root"), "PYTHONHASHSEED": hash_seed}
    command = [sys.executable, "run_suite.py", *ARGS, "--output", str(folder / "out"), "--cache-dir", str(folder / "f")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = {}
    for task in TASKS:
        stem = folder / "out" / CHECKPOINT / task
        record = json.loads(stem.with_suffix(".json").read_text())
        assert record["run"]["feature_cache"]["chunks_from_cache"] == 0  # computed, not read back
        samples = [json.loads(line) for line in Path(f"{stem}.samples.jsonl").read_text().splitlines()]
        results[task] = record, samples
    return results


@pytest.mark.slow
def test_two_fresh_runs_give_identical_metrics_and_samples(tmp_path):
    first, second = _run(tmp_path / "a", "1"), _run(tmp_path / "b", "2")
    for task in TASKS:
        (record, samples), (again, again_samples) = first[task], second[task]
        assert len(samples) == 4, task
        assert samples == again_samples, task
        assert record["metrics"] == again["metrics"], task
        assert record["config"] == again["config"], task  # parameters and what a probe chose (its extra config)
        assert record["checkpoint"]["sha256"] == again["checkpoint"]["sha256"], task
        assert record["dataset"]["fingerprint"] == again["dataset"]["fingerprint"], task
        assert record["key"] == again["key"], task
