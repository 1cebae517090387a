"""Result files: schema, atomic writes, reuse, folder claims, summaries."""

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

from coca_bench import fingerprints
from coca_bench.fileio import atomic_write_jsonl, atomic_write_text
from coca_bench.params import Param
from coca_bench.registry import MetricSpec, Skip, TaskResult, TaskSpec
from coca_bench.results import (
    SCHEMA_VERSION,
    CheckpointInfo,
    ResultStore,
    RunRecordInputs,
    build_record,
    format_results_table,
    write_summary,
)
from coca_bench.settings import RunSettings

CKPT = CheckpointInfo(name="base", spec="coca_ViT-B-32:laion2b", sha256="a" * 64)
OTHER = CheckpointInfo(name="tuned", spec="/ckpt/tuned.safetensors", sha256="b" * 64)


def make_spec(name: str = "toy_zeroshot", metrics=("top1", "top5"), version: int = 1) -> TaskSpec:
    return TaskSpec(
        name=name,
        run=lambda ctx, params: TaskResult(),
        groups=("zeroshot", "image"),
        dataset="toyset",
        metrics=tuple(m if isinstance(m, MetricSpec) else MetricSpec(m) for m in metrics),
        param_specs={"templates": Param(["a photo of a {}."]), "size": Param(None)},
        description="Toy zero-shot task.",
        version=version,
        source="tests/test_results.py",
    )


def record_inputs(output: Path, ckpt: CheckpointInfo, spec: TaskSpec, key: str = "k0", **overrides) -> RunRecordInputs:
    fields = dict(
        key=key, checkpoint=ckpt, dataset_dir=output / "data" / "toyset", dataset_fingerprint="fp0",
        annotation_files=[], splits=["val"], params=dict(spec.params), key_material={},
        run={"settings": RunSettings(device="cpu").as_dict(), "started_at": datetime(2024, 5, 1, 12, tzinfo=timezone.utc),
             "wall_time_s": 3.25, "argv": ["run_suite.py"]},
    )  # fmt: skip
    fields.update(overrides)
    return RunRecordInputs(**fields)


def store(output: Path, ckpt: CheckpointInfo, spec: TaskSpec, metrics: dict, samples: list[dict], **overrides) -> dict:
    record = build_record(spec, record_inputs(output, ckpt, spec, **overrides), metrics, len(samples), {}, [])
    ResultStore(output).write(ckpt, record, samples)
    return record


def toy_samples(n: int = 4) -> list[dict]:
    return [{"id": f"img{i}", "top1": i % 2, "top5": 1, "label": i % 2} for i in range(n)]


# --------------------------------------------------------------------------- schema


def test_record_holds_every_required_field_and_is_strict_json_with_nan_as_null(tmp_path: Path) -> None:
    spec = make_spec(metrics=("top1", "top5", MetricSpec("loss", higher_is_better=False, aggregation="task")))
    spec = TaskSpec(**{**spec.__dict__, "aggregate": lambda samples, params: {"loss": 1.25}})
    annotation = tmp_path / "data" / "toyset" / "labels.json"
    annotation.parent.mkdir(parents=True)
    annotation.write_text('{"img0": 0}')
    samples = toy_samples()
    inputs = record_inputs(tmp_path, CKPT, spec, annotation_files=[annotation])
    record = build_record(
        spec, inputs, {"top1": 0.5, "top5": math.nan, "loss": 1.25}, len(samples), {"classnames_sha256": "c0ffee"},
        [Skip("img9", "unreadable JPEG")],
    )  # fmt: skip
    path = ResultStore(tmp_path).write(CKPT, record, samples)

    def refuse(constant: str) -> None:
        raise AssertionError(f"invalid JSON constant {constant}")

    raw = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
    assert raw["metrics"] == {"top1": 0.5, "top5": None, "loss": 1.25}
    for field in ("schema_version", "task", "checkpoint", "metrics", "higher_is_better", "num_samples", "dataset",
                  "config", "run", "versions", "git_commit", "skipped", "key"):  # fmt: skip
        assert field in raw, field
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["task"]["metrics"] == [
        {"name": "top1", "higher_is_better": True, "aggregation": "mean"},
        {"name": "top5", "higher_is_better": True, "aggregation": "mean"},
        {"name": "loss", "higher_is_better": False, "aggregation": "task"},
    ]
    assert raw["task"]["source"] == "tests/test_results.py" and raw["task"]["source_sha256"] is not None
    assert raw["checkpoint"] == {"name": "base", "spec": "coca_ViT-B-32:laion2b", "sha256": "a" * 64}
    assert raw["higher_is_better"] == {"top1": True, "top5": True, "loss": False}
    assert raw["num_samples"] == 4
    assert raw["dataset"]["split"] == "val" and raw["dataset"]["annotation_files"] == ["labels.json"]
    assert raw["config"]["params"] == {"templates": ["a photo of a {}."], "size": None}
    assert raw["config"]["extra"] == {"classnames_sha256": "c0ffee"}
    assert raw["run"]["settings"]["seed"] == 0 and raw["run"]["settings"]["strict"] is False
    assert raw["run"]["started_at"] == "2024-05-01T12:00:00Z"
    assert set(raw["versions"]) >= {"coca_bench", "torch", "open_clip", "numpy", "python"}
    assert raw["skipped"] == [{"id": "img9", "reason": "unreadable JPEG"}]
    assert raw["samples_file"]["rows"] == 4
    store_ = ResultStore(tmp_path)
    assert math.isnan(store_.load("base", "toy_zeroshot")["metrics"]["top5"])  # NaN, not None, when read back
    assert store_.samples("base", "toy_zeroshot") == samples


def test_results_modules_do_not_import_torch() -> None:
    code = "import sys, coca_bench.results, coca_bench.compare, coca_bench.runner; sys.exit('torch' in sys.modules)"
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
    from coca_bench.results import store as store_module

    original = store_module.atomic_write_text

    def crash_on_task_json(path: Path, text: str) -> None:
        if Path(path).name == "toy_zeroshot.json":
            raise OSError("simulated crash")
        original(path, text)

    monkeypatch.setattr(store_module, "atomic_write_text", crash_on_task_json)
    with pytest.raises(OSError):
        store(tmp_path, CKPT, spec, {"top1": 0.25}, toy_samples(8), key="k1")
    # the old record would now point at the new samples; it must be gone rather than wrong
    assert ResultStore(tmp_path).load("base", "toy_zeroshot") is None


# --------------------------------------------------------------------------- keys, fingerprints, reuse


def _key(**overrides) -> str:
    fields = dict(
        task_name="t", task_version=1, params={"templates": ["a {}"], "seed": 3}, key_material={"prompts": ["x"]},
        settings=RunSettings().key_fields(), checkpoint_sha256="a" * 64, model_fingerprint="m",
        dataset_fingerprint="d", code_fingerprint="c",
    )  # fmt: skip
    fields.update(overrides)
    return fingerprints.result_key(**fields)


def test_result_key_covers_what_determines_the_numbers_and_nothing_else() -> None:
    key = _key()
    assert key == _key(params={"seed": 3, "templates": ["a {}"]})  # order does not matter
    variants = [
        _key(task_version=2),
        _key(params={"templates": ["itap of a {}."], "seed": 3}),
        _key(key_material={"prompts": ["y"]}),
        _key(settings=RunSettings(limit=10).key_fields()),
        _key(settings=RunSettings(seed=1).key_fields()),
        _key(settings=RunSettings(strict=True).key_fields()),
        _key(settings=RunSettings(precision="bf16").key_fields()),
        _key(checkpoint_sha256="b" * 64),
        _key(model_fingerprint="m2"),
        _key(dataset_fingerprint="d2"),
        _key(code_fingerprint="c2"),
    ]
    assert len({key, *variants}) == len(variants) + 1


def test_a_task_parameter_cannot_overwrite_the_runs_own_settings() -> None:
    """A task parameter named ``seed`` lives in another part of the key than the run's seed."""
    collides = _key(params={"seed": 0}, settings={**RunSettings(seed=5).key_fields()})
    assert collides != _key(params={"seed": 5}, settings={**RunSettings(seed=0).key_fields()})


def test_find_reusable_matches_key_and_requires_complete_samples(tmp_path: Path) -> None:
    spec = make_spec()
    record = store(tmp_path, CKPT, spec, {"top1": 0.5}, toy_samples())
    find_reusable = ResultStore(tmp_path).find_reusable
    found = find_reusable("base", "toy_zeroshot", record["key"])
    assert found is not None and found["metrics"]["top1"] == 0.5
    assert find_reusable("base", "toy_zeroshot", "another-key") is None
    assert find_reusable("base", "missing_task", record["key"]) is None

    samples_path = tmp_path / "base" / "toy_zeroshot.samples.jsonl"
    lines = samples_path.read_text().splitlines(keepends=True)
    samples_path.write_text("".join(lines[:-1]))  # truncated: a row is missing
    with pytest.warns(UserWarning, match="does not match its record's sha256; it will be recomputed"):
        assert find_reusable("base", "toy_zeroshot", record["key"]) is None
    samples_path.write_text("".join(lines[:-1]) + lines[-1][:10])  # same row count, last row cut short
    with pytest.warns(UserWarning, match="does not match its record's sha256; it will be recomputed"):
        assert find_reusable("base", "toy_zeroshot", record["key"]) is None
    samples_path.unlink()
    assert find_reusable("base", "toy_zeroshot", record["key"]) is None


# --------------------------------------------------------------------------- folders


def test_claim_checkpoint_dir_refuses_another_checkpoints_folder(tmp_path: Path) -> None:
    claim_checkpoint_dir = ResultStore(tmp_path).claim
    folder = claim_checkpoint_dir(CKPT)
    assert json.loads((folder / "checkpoint.json").read_text()) == {
        "name": "base",
        "spec": CKPT.spec,
        "sha256": CKPT.sha256,
    }
    assert claim_checkpoint_dir(CKPT) == folder  # the same checkpoint may come back
    impostor = CheckpointInfo(name="base", spec="other.pt", sha256="c" * 64)
    with pytest.raises(ValueError, match="another checkpoint.*--checkpoint NAME=SPEC"):
        claim_checkpoint_dir(impostor)
    with pytest.raises(ValueError, match="another checkpoint"):
        ResultStore(tmp_path).write(
            impostor, {"checkpoint": impostor.as_dict(), "num_samples": 0, "task": {"name": "t"}}, []
        )
    with pytest.raises(ValueError, match="cannot name a results folder"):
        claim_checkpoint_dir(CheckpointInfo(name="../escape", spec="x", sha256="d" * 64))


def test_collect_records_reads_task_files_only_and_warns_on_corrupt_ones(tmp_path: Path) -> None:
    spec = make_spec()
    store(tmp_path, CKPT, spec, {"top1": 0.5}, toy_samples())
    store(tmp_path, OTHER, spec, {"top1": 0.75}, toy_samples())
    (tmp_path / "tuned" / "broken.json").write_text("{not json")
    with pytest.warns(UserWarning, match="broken.json"):
        records = ResultStore(tmp_path).records()
    assert [(r["checkpoint"]["name"], r["task"]["name"]) for r in records] == [
        ("base", "toy_zeroshot"),
        ("tuned", "toy_zeroshot"),
    ]


# --------------------------------------------------------------------------- summaries


def _write_two_tasks(output: Path) -> None:
    zeroshot = make_spec("b_zeroshot", metrics=("top1", "mean_per_class_recall", "top5"))
    retrieval = make_spec("a_retrieval", metrics=("image_r1", MetricSpec("median_rank", higher_is_better=False)))
    store(output, CKPT, zeroshot, {"top1": 0.5, "mean_per_class_recall": 0.25, "top5": math.nan}, toy_samples())
    store(output, CKPT, retrieval, {"image_r1": 0.125, "median_rank": 3.0}, toy_samples())
    limited = {"settings": RunSettings(device="cpu", limit=2).as_dict(), "wall_time_s": 1.0}
    store(
        output, OTHER, zeroshot, {"top1": 0.75, "mean_per_class_recall": 0.5, "top5": 1.0}, toy_samples(), run=limited
    )


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
    assert "b_zeroshot: tuned vs base: differ in run.settings.limit" in markdown
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
    table = format_results_table(ResultStore(tmp_path).records())
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
    (repo / "coca_bench" / "registry.py").write_text("# stand-in\n")

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    head = git("rev-parse", "HEAD")
    fingerprints.git_commit.cache_clear()
    assert fingerprints.git_commit(repo) == head
    (repo / "coca_bench" / "registry.py").write_text("# edited\n")
    fingerprints.git_commit.cache_clear()
    assert fingerprints.git_commit(repo) == f"{head}-dirty"
    fingerprints.git_commit.cache_clear()
    assert fingerprints.git_commit(tmp_path / "not_a_repo") is None
    fingerprints.git_commit.cache_clear()


def test_atomic_writes_get_the_usual_file_mode_not_mkstemps_private_one(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "shared.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o644


def test_a_declared_group_average_is_a_summary_column_defined_only_when_every_member_ran(
    tmp_path: Path, clean_registry
):
    """The paper's "Avg" over ImageNet and its variants: the mean over the group's registered tasks."""
    import dataclasses

    from coca_bench import registry

    specs = [dataclasses.replace(make_spec(name), groups=("robust",)) for name in ("in_zs", "in_a_zs", "in_r_zs")]
    for spec in specs:
        registry._add(spec)
    registry.group_average("robust", "top1")
    for spec, value in zip(specs, (0.5, 0.25, 0.75)):
        store(tmp_path, CKPT, spec, {"top1": value, "top5": 1.0}, toy_samples())
    for spec in specs[:2]:  # OTHER lacks in_r_zs: no average for it
        store(tmp_path, OTHER, spec, {"top1": 1.0, "top5": 1.0}, toy_samples())
    csv_path, md_path = write_summary(tmp_path)
    rows = {row["checkpoint"]: row for row in csv.DictReader(csv_path.open())}
    assert float(rows["base"]["robust/avg_top1"]) == pytest.approx(0.5)
    assert rows["tuned"]["robust/avg_top1"] == ""
    assert "robust/avg_top1 ↑" in md_path.read_text()
    with pytest.raises(registry.RegistryError, match="declared twice"):  # the same group, from another file
        exec("from coca_bench.registry import group_average; group_average('robust', 'top5')", {"__file__": "other.py"})
