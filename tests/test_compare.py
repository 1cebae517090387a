"""Checkpoint comparison: paired bootstrap and stored-run comparisons."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import store_result

from coca_bench.compare import MetricComparison, compare_runs, format_comparison, paired_bootstrap, write_comparison
from coca_bench.params import Param
from coca_bench.registry import MetricSpec, TaskResult, TaskSpec
from coca_bench.settings import RunSettings

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
    delta, low, high = paired_bootstrap(
        samples, [dict(s) for s in samples], mean_metrics=["top1"], n_resamples=N_RESAMPLES
    )["top1"]
    assert delta == 0.0
    assert low <= 0.0 <= high


def test_clearly_better_run_has_an_interval_excluding_zero() -> None:
    rng = random.Random(2)
    worse = hits([int(rng.random() < 0.5) for _ in range(200)])
    better = hits([int(rng.random() < 0.9) for _ in range(200)])
    delta, low, high = paired_bootstrap(worse, better, mean_metrics=["top1"], n_resamples=N_RESAMPLES)["top1"]
    assert low > 0.0 and delta > 0.25
    assert low <= delta <= high
    mirrored = paired_bootstrap(better, worse, mean_metrics=["top1"], n_resamples=N_RESAMPLES)["top1"]
    assert mirrored[2] < 0.0


def test_delta_matches_a_hand_computed_case_and_a_single_pair_has_a_point_interval() -> None:
    a = hits([1, 0, 1, 0])  # mean 0.5
    b = hits([1, 1, 1, 0])  # mean 0.75
    delta, low, high = paired_bootstrap(a, b, mean_metrics=["top1"], n_resamples=N_RESAMPLES)["top1"]
    assert delta == pytest.approx(0.25)
    # per-pair differences are (0, 1, 0, 0): a resampled mean lies in [0, 1] and is 0 with prob. 0.75**4
    assert 0.0 <= low <= delta <= high <= 1.0
    assert paired_bootstrap(hits([0]), hits([1]), mean_metrics=["top1"], n_resamples=20)["top1"] == (1.0, 1.0, 1.0)


def test_custom_recompute_scores_mean_per_class_recall_not_the_plain_mean() -> None:
    labels = [0] * 8 + [1] * 2
    a = [
        {"id": i, "label": lab, "correct": c} for i, (lab, c) in enumerate(zip(labels, [1, 1, 1, 1, 0, 0, 0, 0, 1, 1]))
    ]
    b = [{"id": i, "label": lab, "correct": c} for i, (lab, c) in enumerate(zip(labels, [1] * 8 + [0, 0]))]
    # a: (4/8 + 2/2) / 2 = 0.75; b: (8/8 + 0/2) / 2 = 0.5 -- while plain accuracy goes 0.6 -> 0.8
    result = paired_bootstrap(a, b, recompute=mean_per_class_recall, n_resamples=N_RESAMPLES)
    delta, low, high = result["mean_per_class_recall"]
    assert delta == pytest.approx(-0.25)
    assert low <= delta <= high
    assert paired_bootstrap(a, b, mean_metrics=["correct"], n_resamples=N_RESAMPLES)["correct"][0] == pytest.approx(0.2)


def test_vectorised_mean_and_custom_recompute_agree_on_the_same_resamples() -> None:
    rng = random.Random(3)
    a = hits([rng.randint(0, 1) for _ in range(60)])
    b = hits([rng.randint(0, 1) for _ in range(60)])
    fast = paired_bootstrap(a, b, mean_metrics=["top1"], n_resamples=N_RESAMPLES, seed=7)["top1"]
    slow = paired_bootstrap(a, b, recompute=plain_mean, n_resamples=N_RESAMPLES, seed=7)["top1"]
    assert fast == pytest.approx(slow)


def test_pairing_uses_ids_not_file_order_and_ignores_unpaired_records() -> None:
    rng = random.Random(4)
    a = hits([rng.randint(0, 1) for _ in range(50)])
    b = hits([rng.randint(0, 1) for _ in range(50)])
    expected = paired_bootstrap(a, b, mean_metrics=["top1"], n_resamples=N_RESAMPLES)
    shuffled_a, shuffled_b = a[:], b[:] + [{"id": "only_in_b", "top1": 0}]
    rng.shuffle(shuffled_a)
    rng.shuffle(shuffled_b)
    assert paired_bootstrap(shuffled_a, shuffled_b, mean_metrics=["top1"], n_resamples=N_RESAMPLES) == expected
    # pairing by position would mix up samples; reversing one side changes a position-paired delta only
    flipped = paired_bootstrap(hits([1, 0]), list(reversed(hits([1, 0]))), mean_metrics=["top1"], n_resamples=50)[
        "top1"
    ]
    assert flipped == (0.0, 0.0, 0.0)


def test_pairing_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="share no sample ids"):
        paired_bootstrap(hits([1], prefix="x"), hits([1], prefix="y"), mean_metrics=["top1"])
    with pytest.raises(ValueError, match="appears twice"):
        paired_bootstrap(hits([1]) + hits([0]), hits([1]), mean_metrics=["top1"])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(hits([1]), hits([1]), mean_metrics=["top1"], confidence=95)


def test_null_fields_are_left_out_of_the_mean() -> None:
    a = [{"id": 1, "acc": 1.0}, {"id": 2, "acc": None}, {"id": 3, "acc": 0.0}]
    b = [{"id": 1, "acc": 1.0}, {"id": 2, "acc": 1.0}, {"id": 3, "acc": 1.0}]
    assert paired_bootstrap(a, b, mean_metrics=["acc"], n_resamples=50)["acc"][0] == pytest.approx(0.5)


def test_only_declared_metrics_get_intervals_never_other_fields() -> None:
    """Zero-shot records carry class indices (label, pred): they are not metrics and never get an interval."""
    a = [{"id": i, "label": i % 3, "pred": (i * 7) % 3, "acc1": int(i % 2 == 0)} for i in range(30)]
    b = [{"id": i, "label": i % 3, "pred": (i * 5) % 3, "acc1": 1} for i in range(30)]
    assert set(paired_bootstrap(a, b, mean_metrics=["acc1"], n_resamples=50)) == {"acc1"}
    with pytest.raises(ValueError, match="needs the metrics"):
        paired_bootstrap(a, b)


# --------------------------------------------------------------------------- compare_runs and outputs


def spec(name: str, metrics=("top1",), aggregate=None, aggregation="mean") -> TaskSpec:
    return TaskSpec(
        name=name,
        run=lambda ctx, params: TaskResult(),
        groups=("test",),
        dataset="toyset",
        metrics=tuple(MetricSpec(m, aggregation=aggregation) for m in metrics),
        param_specs={"size": Param(None)},
        aggregate=aggregate,
        source="tests/test_compare.py",
    )


def store(output: Path, ckpt_name: str, task: TaskSpec, samples: list[dict], *, params=None, keep_samples=True) -> None:
    store_result(output, ckpt_name, task, samples, params=params)
    if not keep_samples:
        (output / ckpt_name / f"{task.name}.samples.jsonl").unlink()


BALANCED = spec("balanced", ("mean_per_class_recall",), mean_per_class_recall, aggregation="task")


@pytest.fixture()
def stored_runs(tmp_path: Path) -> Path:
    rng = random.Random(5)
    base_flags = [int(rng.random() < 0.5) for _ in range(150)]
    zeroshot = spec("zeroshot")
    store(tmp_path, "aaa_base", zeroshot, hits(base_flags))
    store(tmp_path, "bbb_same", zeroshot, hits(base_flags))
    store(tmp_path, "ccc_better", zeroshot, hits([1] * 150))
    store(tmp_path, "ddd_old", zeroshot, hits(base_flags), keep_samples=False)
    store(tmp_path, "eee_other_params", zeroshot, hits(base_flags), params={"size": 150})
    labels = [0] * 8 + [1] * 2
    store(
        tmp_path,
        "aaa_base",
        BALANCED,
        [{"id": i, "label": lab, "correct": int(i < 4 or i >= 8)} for i, lab in enumerate(labels)],
    )
    store(
        tmp_path,
        "ccc_better",
        BALANCED,
        [{"id": i, "label": lab, "correct": int(i < 8)} for i, lab in enumerate(labels)],
    )
    store(tmp_path, "fff_alone", spec("only_one_checkpoint"), hits([1, 0]))
    return tmp_path


def _row(rows: list[MetricComparison], task: str, metric: str) -> MetricComparison:
    return next(r for r in rows if r.task == task and r.metric == metric)


def test_compare_runs_reports_deltas_cis_and_missing_samples(stored_runs: Path) -> None:
    rows = compare_runs(stored_runs, n_resamples=N_RESAMPLES)
    assert {(r.task, r.metric) for r in rows} == {("zeroshot", "top1"), ("balanced", "mean_per_class_recall")}
    top1 = _row(rows, "zeroshot", "top1")
    assert top1.baseline == "aaa_base"
    assert set(top1.cells) == {"bbb_same", "ccc_better", "ddd_old", "eee_other_params"}
    assert top1.cells["bbb_same"].delta == 0.0 and not top1.cells["bbb_same"].significant
    assert top1.cells["ccc_better"].significant and top1.is_better("ccc_better")
    assert top1.cells["ccc_better"].ci_low > 0
    old = top1.cells["ddd_old"]
    assert old.delta == 0.0 and math.isnan(old.ci_low) and "no per-sample records" in old.note
    other = top1.cells["eee_other_params"].note
    assert "not like for like" in other and "config.params.size" in other
    assert top1.cells["bbb_same"].note == ""


def test_aggregate_metrics_need_the_registered_task_for_an_interval(stored_runs: Path) -> None:
    without = _row(compare_runs(stored_runs, n_resamples=N_RESAMPLES), "balanced", "mean_per_class_recall")
    assert math.isnan(without.cells["ccc_better"].ci_low) and "not registered here" in without.cells["ccc_better"].note
    rows = compare_runs(stored_runs, specs={"balanced": BALANCED}, n_resamples=N_RESAMPLES)
    cell = _row(rows, "balanced", "mean_per_class_recall").cells["ccc_better"]
    assert cell.delta == pytest.approx(-0.25) and cell.ci_low <= cell.delta <= cell.ci_high  # (1 + 0)/2 - (0.5 + 1)/2
    assert cell.note == ""


def test_a_cell_shows_value_delta_and_interval_on_one_sample_set(tmp_path: Path) -> None:
    """Run b skipped two samples that run a got wrong: on all 10, a scores 0.6; on the 8 both scored, 0.75."""
    zeroshot = spec("zeroshot")
    a_flags = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    store(tmp_path, "a", zeroshot, hits(a_flags))
    store(tmp_path, "b", zeroshot, [s for s in hits([1] * 10) if s["id"] not in ("s8", "s9")])
    row = _row(compare_runs(tmp_path, n_resamples=200), "zeroshot", "top1")
    cell = row.cells["b"]
    assert row.baseline_value == pytest.approx(0.6)  # the baseline's own full-set result
    assert (cell.n_paired, cell.n_total) == (8, 10) and cell.on_subset
    assert cell.baseline_value == pytest.approx(0.75) and cell.value == pytest.approx(1.0)
    assert cell.delta == pytest.approx(cell.value - cell.baseline_value)
    assert "8 of 10 samples" in cell.note
    assert "baseline there: 0.7500" in format_comparison([row])


def test_not_like_for_like_when_strict_or_limit_differ(tmp_path: Path) -> None:
    zeroshot = spec("zeroshot")
    store_result(tmp_path, "a", zeroshot, hits([1, 0, 1]))
    store_result(tmp_path, "b", zeroshot, hits([1, 1, 1]), settings=RunSettings(device="cpu", strict=True))
    note = _row(compare_runs(tmp_path, n_resamples=50), "zeroshot", "top1").cells["b"].note
    assert "run.settings.strict" in note


def test_compare_runs_baseline_choice(stored_runs: Path) -> None:
    rows = compare_runs(stored_runs, baseline="ccc_better", n_resamples=50)
    assert _row(rows, "zeroshot", "top1").cells["aaa_base"].delta < 0
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


def test_a_task_metric_the_aggregate_cannot_recompute_says_so(tmp_path: Path) -> None:
    """METEOR needs Java: the captioning aggregate recomputes CIDEr on resamples but not METEOR."""

    def cider_only(samples, params):
        return {"cider": sum(s["c"] for s in samples) / len(samples)}

    task = spec("captioning", ("cider", "meteor"), cider_only, aggregation="task")
    for name, values in (("a", [0.1, 0.2, 0.3]), ("b", [0.4, 0.5, 0.6])):
        samples = [{"id": i, "c": v} for i, v in enumerate(values)]
        store_result(tmp_path, name, task, samples)
    # the stored records carry a METEOR the task computed itself
    for name in ("a", "b"):
        path = tmp_path / name / "captioning.json"
        record = json.loads(path.read_text())
        record["metrics"]["meteor"] = 0.2 if name == "a" else 0.25
        path.write_text(json.dumps(record))
    rows = compare_runs(tmp_path, specs={"captioning": task}, n_resamples=50)
    meteor = _row(rows, "captioning", "meteor").cells["b"]
    assert math.isnan(meteor.ci_low) and "does not recompute meteor" in meteor.note
    assert not math.isnan(_row(rows, "captioning", "cider").cells["b"].ci_low)


# --------------------------------------------------------------------------- provenance: code and library versions


def edit_record(output: Path, ckpt_name: str, task: str, edit) -> None:
    """Rewrite a stored record in place, as a run with other code or libraries would have written it."""
    path = output / ckpt_name / f"{task}.json"
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))


def provenance(code: str, **versions: str | None):
    """An edit giving a record this code fingerprint and these library versions (the rest as stored)."""

    def edit(record: dict) -> None:
        record["run"]["code_fingerprint"] = code
        record["versions"] = {**record["versions"], **versions}

    return edit


@pytest.fixture()
def two_runs(tmp_path: Path) -> Path:
    """Baseline ``a`` and ``b`` on the same task, settings and samples; a test then changes their provenance."""
    zeroshot = spec("zeroshot")
    store_result(tmp_path, "a", zeroshot, hits([1, 0, 1, 0, 1, 0]))
    store_result(tmp_path, "b", zeroshot, hits([1, 1, 1, 0, 1, 1]))
    return tmp_path


def _top1_cell(output: Path):
    return _row(compare_runs(output, n_resamples=50), "zeroshot", "top1").cells["b"]


def test_a_code_change_is_still_compared_and_the_note_names_both_fingerprints(two_runs: Path) -> None:
    edit_record(two_runs, "a", "zeroshot", provenance("a" * 64, torch="2.13.0"))
    edit_record(two_runs, "b", "zeroshot", provenance("b" * 64, torch="2.13.0"))
    rows = compare_runs(two_runs, n_resamples=50)
    cell = _row(rows, "zeroshot", "top1").cells["b"]
    assert cell.delta == pytest.approx(2 / 6) and not math.isnan(cell.ci_low)  # still paired, with an interval
    assert cell.note.startswith("not like for like")
    assert "suite code differs (code fingerprint aaaaaaaaaaaa → bbbbbbbbbbbb)" in cell.note
    assert "torch" not in cell.note  # the versions agree, so only the code can explain the new fingerprint
    assert "suite code differs" in format_comparison(rows)
    paths = write_comparison(rows, two_runs / "out")
    assert "suite code differs" in next(iter(csv.DictReader(paths["csv"].open())))["note"]
    assert "suite code differs" in paths["md"].read_text()


def test_a_library_version_change_names_the_library_and_both_versions(two_runs: Path) -> None:
    edit_record(two_runs, "a", "zeroshot", provenance("c" * 64, torch="2.13.0", numpy="2.0.0"))
    edit_record(two_runs, "b", "zeroshot", provenance("c" * 64, torch="2.14.1", numpy="2.0.0"))
    cell = _top1_cell(two_runs)
    assert not math.isnan(cell.ci_low)
    assert cell.note == "not like for like: torch 2.13.0 → 2.14.1"  # the baseline's → this run's


def test_a_version_change_with_its_new_fingerprint_does_not_claim_the_code_changed(two_runs: Path) -> None:
    """The code fingerprint covers the versions too: with both changed, the code may or may not have."""
    edit_record(two_runs, "a", "zeroshot", provenance("a" * 64, torch="2.13.0", av=None))
    edit_record(two_runs, "b", "zeroshot", provenance("b" * 64, torch="2.14.1", av="12.0.0"))
    note = _top1_cell(two_runs).note
    assert "torch 2.13.0 → 2.14.1" in note and "av not installed → 12.0.0" in note
    assert "suite code differs" not in note
    assert "code fingerprint aaaaaaaaaaaa → bbbbbbbbbbbb" in note


def test_identical_provenance_gives_no_note_whatever_the_timing_argv_or_git_commit(two_runs: Path) -> None:
    same = provenance("d" * 64, torch="2.13.0")

    def incidental(started: str, argv: list[str], commit: str):
        def edit(record: dict) -> None:
            same(record)
            record["run"].update(started_at=started, finished_at=started, wall_time_s=len(argv) + 0.5, argv=argv)
            record["git_commit"] = commit  # a commit that touched only docs: same code fingerprint

        return edit

    edit_record(two_runs, "a", "zeroshot", incidental("2025-01-01T00:00:00Z", [], "1" * 40))
    edit_record(two_runs, "b", "zeroshot", incidental("2025-02-01T00:00:00Z", ["--limit", "9"], "2" * 40 + "-dirty"))
    assert _top1_cell(two_runs).note == ""


# --------------------------------------------------------------------------- the intervals, held for a seed

COLOURS, SHAPES = ("red", "blue", "green", "yellow"), ("square", "circle", "triangle")
PLACES = ("top", "bottom", "left", "right", "middle")
PLUGIN_BALANCED = spec("plugin_balanced", ("mean_per_class_recall",), mean_per_class_recall, aggregation="task")


def caption_records(rng: random.Random, n: int, quality: float, domains: bool = False) -> list[dict]:
    """Captioning records as the task writes them (tokenized text, BLEU statistics, ROUGE-L, per-image CIDEr)."""
    from pycocoevalcap.rouge.rouge import Rouge

    from coca_bench.metrics.captioning import bleu_statistics, cider_d

    samples = []
    for i in range(n):
        c, s, p = COLOURS[i % 4], SHAPES[i % 3], PLACES[i % 5]
        refs = [f"a {c} {s} at the {p}", f"one {c} {s} near the {p} of the image", f"the {p} has a {c} {s}",
                f"a {s} that is {c}", f"there is a {c} {s} in the {p}"]  # fmt: skip
        if rng.random() < quality:
            pred = f"there is one {c} {s} at the {p} of the picture" if rng.random() < 0.5 else f"a {c} {s} at the {p}"
        else:
            pred = f"a {rng.choice(COLOURS)} on a {rng.choice(COLOURS)} on the top"
        samples.append({"id": f"img{i}", "caption": pred, "caption_tokens": pred, "reference_tokens": refs,
                        "bleu_statistics": bleu_statistics(pred, refs), "ROUGE_L": Rouge().calc_score([pred], refs)})  # fmt: skip
        if domains:
            samples[-1]["domain"] = ("in-domain", "near-domain", "out-domain")[i % 3]
    per_image = cider_d([s["caption_tokens"] for s in samples], [s["reference_tokens"] for s in samples])[1]
    return [{**sample, "CIDEr": cider} for sample, cider in zip(samples, per_image)]


def store_frozen_runs(output: Path) -> dict[str, TaskSpec]:
    """Two checkpoints on the built-in tasks' record formats (and a plugin aggregate), from seeded generators."""
    from coca_bench.runner import load_task_registry

    specs = {**load_task_registry(), PLUGIN_BALANCED.name: PLUGIN_BALANCED}
    for ckpt, quality in (("early", 0.3), ("late", 0.85)):
        rng = random.Random(11 if ckpt == "early" else 12)
        cls = []
        for i in range(40):
            correct = rng.random() < quality
            pred = i % 8 if correct else (i % 8 + 1 + rng.randrange(7)) % 8
            cls.append({"id": f"c{i}", "label": i % 8, "pred": pred, "acc1": int(correct),
                        "acc5": int(correct or rng.random() < 0.5)})  # fmt: skip
        store_result(output, ckpt, specs["imagenet_zeroshot"], cls)
        retrieval = []
        for i in range(12):
            good = rng.random() < quality
            retrieval.append({"id": f"r{i}", "i2t_rank": 1 if good else rng.randint(1, 60),
                              "t2i_ranks": [1 if good and rng.random() < 0.8 else rng.randint(1, 12) for _ in range(5)],
                              "top5_texts": [0, 1, 2, 3, 4]})  # fmt: skip
        store_result(output, ckpt, specs["coco_retrieval"], retrieval)
        store_result(output, ckpt, specs["coco_captioning"], caption_records(rng, 15, quality))
        store_result(output, ckpt, specs["nocaps_captioning"], caption_records(rng, 12, quality, domains=True))
        vqa = [{"id": f"q{i}", "accuracy": rng.choice((0.0, 0.3, 0.6, 1.0)) if rng.random() > quality else 1.0,
                "answer_type": ("yes/no", "number", "other")[i % 3]} for i in range(30)]  # fmt: skip
        store_result(output, ckpt, specs["vqav2"], vqa[:-2] if ckpt == "late" else vqa)  # late skipped two
        videos = [{"id": f"v{i}", "v2t_rank": rng.randint(1, 4) if rng.random() < quality else rng.randint(1, 20),
                   "t2v_ranks": [rng.randint(1, 10)]} for i in range(10)]  # fmt: skip
        store_result(output, ckpt, specs["msrvtt_retrieval"], videos)
        plugin = [{"id": f"p{i}", "label": s["label"] % 3, "correct": s["acc1"]} for i, s in enumerate(cls)]
        store_result(output, ckpt, PLUGIN_BALANCED, plugin)
    return specs


# (task, metric): (value, baseline value, delta, ci low, ci high) of "late" against "early", 200 resamples, seed 3:
# the numbers of the per-resample implementation this suite had before the vectorised bootstrap.
FROZEN_INTERVALS = {
    ("coco_captioning", "Bleu_1"): (
        0.7304347826023441,
        0.4285714285678271,
        0.301863354034517,
        0.10355762232123407,
        0.5140897371296461,
    ),
    ("coco_captioning", "Bleu_2"): (
        0.6675067171070073,
        0.3078639631046673,
        0.35964275400233997,
        0.12279977597473911,
        0.6143614286572245,
    ),
    ("coco_captioning", "Bleu_3"): (
        0.6224197940844138,
        0.24612283758174722,
        0.3762969565026666,
        0.11798093924334617,
        0.6458523538413073,
    ),
    ("coco_captioning", "Bleu_4"): (
        0.5669807973463148,
        0.20635577744275324,
        0.36062501990356155,
        0.09946744863928281,
        0.6260064134906828,
    ),
    ("coco_captioning", "ROUGE_L"): (
        0.7318787580044938,
        0.46612838942030144,
        0.26575036858419265,
        0.05693480889131669,
        0.454868977756166,
    ),
    ("coco_captioning", "CIDEr"): (
        3.028033893495598,
        1.0442219224490654,
        1.9838119710465332,
        0.19657480453168458,
        3.4067748548237433,
    ),
    ("coco_retrieval", "i2t_recall@1"): (
        0.9166666666666666,
        0.6666666666666666,
        0.25,
        0.08125000000000027,
        0.5020833333333338,
    ),
    ("coco_retrieval", "i2t_recall@5"): (
        0.9166666666666666,
        0.6666666666666666,
        0.25,
        0.08125000000000027,
        0.5020833333333338,
    ),
    ("coco_retrieval", "i2t_recall@10"): (
        0.9166666666666666,
        0.6666666666666666,
        0.25,
        0.08125000000000027,
        0.5020833333333338,
    ),
    ("coco_retrieval", "t2i_recall@1"): (
        0.8,
        0.5666666666666667,
        0.2333333333333334,
        0.016666666666666715,
        0.49999999999999994,
    ),
    ("coco_retrieval", "t2i_recall@5"): (0.85, 0.8, 0.04999999999999993, -0.11666666666666659, 0.21666666666666667),
    ("coco_retrieval", "t2i_recall@10"): (
        0.9166666666666666,
        0.9666666666666667,
        -0.050000000000000044,
        -0.15000000000000002,
        0.04999999999999993,
    ),
    ("coco_retrieval", "i2t_median_rank"): (1.0, 1.0, 0.0, -22.04999999999999, 0.0),
    ("coco_retrieval", "i2t_mean_rank"): (
        2.9166666666666665,
        10.583333333333334,
        -7.666666666666668,
        -17.022916666666664,
        -1.0624999999999953,
    ),
    ("coco_retrieval", "t2i_median_rank"): (1.0, 1.0, 0.0, -2.0, 0.0),
    ("coco_retrieval", "t2i_mean_rank"): (
        2.5166666666666666,
        3.1166666666666667,
        -0.6000000000000001,
        -2.0024999999999995,
        0.6837500000000003,
    ),
    ("imagenet_zeroshot", "acc1"): (0.925, 0.4, 0.525, 0.35, 0.7),
    ("imagenet_zeroshot", "acc5"): (0.95, 0.675, 0.2749999999999999, 0.1243750000000001, 0.4506250000000001),
    ("imagenet_zeroshot", "mean_per_class_recall"): (0.925, 0.4, 0.525, 0.367373511904762, 0.7000453514739229),
    ("msrvtt_retrieval", "t2v_recall@1"): (0.0, 0.1, -0.1, -0.3, 0.0),
    ("msrvtt_retrieval", "t2v_recall@5"): (0.4, 0.6, -0.19999999999999996, -0.6000000000000001, 0.20250000000000062),
    ("msrvtt_retrieval", "t2v_recall@10"): (1.0, 1.0, 0.0, 0.0, 0.0),
    ("msrvtt_retrieval", "v2t_recall@1"): (0.1, 0.1, 0.0, -0.3, 0.3),
    ("msrvtt_retrieval", "v2t_recall@5"): (1.0, 0.3, 0.7, 0.4, 1.0),
    ("msrvtt_retrieval", "v2t_recall@10"): (1.0, 0.6, 0.4, 0.09999999999999998, 0.7),
    ("msrvtt_retrieval", "t2v_median_rank"): (6.0, 3.5, 2.5, -1.512499999999998, 4.5),
    ("msrvtt_retrieval", "t2v_mean_rank"): (5.9, 4.3, 1.6000000000000005, -0.6025000000000001, 3.4025000000000007),
    ("msrvtt_retrieval", "v2t_median_rank"): (3.5, 7.5, -4.0, -11.512499999999998, 0.0),
    ("msrvtt_retrieval", "v2t_mean_rank"): (3.2, 9.2, -5.999999999999999, -9.8025, -2.6974999999999993),
    ("nocaps_captioning", "Bleu_1"): (
        0.9484536082376448,
        0.4666666666562963,
        0.4817869415813485,
        0.3244948845310272,
        0.6048775873532778,
    ),
    ("nocaps_captioning", "Bleu_2"): (
        0.9148064444395199,
        0.3544587784711035,
        0.5603476659684163,
        0.37288464101302327,
        0.7230373193533663,
    ),
    ("nocaps_captioning", "Bleu_3"): (
        0.8728129636037432,
        0.2837415441145374,
        0.5890714194892057,
        0.3747195646847671,
        0.8561033167285124,
    ),
    ("nocaps_captioning", "Bleu_4"): (
        0.7914692701865109,
        0.2484015967892423,
        0.5430676733972686,
        0.35237140833643155,
        0.7648646524712611,
    ),
    ("nocaps_captioning", "ROUGE_L"): (
        0.891467497979448,
        0.5432692307692307,
        0.3481982672102173,
        0.18996039662767672,
        0.4882641668998073,
    ),
    ("nocaps_captioning", "CIDEr"): (
        4.2227824666172085,
        1.5571074998358945,
        2.6656749667813138,
        1.4291771535259434,
        3.737145873512371,
    ),
    ("nocaps_captioning", "CIDEr_in"): (
        4.649554724024108,
        3.253158693848862,
        1.3963960301752465,
        0.0,
        3.548448089208723,
    ),
    ("nocaps_captioning", "CIDEr_near"): (
        4.094581988070438,
        0.4396942726127274,
        3.6548877154577104,
        0.0,
        4.956397884624796,
    ),
    ("nocaps_captioning", "CIDEr_out"): (
        4.094581988070438,
        1.4941463915799325,
        2.600435596490505,
        0.0,
        4.106883673090353,
    ),
    ("plugin_balanced", "mean_per_class_recall"): (
        0.9333333333333332,
        0.4222222222222222,
        0.5111111111111111,
        0.3446626984126984,
        0.6804779158040029,
    ),
    ("vqav2", "accuracy"): (
        0.8750000000000001,
        0.6500000000000001,
        0.22499999999999998,
        0.08928571428571441,
        0.4072321428571429,
    ),
    ("vqav2", "accuracy_yes/no"): (0.86, 0.65, 0.20999999999999996, -0.04489583333333332, 0.4857936507936508),
    ("vqav2", "accuracy_number"): (
        0.8777777777777778,
        0.7222222222222222,
        0.15555555555555556,
        -0.14007142857142857,
        0.4858214285714286,
    ),
    ("vqav2", "accuracy_other"): (
        0.8888888888888888,
        0.5777777777777778,
        0.311111111111111,
        -0.028968253968253914,
        0.75,
    ),
}


def test_intervals_for_a_seed_are_those_of_the_reference_implementation(tmp_path: Path) -> None:
    specs = store_frozen_runs(tmp_path)
    rows = compare_runs(tmp_path, baseline="early", specs=specs, n_resamples=200, seed=3)
    got = {(r.task, r.metric): r.cells["late"] for r in rows}
    assert set(got) == set(FROZEN_INTERVALS)
    for key, expected in FROZEN_INTERVALS.items():
        cell = got[key]
        assert (cell.value, cell.baseline_value, cell.delta, cell.ci_low, cell.ci_high) == pytest.approx(
            expected, abs=1e-12, rel=0
        ), key


# --------------------------------------------------------------------------- vectorised task aggregates


def _resample_counts(n: int, rows: int, seed: int) -> tuple[list[list[int]], np.ndarray]:
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, size=n).tolist() for _ in range(rows)] + [[0] * n, [n - 1] * (n - 1) + [0]]
    return draws, np.stack([np.bincount(d, minlength=n) for d in draws]).astype(float)


@pytest.mark.parametrize(
    ("target", "options", "records"),
    [
        (
            "classification",
            {},
            [
                {
                    "id": i,
                    "label": 10 + i % 7,
                    "pred": 10 + (i * 3) % 7,
                    "acc1": int(i % 3 == 0),
                    "acc5": int(i % 2 == 0),
                }
                for i in range(29)
            ],
        ),  # fmt: skip
        (
            "classification",
            {},
            [{"id": i, "label": i % 3, "pred": i % 2, "acc1": int(i % 3 == i % 2)} for i in range(9)],
        ),
        (
            "retrieval",
            {},
            [
                {"id": i, "i2t_rank": 1 + (i * 7) % 11, "t2i_ranks": [1 + (i + j) % 9 for j in range((i + 1) % 4)]}
                for i in range(16)
            ],
        ),  # fmt: skip
        (
            "retrieval",
            {"names": ("v2t", "t2v"), "rank_fields": ("v2t_rank", "t2v_ranks"), "ks": (1, 3)},
            [{"id": i, "v2t_rank": 1 + i % 5, "t2v_ranks": [1 + (i * 5) % 8]} for i in range(10)],
        ),  # fmt: skip
        (
            "vqa",
            {},
            [
                {"id": i, "accuracy": (i % 4) / 3, "answer_type": ("yes/no", "number", "other")[i % 5 % 3]}
                for i in range(20)
            ],
        ),  # fmt: skip
    ],
)
def test_each_resampler_equals_its_aggregate_on_every_resample(target, options, records) -> None:
    """The vectorised forms give the per-resample aggregate's numbers: absent classes and answer types, a missing
    acc5, images without texts, odd and even median counts."""
    import importlib

    module = importlib.import_module(f"coca_bench.metrics.{target}")
    aggregate, resampler = getattr(module, f"{target}_metrics_from_samples"), getattr(module, f"{target}_resampler")
    draws, counts = _resample_counts(len(records), 40, seed=len(records))
    got = resampler(records, **options)(counts)
    for r, draw in enumerate(draws):
        expected = aggregate([records[i] for i in draw], **options)
        assert {k: got[k][r] for k in expected} == pytest.approx(expected, abs=1e-12, nan_ok=True), (r, draw)


def test_built_in_aggregates_declare_their_resamplers() -> None:
    from coca_bench.metrics.resampling import resampler_of
    from coca_bench.runner import load_task_registry

    specs = load_task_registry()
    with_task_metrics = [name for name, s in specs.items() if any(m.aggregation == "task" for m in s.metrics)]
    assert with_task_metrics and all(resampler_of(specs[name].aggregate) for name in with_task_metrics)
    assert resampler_of(mean_per_class_recall) is None  # a plugin without one keeps the per-resample path


# --------------------------------------------------------------------------- the chart, and metrics with no value


def test_a_metric_undefined_for_every_checkpoint_is_left_out_of_the_comparison(tmp_path: Path) -> None:
    """acc5 with 3 classes is undefined for both runs: no row of ``nan`` and ``+nan (no CI)``, one line naming it."""
    task = spec("zeroshot", ("acc1", "acc5"))
    store(tmp_path, "a", task, [{"id": i, "acc1": i % 2, "acc5": None} for i in range(6)])
    store(tmp_path, "b", task, [{"id": i, "acc1": 1, "acc5": None} for i in range(6)])
    rows = compare_runs(tmp_path, n_resamples=50)
    paths = write_comparison(rows, tmp_path / "out")
    assert [line["metric"] for line in csv.DictReader(paths["csv"].open())] == ["acc1"]
    for shown in (paths["md"].read_text(), format_comparison(rows)):
        assert "zeroshot/acc1 ↑" in shown and "nan" not in shown
        assert "Left out, undefined for every checkpoint: zeroshot/acc5." in shown


def test_the_chart_has_one_panel_per_task_on_its_own_scale_with_lower_is_better_flipped() -> None:
    from matplotlib.colors import to_rgba
    from matplotlib.container import BarContainer

    from coca_bench.compare import ComparisonCell, comparison_figure
    from coca_bench.compare.render import checkpoint_colours

    def row(task: str, metric: str, deltas: dict[str, float], up: bool = True, base: float = 0.5) -> MetricComparison:
        cells = {c: ComparisonCell(base + d, base, d, d - 0.05, d + 0.05) for c, d in deltas.items()}
        return MetricComparison(task, metric, up, "base", base, cells)

    rows = [
        row("zeroshot", "acc1", {"b": 0.2, "c": -0.1}),
        row("zeroshot", "error", {"b": 0.1, "c": -0.1}, up=False),  # b is worse, c better
        row("retrieval", "recall@1", {"b": 0.05, "c": 0.02}),  # c: the interval holds 0
        row("retrieval", "mean_rank", {"b": -12.0, "c": 3.0}, up=False, base=30.0),
    ]
    figure = comparison_figure(rows)
    titled = [axes for axes in figure.axes if axes.get_title(loc="left")]
    assert [axes.get_title(loc="left") for axes in titled] == ["zeroshot", "retrieval"]  # in row order
    # one axes per task, but a rank delta of 12 would flatten recall deltas of 0.05: the ranks get their own axes
    assert len(figure.axes) == 3 and figure.axes[2].get_title(loc="left") == ""
    bars = {
        container.get_label(): (index, container.patches[0])
        for index, axes in enumerate(figure.axes)
        for container in axes.containers
        if isinstance(container, BarContainer)
    }
    width = {label: patch.get_width() for label, (_, patch) in bars.items()}
    assert width["acc1 b"] == pytest.approx(0.2) and width["error b"] == pytest.approx(-0.1)  # worse points left
    assert width["error c"] == pytest.approx(0.1) and width["mean_rank b"] == pytest.approx(12.0)  # better, right
    assert bars["recall@1 b"][0] == 1 and bars["mean_rank b"][0] == 2
    assert figure.axes[1].get_xlim()[1] < 1.0 < 12.0 < figure.axes[2].get_xlim()[1]  # each on its own scale
    labels = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    assert labels == ["acc1 ↑", "error ↓ flipped"]  # the headline metric on top
    assert figure.axes[0].get_yticklabels()[0].get_fontweight() == "bold"
    # one colour per checkpoint in every panel; solid where significant, hollow where the interval holds 0
    colours = {c: to_rgba(colour) for c, colour in checkpoint_colours(["b", "c"]).items()}
    for label, (_, patch) in bars.items():
        assert patch.get_edgecolor() == pytest.approx(colours[label.split()[-1]])
    assert bars["acc1 b"][1].get_facecolor() == pytest.approx(colours["b"])
    assert bars["recall@1 c"][1].get_facecolor() == pytest.approx(to_rgba("white"))


# --------------------------------------------------------------------------- the comparison cache


def _same_rows(left: list[MetricComparison], right: list[MetricComparison]) -> bool:
    """Equal, NaN equal to NaN (JSON stores it as null)."""
    import dataclasses

    return json.dumps([dataclasses.asdict(r) for r in left]) == json.dumps([dataclasses.asdict(r) for r in right])


def test_an_unchanged_comparison_is_read_from_the_cache_and_any_change_recomputes_it(
    stored_runs: Path, monkeypatch
) -> None:
    from coca_bench.compare import cache

    specs = {"balanced": BALANCED}
    first = compare_runs(stored_runs, cache=True, specs=specs, n_resamples=50)
    assert _same_rows(first, compare_runs(stored_runs, specs=specs, n_resamples=50))  # what it stored
    assert len(list((stored_runs / cache.CACHE_FOLDER).glob("*.json"))) == 1
    assert {
        r["checkpoint"]["name"] for r in __import__("coca_bench.results").results.ResultStore(stored_runs).records()
    }

    computed: list[int] = []
    real = cache.cached_comparison
    monkeypatch.setattr(
        cache, "cached_comparison", lambda compute, *a: real(lambda: computed.append(1) or compute(), *a)
    )
    again = compare_runs(stored_runs, cache=True, specs=specs, n_resamples=50)
    assert computed == [] and _same_rows(again, first)  # NaN bounds and notes come back as they were
    assert math.isnan(_row(again, "zeroshot", "top1").cells["ddd_old"].ci_low)

    compare_runs(stored_runs, cache=True, specs=specs, n_resamples=50, seed=1)  # another option
    compare_runs(stored_runs, cache=True, specs=None, n_resamples=50)  # other task declarations
    assert len(computed) == 2
    samples = stored_runs / "ccc_better" / "zeroshot.samples.jsonl"
    samples.write_text(samples.read_text().replace('"top1":1', '"top1":0', 3))  # a rerun's new samples
    changed = compare_runs(stored_runs, cache=True, specs=specs, n_resamples=50)
    delta = _row(first, "zeroshot", "top1").cells["ccc_better"].delta
    assert len(computed) == 3 and _row(changed, "zeroshot", "top1").cells["ccc_better"].delta == pytest.approx(
        delta - 3 / 150
    )
    (stored_runs / "ccc_better" / "zeroshot.samples.jsonl").unlink()
    assert (
        "no per-sample records"
        in _row(compare_runs(stored_runs, cache=True, specs=specs, n_resamples=50), "zeroshot", "top1")
        .cells["ccc_better"]
        .note
    )
    assert len(computed) == 4


def test_a_damaged_cache_entry_is_recomputed(stored_runs: Path) -> None:
    from coca_bench.compare import cache

    first = compare_runs(stored_runs, cache=True, n_resamples=50)
    (entry,) = (stored_runs / cache.CACHE_FOLDER).glob("*.json")
    entry.write_text("[{")
    assert _same_rows(compare_runs(stored_runs, cache=True, n_resamples=50), first)
    assert entry.read_text().startswith("[{") and len(entry.read_text()) > 10  # rewritten whole
