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


@pytest.mark.slow
def test_suite_end_to_end(default_run, readme_plugin):
    """The session's default run (every task, both shipped checkpoints, the README's plugin), its rerun and compare."""
    out = default_run.output
    listing = _run("--tasks", "list", "--plugins", str(readme_plugin)).stdout
    assert "imagenet_zeroshot" in listing and "coco_caption_pairing" in listing
    tasks = [line.split()[0] for line in listing.strip().splitlines()]

    first = default_run.stdout
    assert "demo-early" in first and "acc1=" in first, first
    # the first sight of a new user: the table, then the comparison of the two default checkpoints
    table, comparison = first.split("Comparison against demo-early", 1)
    assert re.search(r"imagenet_zeroshot/acc1.*[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", comparison)
    assert "* = CI excludes 0 (significant)" in comparison
    for checkpoint in ("demo", "demo-early"):
        for task in tasks:  # every task stored for both checkpoints, its samples beside it
            record = json.loads((out / checkpoint / f"{task}.json").read_text())
            assert record["task"]["name"] == task and record["checkpoint"]["name"] == checkpoint
            assert record["num_samples"] == sum(1 for _ in open(out / checkpoint / f"{task}.samples.jsonl")) > 0
            assert record["run"]["settings"]["limit"] is None
    zeroshot = json.loads((out / "demo" / "imagenet_zeroshot.json").read_text())
    assert len(zeroshot["config"]["key_material"]["templates"]) == 80  # CLIP's ImageNet prompt ensemble, keyed
    assert zeroshot["config"]["extra"]["num_classes"] == 8  # the mini ImageNet's full label space
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("checkpoint") and "imagenet_zeroshot/acc1" in summary[0] and len(summary) == 3
    assert "imagenet_robustness/avg_acc1" in summary[0]  # the paper's "Avg" over ImageNet and its five variants
    assert (out / "report.html").is_file() and (out / "comparison.png").stat().st_size > 1000

    everything = ("--tasks", "all", "--plugins", str(readme_plugin), "--output", str(out), "--no-progress")
    again = _run(*everything, "--no-compare", PYTHONPROFILEIMPORTTIME="1")
    assert again.stderr.count("reusing the stored result") == 2 * len(tasks)  # every (checkpoint, task) reused
    imported = re.findall(r"^import time:.*\|\s*(\S+)$", again.stderr, re.M)
    assert "coca_bench.runner" in imported and "torch" not in imported  # no model built: nothing to compute

    compared = _run("compare", "--output", str(out), "--baseline", "demo", "--resamples", "200",
                    "--published", "coca").stdout  # fmt: skip
    assert re.search(r"imagenet_zeroshot/acc1.*[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", compared), compared
    # beside the paper's figures: the mini data is never comparable, and says so; the paper's layout follows
    assert re.search(r"demo .*imagenet_zeroshot/acc1 .* 86\.3 .*not comparable: the bundled mini dataset", compared)
    assert "### Zero-shot image classification (CoCa Table 4)" in compared and "| CoCa (paper, 2.1B) |" in compared
    assert "not comparable" in (out / "published.md").read_text()


@pytest.mark.usefixtures("clean_registry")  # the README plugin is registered for this test only
def test_every_stored_metric_is_its_aggregate_over_the_stored_samples(default_run, readme_plugin):
    """What ``compare`` relies on: for every task of the default run, each stored metric equals its declaration
    recomputed from the stored per-sample file (METEOR, which no aggregate recomputes, is listed as unchecked)."""
    import math

    from coca_bench.registry import get_task
    from coca_bench.results import ResultStore
    from coca_bench.runner import load_task_registry

    load_task_registry([readme_plugin])
    store = ResultStore(default_run.output)
    checked = 0
    for record in store.records():
        task = get_task(record["task"]["name"])
        samples = store.samples(record["checkpoint"]["name"], task.name)
        recomputed = task.recompute(samples, record["config"]["params"])
        for name, value in record["metrics"].items():
            where = f"{record['checkpoint']['name']}/{task.name}/{name}"
            if name in record.get("unchecked_metrics", {}):
                assert name not in recomputed, where
                continue
            expected = recomputed[name]
            assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected, rel=1e-6), where
            checked += 1
    assert checked >= 250  # every metric of every task, both checkpoints


def test_errors_are_one_clear_line(tmp_path):
    bad = _run("--tasks", "no_such_task", "--output", str(tmp_path), check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    broken = tmp_path / "broken_plugins"
    broken.mkdir()
    (broken / "oops.py").write_text("import not_a_module_anywhere\n")
    failed = _run("--tasks", "list", "--plugins", str(broken), check=False)
    assert failed.returncode == 2 and "oops.py" in failed.stderr and "Traceback" not in failed.stderr
