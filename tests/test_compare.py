"""Checkpoint comparison: paired bootstrap and stored-run comparisons."""
from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import pytest

from coca_bench.compare import (
    MetricComparison,
    compare_runs,
    format_comparison,
    paired_bootstrap,
    recompute_from_specs,
    write_comparison,
)
from coca_bench.registry import MetricSpec, TaskResult, TaskSpec
from coca_bench.results import CheckpointInfo, build_record, result_key, write_task_result

N_RESAMPLES = 300


def hits(flags: list[int], prefix: str = "s") -> list[dict]:
    return [{"id": f"{prefix}{i}", "top1": flag} for i, flag in enumerate(flags)]


def mean_per_class_recall(samples, params=None) -> dict[str, float]:
    per_class: dict[int, list[int]] = {}
    for sample in samples:
        per_class.setdefault(sample["label"], []).append(sample["correct"])
    return {"mean_per_class_recall": sum(sum(v) / len(v) for v in per_class.values()) / len(per_class)}


def plain_mean(samples) -> dict[str, float]:
    return {"top1": sum(s["top1"] for s in samples) / len(samples)}


# --------------------------------------------------------------------------- paired_bootstrap


def test_identical_runs_have_zero_delta_and_an_interval_containing_zero() -> None:
    rng = random.Random(1)
    samples = hits([rng.randint(0, 1) for _ in range(100)])
    delta, low, high = paired_bootstrap(samples, [dict(s) for s in samples], n_resamples=N_RESAMPLES)["top1"]
    assert delta == 0.0
    assert low <= 0.0 <= high


def test_clearly_better_run_has_an_interval_excluding_zero() -> None:
    rng = random.Random(2)
    worse = hits([int(rng.random() < 0.5) for _ in range(200)])
    better = hits([int(rng.random() < 0.9) for _ in range(200)])
    delta, low, high = paired_bootstrap(worse, better, n_resamples=N_RESAMPLES)["top1"]
    assert low > 0.0 and delta > 0.25
    assert low <= delta <= high
    mirrored = paired_bootstrap(better, worse, n_resamples=N_RESAMPLES)["top1"]
    assert mirrored[2] < 0.0


def test_delta_matches_a_hand_computed_case_and_a_single_pair_has_a_point_interval() -> None:
    a = hits([1, 0, 1, 0])  # mean 0.5
    b = hits([1, 1, 1, 0])  # mean 0.75
    delta, low, high = paired_bootstrap(a, b, n_resamples=N_RESAMPLES)["top1"]
    assert delta == pytest.approx(0.25)
    # per-pair differences are (0, 1, 0, 0): a resampled mean lies in [0, 1] and is 0 with prob. 0.75**4
    assert 0.0 <= low <= delta <= high <= 1.0
    assert paired_bootstrap(hits([0]), hits([1]), n_resamples=20)["top1"] == (1.0, 1.0, 1.0)


def test_custom_recompute_scores_mean_per_class_recall_not_the_plain_mean() -> None:
    labels = [0] * 8 + [1] * 2
    a = [{"id": i, "label": l, "correct": c} for i, (l, c) in enumerate(zip(labels, [1, 1, 1, 1, 0, 0, 0, 0, 1, 1]))]
    b = [{"id": i, "label": l, "correct": c} for i, (l, c) in enumerate(zip(labels, [1] * 8 + [0, 0]))]
    # a: (4/8 + 2/2) / 2 = 0.75; b: (8/8 + 0/2) / 2 = 0.5 -- while plain accuracy goes 0.6 -> 0.8
    result = paired_bootstrap(a, b, recompute=mean_per_class_recall, n_resamples=N_RESAMPLES)
    delta, low, high = result["mean_per_class_recall"]
    assert delta == pytest.approx(-0.25)
    assert low <= delta <= high
    assert paired_bootstrap(a, b, metrics=["correct"], n_resamples=N_RESAMPLES)["correct"][0] == pytest.approx(0.2)


def test_vectorised_mean_and_custom_recompute_agree_on_the_same_resamples() -> None:
    rng = random.Random(3)
    a = hits([rng.randint(0, 1) for _ in range(60)])
    b = hits([rng.randint(0, 1) for _ in range(60)])
    fast = paired_bootstrap(a, b, n_resamples=N_RESAMPLES, seed=7)["top1"]
    slow = paired_bootstrap(a, b, recompute=plain_mean, n_resamples=N_RESAMPLES, seed=7)["top1"]
    assert fast == pytest.approx(slow)


def test_pairing_uses_ids_not_file_order_and_ignores_unpaired_records() -> None:
    rng = random.Random(4)
    a = hits([rng.randint(0, 1) for _ in range(50)])
    b = hits([rng.randint(0, 1) for _ in range(50)])
    expected = paired_bootstrap(a, b, n_resamples=N_RESAMPLES)
    shuffled_a, shuffled_b = a[:], b[:] + [{"id": "only_in_b", "top1": 0}]
    rng.shuffle(shuffled_a)
    rng.shuffle(shuffled_b)
    assert paired_bootstrap(shuffled_a, shuffled_b, n_resamples=N_RESAMPLES) == expected
    # pairing by position would mix up samples; reversing one side changes a position-paired delta only
    flipped = paired_bootstrap(hits([1, 0]), list(reversed(hits([1, 0]))), n_resamples=50)["top1"]
    assert flipped == (0.0, 0.0, 0.0)


def test_pairing_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="share no sample ids"):
        paired_bootstrap(hits([1], prefix="x"), hits([1], prefix="y"))
    with pytest.raises(ValueError, match="appears twice"):
        paired_bootstrap(hits([1]) + hits([0]), hits([1]))
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(hits([1]), hits([1]), confidence=95)


def test_null_fields_are_left_out_of_the_mean() -> None:
    a = [{"id": 1, "acc": 1.0}, {"id": 2, "acc": None}, {"id": 3, "acc": 0.0}]
    b = [{"id": 1, "acc": 1.0}, {"id": 2, "acc": 1.0}, {"id": 3, "acc": 1.0}]
    assert paired_bootstrap(a, b, n_resamples=50)["acc"][0] == pytest.approx(0.5)


# --------------------------------------------------------------------------- compare_runs and outputs


def spec(name: str, metrics=("top1",), aggregate=None) -> TaskSpec:
    return TaskSpec(
        name=name,
        run=lambda ctx, params: TaskResult(metrics={}),
        groups=("test",),
        dataset="toyset",
        metrics=tuple(MetricSpec(m) for m in metrics),
        params={"limit": None},
        aggregate=aggregate,
        source="tests/test_compare.py",
    )


def store(output: Path, ckpt_name: str, task: TaskSpec, samples: list[dict], *, params=None, keep_samples=True) -> None:
    ckpt = CheckpointInfo(ckpt_name, f"{ckpt_name}.pt", ckpt_name * 8)
    params = {**task.params, **(params or {})}
    metrics = task.recompute(samples, params)
    key = result_key(task, params, ckpt, "fp0", "fp32")
    run = {
        "seed": 0, "precision": "fp32", "device": "cpu", "batch_size": 4, "limit": None,
        "started_at": "2024-01-01T00:00:00Z", "finished_at": "2024-01-01T00:00:01Z", "wall_time_s": 1.0, "argv": [],
    }  # fmt: skip
    record = build_record(
        task=task, params=params, result=TaskResult(metrics=metrics, samples=samples), checkpoint=ckpt, key=key,
        data_root=output, dataset_fingerprint="fp0", run_info=run,
    )  # fmt: skip
    write_task_result(output, ckpt, record, samples)
    if not keep_samples:
        (output / ckpt_name / f"{task.name}.samples.jsonl").unlink()


@pytest.fixture()
def stored_runs(tmp_path: Path) -> Path:
    rng = random.Random(5)
    base_flags = [int(rng.random() < 0.5) for _ in range(150)]
    zeroshot = spec("zeroshot")
    store(tmp_path, "aaa_base", zeroshot, hits(base_flags))
    store(tmp_path, "bbb_same", zeroshot, hits(base_flags))
    store(tmp_path, "ccc_better", zeroshot, hits([1] * 150))
    store(tmp_path, "ddd_old", zeroshot, hits(base_flags), keep_samples=False)
    store(tmp_path, "eee_other_params", zeroshot, hits(base_flags), params={"limit": 150})
    labels = [0] * 8 + [1] * 2
    balanced = spec("balanced", metrics=("mean_per_class_recall",), aggregate=mean_per_class_recall)
    store(tmp_path, "aaa_base", balanced, [{"id": i, "label": l, "correct": int(i < 4 or i >= 8)} for i, l in enumerate(labels)])
    store(tmp_path, "ccc_better", balanced, [{"id": i, "label": l, "correct": int(i < 8)} for i, l in enumerate(labels)])
    store(tmp_path, "fff_alone", spec("only_one_checkpoint"), hits([1, 0]))
    return tmp_path


def _row(rows: list[MetricComparison], task: str, metric: str) -> MetricComparison:
    return next(r for r in rows if r.task == task and r.metric == metric)


def test_compare_runs_reports_deltas_cis_and_missing_samples(stored_runs: Path) -> None:
    rows = compare_runs(stored_runs, n_resamples=N_RESAMPLES)
    assert {(r.task, r.metric) for r in rows} == {("zeroshot", "top1"), ("balanced", "mean_per_class_recall")}
    top1 = _row(rows, "zeroshot", "top1")
    assert top1.baseline == "aaa_base"
    assert set(top1.values) == {"aaa_base", "bbb_same", "ccc_better", "ddd_old", "eee_other_params"}
    assert top1.deltas["bbb_same"][0] == 0.0 and not top1.significant["bbb_same"]
    assert top1.significant["ccc_better"] and top1.is_better("ccc_better")
    assert top1.deltas["ccc_better"][1] > 0
    old_delta, old_low, _ = top1.deltas["ddd_old"]
    assert old_delta == 0.0 and math.isnan(old_low) and "no per-sample records" in top1.notes["ddd_old"]
    assert "not like for like" in top1.notes["eee_other_params"] and "config.params.limit" in top1.notes["eee_other_params"]
    assert "bbb_same" not in top1.notes


def test_compare_runs_needs_recompute_for_non_mean_metrics(stored_runs: Path) -> None:
    without = _row(compare_runs(stored_runs, n_resamples=N_RESAMPLES), "balanced", "mean_per_class_recall")
    assert math.isnan(without.deltas["ccc_better"][1]) and "no CI" in without.notes["ccc_better"]
    recompute_for = recompute_from_specs({"balanced": spec("balanced", ("mean_per_class_recall",), mean_per_class_recall)})
    rows = compare_runs(stored_runs, recompute_for=recompute_for, n_resamples=N_RESAMPLES)
    with_recompute = _row(rows, "balanced", "mean_per_class_recall")
    delta, low, high = with_recompute.deltas["ccc_better"]
    assert delta == pytest.approx(-0.25) and low <= delta <= high  # (1 + 0)/2 - (0.5 + 1)/2
    assert "ccc_better" not in with_recompute.notes


def test_compare_runs_baseline_choice(stored_runs: Path) -> None:
    rows = compare_runs(stored_runs, baseline="ccc_better", n_resamples=50)
    assert _row(rows, "zeroshot", "top1").deltas["aaa_base"][0] < 0
    with pytest.raises(ValueError, match="no results"):
        compare_runs(stored_runs, baseline="missing")
    assert compare_runs(stored_runs / "empty") == []


def test_comparison_outputs(stored_runs: Path, tmp_path: Path) -> None:
    rows = compare_runs(stored_runs, n_resamples=N_RESAMPLES)
    text = format_comparison(rows)
    assert "aaa_base (baseline)" in text and "zeroshot/top1 ↑" in text
    assert " *" in text and "(no CI)" in text and "not like for like" in text
    paths = write_comparison(rows, tmp_path / "out")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = list(csv.DictReader(paths["csv"].open()))
    better = next(r for r in table if r["task"] == "zeroshot" and r["checkpoint"] == "ccc_better")
    assert better["significant"] == "True" and float(better["ci_low"]) > 0 and better["n_paired"] == "150"
    old = next(r for r in table if r["task"] == "zeroshot" and r["checkpoint"] == "ddd_old")
    assert old["ci_low"] == "" and "no per-sample records" in old["note"]
    markdown = paths["md"].read_text()
    assert markdown.startswith("# Checkpoint comparison") and "| zeroshot/top1 ↑ |" in markdown
    empty = write_comparison([], tmp_path / "empty")
    assert "Nothing to compare" in empty["md"].read_text()
