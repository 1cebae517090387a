"""The pandas layer: load_results / load_samples hold exactly what the result files hold, and the tables use them."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from coca_bench.params import Param
from coca_bench.registry import MetricSpec, Skip, TaskResult, TaskSpec
from coca_bench.results import (
    RESULT_COLUMNS,
    CheckpointInfo,
    ResultStore,
    RunRecordInputs,
    best_checkpoints,
    build_record,
    load_results,
    load_samples,
    summary_frame,
)
from coca_bench.settings import RunSettings

BASE = CheckpointInfo("base", "base.pt", "a" * 64)
TUNED = CheckpointInfo("tuned", "tuned.safetensors", "b" * 64)


def _spec(name: str, metrics: tuple[MetricSpec, ...]) -> TaskSpec:
    return TaskSpec(name=name, run=lambda ctx, params: TaskResult(), groups=("test",), dataset="toyset",
                    metrics=metrics, param_specs={"templates": Param("simple")}, source=__file__)  # fmt: skip


ZEROSHOT = _spec("zeroshot", (MetricSpec("acc1"), MetricSpec("acc5"), MetricSpec("recall", aggregation="task")))
RETRIEVAL = _spec("retrieval", (MetricSpec("r1"), MetricSpec("median_rank", higher_is_better=False)))


def _write(output: Path, ckpt: CheckpointInfo, spec: TaskSpec, metrics: dict, samples: list[dict], **settings) -> None:
    inputs = RunRecordInputs(
        key=f"key-{ckpt.name}-{spec.name}", checkpoint=ckpt, dataset_dir=output / "data" / "toyset",
        dataset_fingerprint=f"fp-{spec.name}", annotation_files=[], splits=["val"], params=dict(spec.params),
        key_material={}, run={"settings": RunSettings(device="cpu", **settings).as_dict(),
                              "finished_at": datetime(2024, 5, 1, 12, tzinfo=timezone.utc), "wall_time_s": 1.5},
    )  # fmt: skip
    skipped = [Skip("img9", "unreadable JPEG")] if ckpt is TUNED else []
    record = build_record(spec, inputs, metrics, len(samples), {}, skipped)
    ResultStore(output).write(ckpt, record, samples)


@pytest.fixture()
def stored(tmp_path: Path) -> Path:
    rows = [{"id": f"img{i}", "acc1": i % 2, "acc5": 1, "label": i % 3, "top5": [i, 1, 2, 3, 4]} for i in range(6)]
    _write(tmp_path, BASE, ZEROSHOT, {"acc1": 0.5, "acc5": math.nan, "recall": 1 / 3}, rows)
    _write(tmp_path, TUNED, ZEROSHOT, {"acc1": 0.1 + 0.2, "acc5": 1.0, "recall": 0.25}, rows[:4], limit=4, seed=3)
    _write(tmp_path, BASE, RETRIEVAL, {"r1": 0.125, "median_rank": 3.0}, [{"id": "q0", "r1": 0.125}])
    return tmp_path


def assert_frame_matches_json_files(output: Path) -> pd.DataFrame:
    """Every row of load_results against the raw JSON of its file: the same values, bit for bit, and nothing else."""
    frame = load_results(output)
    assert tuple(frame.columns) == RESULT_COLUMNS
    expected = 0
    for path in sorted(output.glob("*/*.json")):
        if path.name == "checkpoint.json":
            continue
        raw = json.loads(path.read_text(encoding="utf-8"))
        rows = frame[(frame["checkpoint"] == raw["checkpoint"]["name"]) & (frame["task"] == raw["task"]["name"])]
        declared = {m["name"]: m for m in raw["task"]["metrics"]}
        assert list(rows["metric"]) == [m for m in declared if m in raw["metrics"]]  # declared order
        expected += len(rows)
        settings = raw["run"]["settings"]
        for row in rows.to_dict("records"):
            value = raw["metrics"][row["metric"]]
            assert (math.isnan(row["value"]) and value is None) or row["value"] == value, (path, row["metric"])
            assert row["higher_is_better"] is raw["higher_is_better"][row["metric"]]
            assert row["aggregation"] == declared[row["metric"]]["aggregation"]
            assert row["num_samples"] == raw["num_samples"] and row["skipped"] == len(raw["skipped"])
            assert row["precision"] == settings["precision"] and row["seed"] == settings["seed"]
            assert (row["limit"] is pd.NA and settings["limit"] is None) or row["limit"] == settings["limit"]
            assert row["strict"] == settings["strict"] and row["split"] == raw["dataset"]["split"]
            assert row["dataset_fingerprint"] == raw["dataset"]["fingerprint"] and row["key"] == raw["key"]
            assert row["checkpoint_sha256"] == raw["checkpoint"]["sha256"] and row["git_commit"] == raw["git_commit"]
    assert len(frame) == expected > 0
    return frame


def test_load_results_returns_exactly_the_values_in_the_result_files(stored: Path) -> None:
    frame = assert_frame_matches_json_files(stored)
    assert list(zip(frame["checkpoint"], frame["task"], frame["metric"])) == [
        ("base", "retrieval", "r1"), ("base", "retrieval", "median_rank"),
        ("base", "zeroshot", "acc1"), ("base", "zeroshot", "acc5"), ("base", "zeroshot", "recall"),
        ("tuned", "zeroshot", "acc1"), ("tuned", "zeroshot", "acc5"), ("tuned", "zeroshot", "recall"),
    ]  # fmt: skip
    tuned = frame[frame["checkpoint"] == "tuned"].iloc[0]
    assert tuned["value"] == 0.1 + 0.2  # 0.30000000000000004: no rounding on the way
    assert (tuned["limit"], tuned["seed"], tuned["skipped"], tuned["num_samples"]) == (4, 3, 1, 4)
    assert frame["value"].dtype == "float64" and str(frame["limit"].dtype) == "Int64"
    assert frame.groupby("task")["value"].count().to_dict() == {"retrieval": 2, "zeroshot": 5}  # the NaN is not a value


def test_load_samples_returns_the_per_sample_records(stored: Path) -> None:
    samples = load_samples(stored, "tuned", "zeroshot")
    assert samples.to_dict("records") == ResultStore(stored).samples("tuned", "zeroshot")
    assert list(samples["id"]) == ["img0", "img1", "img2", "img3"] and samples["top5"][0] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="no result for checkpoint 'tuned' and task 'retrieval'.*base/retrieval"):
        load_samples(stored, "tuned", "retrieval")
    (stored / "base" / "retrieval.samples.jsonl").unlink()
    assert load_samples(stored, "base", "retrieval").empty  # a result without its samples file (older runs)


def test_summary_frame_tells_not_run_from_undefined_and_marks_the_best(stored: Path) -> None:
    values, ran = summary_frame(load_results(stored))
    assert list(values.index) == ["base", "tuned"]
    assert list(values.columns) == [
        "retrieval/r1", "retrieval/median_rank", "zeroshot/acc1", "zeroshot/acc5", "zeroshot/recall",
    ]  # fmt: skip
    assert not ran.at["tuned", "retrieval/r1"] and ran.at["base", "zeroshot/acc5"]  # not run vs undefined (NaN)
    assert math.isnan(values.at["tuned", "retrieval/r1"]) and math.isnan(values.at["base", "zeroshot/acc5"])
    directions = {"retrieval/median_rank": False}
    best = best_checkpoints(values, directions)
    assert best == {"zeroshot/acc1": {"base"}, "zeroshot/recall": {"base"}}  # one defined value: nothing is best
    values.loc["tuned", "retrieval/median_rank"] = 2.0
    values.loc["tuned", "zeroshot/acc1"] = 0.5
    best = best_checkpoints(values, directions)
    assert best["retrieval/median_rank"] == {"tuned"}  # lower is better
    assert "zeroshot/acc1" not in best  # everyone tied: nothing to mark


def test_empty_output_gives_empty_frames(tmp_path: Path) -> None:
    frame = load_results(tmp_path / "nothing")
    assert frame.empty and tuple(frame.columns) == RESULT_COLUMNS
    values, ran = summary_frame(frame)
    assert values.empty and ran.empty
