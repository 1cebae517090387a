"""Result files: schema, atomic writes, reuse keys, folder claims, summaries."""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from coca_bench import results
from coca_bench.registry import MetricSpec, Skip, TaskResult, TaskSpec
from coca_bench.results import (
    CheckpointInfo,
    atomic_write_jsonl,
    atomic_write_text,
    build_record,
    claim_checkpoint_dir,
    collect_records,
    find_reusable,
    fingerprint_files,
    format_results_table,
    load_samples,
    load_task_result,
    result_key,
    write_summary,
    write_task_result,
)

CKPT = CheckpointInfo(name="base", spec="coca_ViT-B-32:laion2b", sha256="a" * 64)
OTHER = CheckpointInfo(name="tuned", spec="/ckpt/tuned.safetensors", sha256="b" * 64)


def make_spec(name: str = "toy_zeroshot", metrics=("top1", "mean_per_class_recall", "top5"), version: int = 1) -> TaskSpec:
    return TaskSpec(
        name=name,
        run=lambda ctx, params: TaskResult(metrics={}),
        groups=("zeroshot", "image"),
        dataset="toyset",
        metrics=tuple(m if isinstance(m, MetricSpec) else MetricSpec(m) for m in metrics),
        params={"templates": ["a photo of a {}."], "limit": None},
        description="Toy zero-shot task.",
        version=version,
        source="tests/test_results.py",
    )


def run_info(**overrides) -> dict:
    info = {
        "seed": 0,
        "precision": "fp32",
        "device": "cpu",
        "batch_size": 8,
        "limit": None,
        "started_at": datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc),
        "finished_at": "2024-05-01T12:00:03Z",
        "wall_time_s": 3.25,
        "argv": ["run_suite.py", "--tasks", "toy_zeroshot"],
    }
    info.update(overrides)
    return info


def store(
    output: Path,
    ckpt: CheckpointInfo,
    spec: TaskSpec,
    metrics: dict,
    samples: list[dict],
    params: dict | None = None,
    fingerprint: str = "fp0",
    **run_overrides,
) -> dict:
    params = {**spec.params, **(params or {})}
    key = result_key(spec, params, ckpt, fingerprint, "fp32")
    result = TaskResult(metrics=metrics, samples=samples, split="val")
    record = build_record(
        task=spec, params=params, result=result, checkpoint=ckpt, key=key, data_root=output / "data",
        dataset_fingerprint=fingerprint, run_info=run_info(**run_overrides),
    )  # fmt: skip
    write_task_result(output, ckpt, record, samples)
    return record


def toy_samples(n: int = 4) -> list[dict]:
    return [{"id": f"img{i}", "top1": i % 2, "top5": 1, "label": i % 2} for i in range(n)]


# --------------------------------------------------------------------------- schema


def test_record_holds_every_required_field_and_is_strict_json_with_nan_as_null(tmp_path: Path) -> None:
    spec = make_spec(metrics=("top1", "top5", MetricSpec("loss", higher_is_better=False)))
    annotation = tmp_path / "data" / "toyset" / "labels.json"
    annotation.parent.mkdir(parents=True)
    annotation.write_text('{"img0": 0}')
    samples = toy_samples()
    result = TaskResult(
        metrics={"top1": 0.5, "top5": math.nan, "loss": 1.25},
        samples=samples,
        split="val",
        annotation_files=[annotation],
        extra_config={"classnames_sha256": "c0ffee"},
        skipped=[Skip("img9", "unreadable JPEG")],
    )
    params = dict(spec.params)
    fingerprint = fingerprint_files([annotation])
    key = result_key(spec, params, CKPT, fingerprint, "fp32")
    record = build_record(
        task=spec, params=params, result=result, checkpoint=CKPT, key=key, data_root=tmp_path / "data",
        dataset_fingerprint=fingerprint, run_info=run_info(),
    )  # fmt: skip
    path = write_task_result(tmp_path, CKPT, record, samples)

    def refuse(constant: str) -> None:
        raise AssertionError(f"invalid JSON constant {constant}")

    raw = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
    assert raw["metrics"] == {"top1": 0.5, "top5": None, "loss": 1.25}
    for field in ("schema_version", "task", "checkpoint", "metrics", "higher_is_better", "num_samples", "dataset",
                  "config", "run", "versions", "git_commit", "skipped", "key"):  # fmt: skip
        assert field in raw, field
    assert raw["schema_version"] == results.SCHEMA_VERSION
    assert raw["task"] == {
        "name": "toy_zeroshot", "version": 1, "groups": ["zeroshot", "image"], "description": "Toy zero-shot task.",
        "source": "tests/test_results.py", "metrics": ["top1", "top5", "loss"],
    }  # fmt: skip
    assert raw["checkpoint"] == {"name": "base", "spec": "coca_ViT-B-32:laion2b", "sha256": "a" * 64}
    assert raw["higher_is_better"] == {"top1": True, "top5": True, "loss": False}
    assert raw["num_samples"] == 4
    assert raw["dataset"]["name"] == "toyset"
    assert raw["dataset"]["split"] == "val"
    assert raw["dataset"]["fingerprint"] == fingerprint
    assert raw["dataset"]["annotation_files"] == ["labels.json"]
    assert raw["config"] == {"params": {"templates": ["a photo of a {}."], "limit": None}, "extra": {"classnames_sha256": "c0ffee"}}
    assert set(raw["run"]) >= set(results.RUN_INFO_KEYS)
    assert raw["run"]["started_at"] == "2024-05-01T12:00:00Z"
    assert set(raw["versions"]) >= {"coca_bench", "torch", "open_clip", "numpy", "python"}
    assert raw["skipped"] == [{"id": "img9", "reason": "unreadable JPEG"}]
    assert raw["key"] == key
    assert raw["samples_file"]["rows"] == 4
    # loading gives floats back: NaN, not None
    loaded = load_task_result(tmp_path, "base", "toy_zeroshot")
    assert math.isnan(loaded["metrics"]["top5"])
    assert load_samples(tmp_path, "base", "toy_zeroshot") == samples


def test_record_refuses_undeclared_metric_and_incomplete_run_info(tmp_path: Path) -> None:
    spec = make_spec(metrics=("top1",))
    kwargs = dict(task=spec, params={}, checkpoint=CKPT, key="k", data_root=tmp_path, dataset_fingerprint="fp")
    with pytest.raises(ValueError, match="does not declare"):
        build_record(result=TaskResult(metrics={"top1": 1.0, "acc": 0.3}), run_info=run_info(), **kwargs)
    incomplete = run_info()
    del incomplete["seed"]
    with pytest.raises(ValueError, match="seed"):
        build_record(result=TaskResult(metrics={"top1": 1.0}), run_info=incomplete, **kwargs)


def test_results_modules_do_not_import_torch() -> None:
    code = "import sys, coca_bench.results, coca_bench.compare; sys.exit('torch' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert completed.returncode == 0


# --------------------------------------------------------------------------- atomic writes


def _crashing_replace(*args, **kwargs):
    raise OSError("simulated crash during rename")


@pytest.mark.parametrize("writer", ["text", "jsonl"])
def test_atomic_write_crash_keeps_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch, writer: str) -> None:
    target = tmp_path / "result.json"
    target.write_text("old contents")
    monkeypatch.setattr(os, "replace", _crashing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        if writer == "text":
            atomic_write_text(target, "new contents")
        else:
            atomic_write_jsonl(target, [{"id": 1}, {"id": 2}])
    assert target.read_text() == "old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_crash_before_the_json_is_written_leaves_no_stale_record(tmp_path: Path, monkeypatch) -> None:
    spec = make_spec()
    store(tmp_path, CKPT, spec, {"top1": 0.5}, toy_samples())
    original = results.atomic_write_text

    def crash_on_task_json(path: Path, text: str) -> None:
        if Path(path).name == "toy_zeroshot.json":
            raise OSError("simulated crash")
        original(path, text)

    monkeypatch.setattr(results, "atomic_write_text", crash_on_task_json)
    with pytest.raises(OSError):
        store(tmp_path, CKPT, spec, {"top1": 0.25}, toy_samples(8), params={"limit": 8})
    # the old record would now point at the new samples; it must be gone rather than wrong
    assert load_task_result(tmp_path, "base", "toy_zeroshot") is None


# --------------------------------------------------------------------------- keys, fingerprints, reuse


def test_result_key_covers_what_determines_the_numbers_and_nothing_else() -> None:
    spec = make_spec()
    params = {"templates": ["a photo of a {}."], "limit": None}
    key = result_key(spec, params, CKPT, "fp0", "fp32")
    assert key == result_key(spec, dict(reversed(list(params.items()))), CKPT, "fp0", "fp32")
    assert key == result_key(spec, params, CheckpointInfo("renamed", "elsewhere", CKPT.sha256), "fp0", "fp32")
    variants = [
        result_key(spec, {**params, "templates": ["itap of a {}."]}, CKPT, "fp0", "fp32"),
        result_key(spec, {**params, "limit": 10}, CKPT, "fp0", "fp32"),
        result_key(spec, params, OTHER, "fp0", "fp32"),
        result_key(spec, params, CKPT, "fp1", "fp32"),
        result_key(spec, params, CKPT, "fp0", "bf16"),
        result_key(make_spec(version=2), params, CKPT, "fp0", "fp32"),
    ]
    assert len({key, *variants}) == len(variants) + 1


def test_fingerprint_depends_on_names_and_content_not_order_or_location(tmp_path: Path) -> None:
    first = tmp_path / "a" / "ds"
    first.mkdir(parents=True)
    (first / "labels.json").write_text("[0, 1]")
    (first / "classes.txt").write_text("cat\ndog\n")
    files = [first / "labels.json", first / "classes.txt"]
    fingerprint = fingerprint_files(files)
    assert fingerprint == fingerprint_files(files[::-1])
    moved = shutil.copytree(first, tmp_path / "b" / "ds")
    assert fingerprint == fingerprint_files([moved / "labels.json", moved / "classes.txt"])
    (moved / "labels.json").write_text("[1, 0]")
    assert fingerprint != fingerprint_files([moved / "labels.json", moved / "classes.txt"])
    with pytest.raises(ValueError, match="folder"):
        fingerprint_files([first])
    with pytest.raises(FileNotFoundError, match="missing.json"):
        fingerprint_files([first / "missing.json"])


def test_find_reusable_matches_key_and_requires_complete_samples(tmp_path: Path) -> None:
    spec = make_spec()
    record = store(tmp_path, CKPT, spec, {"top1": 0.5}, toy_samples())
    found = find_reusable(tmp_path, "base", "toy_zeroshot", record["key"])
    assert found is not None and found["metrics"]["top1"] == 0.5
    assert find_reusable(tmp_path, "base", "toy_zeroshot", "another-key") is None
    assert find_reusable(tmp_path, "base", "missing_task", record["key"]) is None

    samples_path = tmp_path / "base" / "toy_zeroshot.samples.jsonl"
    lines = samples_path.read_text().splitlines(keepends=True)
    samples_path.write_text("".join(lines[:-1]))  # truncated: a row is missing
    assert find_reusable(tmp_path, "base", "toy_zeroshot", record["key"]) is None
    samples_path.write_text("".join(lines[:-1]) + lines[-1][:10])  # same row count, last row cut short
    assert find_reusable(tmp_path, "base", "toy_zeroshot", record["key"]) is None
    samples_path.unlink()
    assert find_reusable(tmp_path, "base", "toy_zeroshot", record["key"]) is None


# --------------------------------------------------------------------------- folders


def test_claim_checkpoint_dir_refuses_another_checkpoints_folder(tmp_path: Path) -> None:
    folder = claim_checkpoint_dir(tmp_path, CKPT)
    assert json.loads((folder / "checkpoint.json").read_text()) == {"name": "base", "spec": CKPT.spec, "sha256": CKPT.sha256}
    assert claim_checkpoint_dir(tmp_path, CKPT) == folder  # the same checkpoint may come back
    impostor = CheckpointInfo(name="base", spec="other.pt", sha256="c" * 64)
    with pytest.raises(ValueError, match="another checkpoint.*--checkpoint NAME=SPEC"):
        claim_checkpoint_dir(tmp_path, impostor)
    with pytest.raises(ValueError, match="another checkpoint"):
        write_task_result(tmp_path, impostor, {"checkpoint": impostor.as_dict(), "num_samples": 0, "task": {"name": "t"}}, [])
    with pytest.raises(ValueError, match="cannot name a results folder"):
        claim_checkpoint_dir(tmp_path, CheckpointInfo(name="../escape", spec="x", sha256="d" * 64))


def test_collect_records_reads_task_files_only_and_warns_on_corrupt_ones(tmp_path: Path) -> None:
    spec = make_spec()
    store(tmp_path, CKPT, spec, {"top1": 0.5}, toy_samples())
    store(tmp_path, OTHER, spec, {"top1": 0.75}, toy_samples())
    (tmp_path / "tuned" / "broken.json").write_text("{not json")
    with pytest.warns(UserWarning, match="broken.json"):
        records = collect_records(tmp_path)
    assert [(r["checkpoint"]["name"], r["task"]["name"]) for r in records] == [("base", "toy_zeroshot"), ("tuned", "toy_zeroshot")]


# --------------------------------------------------------------------------- summaries


def _write_two_tasks(output: Path) -> None:
    zeroshot = make_spec("b_zeroshot", metrics=("top1", "mean_per_class_recall", "top5"))
    retrieval = make_spec("a_retrieval", metrics=("image_r1", MetricSpec("median_rank", higher_is_better=False)))
    store(output, CKPT, zeroshot, {"top1": 0.5, "mean_per_class_recall": 0.25, "top5": math.nan}, toy_samples())
    store(output, CKPT, retrieval, {"image_r1": 0.125, "median_rank": 3.0}, toy_samples())
    store(output, OTHER, zeroshot, {"top1": 0.75, "mean_per_class_recall": 0.5, "top5": 1.0}, toy_samples(), limit=2)


def test_summary_columns_follow_task_names_then_declared_metric_order(tmp_path: Path) -> None:
    _write_two_tasks(tmp_path)
    csv_path, md_path = write_summary(tmp_path)
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == [
        "checkpoint", "a_retrieval/image_r1", "a_retrieval/median_rank",
        "b_zeroshot/top1", "b_zeroshot/mean_per_class_recall", "b_zeroshot/top5",
    ]  # fmt: skip
    assert rows[1] == ["base", "0.125", "3.0", "0.5", "0.25", "nan"]
    assert rows[2] == ["tuned", "", "", "0.75", "0.5", "1.0"]  # not run: empty, not zero
    markdown = md_path.read_text()
    assert "a_retrieval/median_rank ↓" in markdown and "b_zeroshot/top1 ↑" in markdown
    assert "b_zeroshot: tuned vs base differ in run.limit" in markdown
    first = (csv_path.read_bytes(), md_path.read_bytes())
    write_summary(tmp_path)
    assert (csv_path.read_bytes(), md_path.read_bytes()) == first


def test_summary_follows_registry_order_when_given(tmp_path: Path) -> None:
    _write_two_tasks(tmp_path)
    order = {"b_zeroshot": ["top5", "top1", "mean_per_class_recall"], "a_retrieval": ["image_r1", "median_rank"]}
    csv_path, _ = write_summary(tmp_path, metric_order=order)
    header = next(csv.reader(csv_path.open()))
    assert header[1:] == [
        "b_zeroshot/top5", "b_zeroshot/top1", "b_zeroshot/mean_per_class_recall",
        "a_retrieval/image_r1", "a_retrieval/median_rank",
    ]  # fmt: skip


def test_console_table_lists_each_checkpoint_task_with_metrics(tmp_path: Path) -> None:
    _write_two_tasks(tmp_path)
    table = format_results_table(collect_records(tmp_path))
    lines = table.splitlines()
    assert lines[0].split() == ["checkpoint", "task", "samples", "skipped", "time_s", "metrics"]
    assert len(lines) == 2 + 3
    assert "top1=0.5000  mean_per_class_recall=0.2500  top5=nan" in lines[3]
    assert lines[4].startswith("tuned") and "top1=0.7500" in lines[4]


# --------------------------------------------------------------------------- provenance


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_reports_head_and_dirty_state(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "coca_bench").mkdir(parents=True)
    (repo / "coca_bench" / "results.py").write_text("# stand-in\n")

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    head = git("rev-parse", "HEAD")
    results.git_commit.cache_clear()
    assert results.git_commit(repo) == head
    (repo / "coca_bench" / "results.py").write_text("# edited\n")
    results.git_commit.cache_clear()
    assert results.git_commit(repo) == f"{head}-dirty"
    results.git_commit.cache_clear()
    assert results.git_commit(tmp_path / "not_a_repo") is None
    results.git_commit.cache_clear()
