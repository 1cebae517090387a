"""A built wheel carries the whole package and every built-in task, and lists them from outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_carries_every_source_file_and_lists_the_builtin_tasks(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("coca_bench-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "coca_bench").rglob("*.py")}
    expected |= {f"coca_bench/builtin_tasks/{p.name}" for p in (ROOT / "tasks").glob("*.py")}
    assert expected - names == set(), "files missing from the wheel"
    data_files = {
        p.relative_to(ROOT).as_posix() for pattern in ("*.txt", "*.toml") for p in ROOT.glob(f"coca_bench/*/{pattern}")
    }
    assert "coca_bench/published/figures.toml" in data_files and "coca_bench/data/imagenet_a_wnids.txt" in data_files
    assert data_files - names == set(), "data files missing from the wheel"
    for name in ("demo", "demo-early"):  # the default checkpoints ship as package data
        assert {f"coca_bench/checkpoints_data/{name}/{f}" for f in ("model.safetensors", "config.json",
                                                                    "MODEL_CARD.md")} <= names  # fmt: skip

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code = (
        "import coca_bench, sys; from coca_bench.runner import load_task_registry; "
        "from coca_bench.model.checkpoints import load_checkpoint; assert load_checkpoint('demo').name == 'demo'; "
        "print(coca_bench.__file__); print(' '.join(sorted(load_task_registry())))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=outside, env=env,
                            timeout=120)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    where, tasks = listed.stdout.splitlines()
    assert where.startswith(str(tmp_path / "site")), "the wheel's copy must be the one imported"
    from_checkout = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert tasks == from_checkout.stdout.splitlines()[1]  # the same built-in tasks as the checkout's tasks/
    assert {"imagenet_zeroshot", "imagenet_subset_zeroshot"} <= set(tasks.split())
