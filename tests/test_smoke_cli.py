"""End to end, as a user runs it: the README's main command on the bundled default, the README's plugin, compare."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, check: bool = True, **env_vars: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **env_vars}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_suite.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"run_suite.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def readme_plugin(tmp_path_factory) -> Path:
    text = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- plugin-example:start -->\n```python\n(.*?)```\n<!-- plugin-example:end -->", text, re.S)
    assert code, "the README must hold the worked plugin example between its markers"
    folder = tmp_path_factory.mktemp("my_tasks")
    (folder / "coco_caption_pairing.py").write_text(code.group(1))
    return folder


@pytest.mark.slow
def test_suite_end_to_end(tmp_path, readme_plugin):
    out = tmp_path / "results"
    listing = _run("--tasks", "list", "--plugins", str(readme_plugin)).stdout
    assert "imagenet_zeroshot" in listing and "coco_caption_pairing" in listing

    # Every task on both default checkpoints; --limit keeps the test's time small (CI runs on 2 cores).
    everything = (
        "--tasks",
        "all",
        "--plugins",
        str(readme_plugin),
        "--output",
        str(out),
        "--no-progress",
        "--limit",
        "6",
        "--param",  # the video probe's 200 default steps take 20 s per checkpoint; the pipeline is the same
        "kinetics_attentive_probe.min_steps=20",
    )
    first = _run(*everything)
    assert "demo-early" in first.stdout and "acc1=" in first.stdout, first.stdout
    # the first sight of a new user: the table, then the comparison of the two default checkpoints
    table, comparison = first.stdout.split("Comparison against demo-early", 1)
    assert re.search(r"imagenet_zeroshot/acc1.*[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", comparison)
    assert "* = CI excludes 0 (significant)" in comparison
    for checkpoint in ("demo", "demo-early"):
        for task in ("imagenet_zeroshot", "imagenet_subset_zeroshot", "coco_caption_pairing"):
            record = json.loads((out / checkpoint / f"{task}.json").read_text())
            assert record["task"]["name"] == task and record["checkpoint"]["name"] == checkpoint
            assert record["num_samples"] == sum(1 for _ in open(out / checkpoint / f"{task}.samples.jsonl"))
            assert 0.0 <= record["metrics"]["acc1" if "zeroshot" in task else "pair_accuracy"] <= 1.0
    zeroshot = json.loads((out / "demo" / "imagenet_zeroshot.json").read_text())
    assert len(zeroshot["config"]["key_material"]["templates"]) == 80  # CLIP's ImageNet prompt ensemble, keyed
    assert zeroshot["config"]["extra"]["num_classes"] == 8  # the mini ImageNet's full label space
    assert zeroshot["num_samples"] == 6 and zeroshot["run"]["settings"]["limit"] == 6
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("checkpoint") and "imagenet_zeroshot/acc1" in summary[0] and len(summary) == 3

    again = _run(*everything, "--no-compare", PYTHONPROFILEIMPORTTIME="1")
    tasks = len(listing.strip().splitlines())
    assert again.stderr.count("reusing the stored result") == 2 * tasks  # every (checkpoint, task) reused
    imported = re.findall(r"^import time:.*\|\s*(\S+)$", again.stderr, re.M)
    assert "coca_bench.runner" in imported and "torch" not in imported  # no model built: nothing to compute

    compared = _run("compare", "--output", str(out), "--baseline", "demo", "--resamples", "200").stdout
    assert re.search(r"imagenet_zeroshot/acc1.*[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", compared), compared
    assert (out / "comparison.png").stat().st_size > 1000


def test_errors_are_one_clear_line(tmp_path):
    bad = _run("--tasks", "no_such_task", "--output", str(tmp_path), check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    broken = tmp_path / "broken_plugins"
    broken.mkdir()
    (broken / "oops.py").write_text("import not_a_module_anywhere\n")
    failed = _run("--tasks", "list", "--plugins", str(broken), check=False)
    assert failed.returncode == 2 and "oops.py" in failed.stderr and "Traceback" not in failed.stderr
