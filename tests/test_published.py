"""Published figures: every figure sourced and naming a real task and metric, hand-checked entries, and a run that does
not measure what a figure measured labelled not comparable, with the reason."""

from __future__ import annotations

import copy
import re

import pytest

from coca_bench.published import (
    FIGURES_FILE,
    PublishedError,
    compare_with_published,
    format_published_comparison,
    not_comparable_reasons,
    paper_view,
    parse_published,
    published,
)


def _figure(model: str, column: str, split: str | None = None):
    matches = [f for f in published().figures if f.model == model and f.column == column]
    if split is not None:
        matches = [f for f in matches if f.split == split]
    assert len(matches) == 1, (model, column, [f.split for f in matches])
    return matches[0]


def test_every_figure_names_a_registered_task_and_one_of_its_metrics_and_has_a_source():
    from coca_bench.runner import load_task_registry

    tasks = load_task_registry()
    assert len(published().figures) > 100
    for figure in published().figures:
        assert figure.task in tasks, f"{figure.model}: {figure.column} is not a registered task"
        assert figure.metric in [m.name for m in tasks[figure.task].metrics], figure.column
        assert "https://" in figure.source and figure.table
        assert 0 <= figure.value <= 150  # percent, or CIDEr x 100
        for name in figure.params:  # a figure asks only for parameters its task has
            assert name in tasks[figure.task].params, (figure.column, name)


def test_hand_checked_entries():
    # CoCa paper, Table 4 (row CoCa) and Table 3 (row CoCa-Base), as printed.
    assert _figure("coca", "imagenet_zeroshot/acc1").value == 86.3
    assert _figure("coca", "objectnet_zeroshot/acc1").value == 82.7
    assert _figure("coca-base", "imagenet_a_zeroshot/acc1").value == 76.4
    assert _figure("coca-base", "coco_retrieval/t2i_recall@10").value == 80.9
    assert _figure("coca-large", "flickr30k_retrieval/i2t_recall@5").value == 99.2
    # Table 5 (MSR-VTT, the full split), Table 2 (frozen), Table 6 (two splits on one task), Table 7.
    assert _figure("coca", "msrvtt_retrieval/v2t_recall@1").params["split"] == "full"
    assert _figure("coca", "kinetics700_attentive_probe/acc1").value == 81.1
    assert _figure("coca", "snli_ve/accuracy", "test").value == 87.1
    assert _figure("coca", "nlvr2/accuracy", "test-P").params["split"] == "test1"
    assert _figure("coca", "coco_captioning/CIDEr").value == 143.6
    # open_clip's CSVs (CLIP_benchmark): the B/32 row; its table columns are in IN, V2, A, R, Sketch, ObjectNet order.
    assert _figure("open_clip-b32-laion2b", "imagenet_a_zeroshot/acc1").value == 21.60
    assert _figure("open_clip-b32-laion2b", "imagenet_v2_zeroshot/acc1").value == 55.69
    assert _figure("open_clip-l14-laion2b", "coco_retrieval/t2i_recall@1").value == 45.65
    assert _figure("open_clip-l14-mscoco", "coco_captioning/CIDEr").params == {"split": "val"}


def test_the_view_average_is_the_papers_avg_column():
    """Table 4's printed Avg (78.7, 83.3, 85.7) is the mean of its six columns, which the view computes."""
    text = paper_view([], ["coca-base", "coca-large", "coca"]).split("### ")[1]
    assert text.startswith("Zero-shot image classification (CoCa Table 4)")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| CoCa")}
    for label, avg in (("CoCa-Base (paper)", "78.7"), ("CoCa-Large (paper)", "83.3"), ("CoCa (paper, 2.1B)", "85.7")):
        assert rows[label].rstrip(" |").endswith(avg), rows[label]


def _record(task: str, metrics: dict, samples: int, params: dict, limit=None, data_root="/datasets") -> dict:
    return {
        "checkpoint": {"name": "mine"},
        "task": {"name": task},
        "metrics": metrics,
        "num_samples": samples,
        "config": {"params": params},
        "run": {"settings": {"limit": limit}},
        "dataset": {"data_root": data_root},
    }


COCO_PARAMS = {"karpathy": "coco", "split": "test", "annotation_file": None, "image_root": None}


def test_a_like_for_like_run_gets_the_difference_in_points():
    record = _record("coco_retrieval", {"i2t_recall@1": 0.66, "t2i_recall@1": 0.50}, 5000, COCO_PARAMS)
    rows = {r.figure.metric: r for r in compare_with_published([record], ["coca"]) if r.figure.metric.endswith("@1")}
    assert rows["i2t_recall@1"].comparable and rows["i2t_recall@1"].difference == pytest.approx(66.0 - 66.3)
    assert rows["t2i_recall@1"].difference == pytest.approx(50.0 - 51.2)
    assert "-0.3" in format_published_comparison(list(rows.values()))


def test_runs_on_another_split_a_limit_the_mini_data_or_a_frozen_probe_are_not_comparable(tmp_path):
    msrvtt = _figure("coca", "msrvtt_retrieval/t2v_recall@1")
    one_k_a = _record(
        "msrvtt_retrieval", {"t2v_recall@1": 0.4}, 1000, {"split": "1k-A", "num_frames": 16, "sampling": "uniform"}
    )
    assert not_comparable_reasons(msrvtt, one_k_a) == ["split='1k-A', where the figure used 'full'"]
    full = copy.deepcopy(one_k_a)
    full["config"]["params"]["split"] = "full"
    assert not_comparable_reasons(msrvtt, full) == []  # no sample count: the paper's subset of the 2,990

    coco = _figure("coca", "coco_retrieval/i2t_recall@1")
    assert not_comparable_reasons(coco, _record("coco_retrieval", {"i2t_recall@1": 1.0}, 25, COCO_PARAMS)) == [
        "25 samples, where COCO Karpathy 5k test has 5,000"
    ]
    limited = _record("coco_retrieval", {"i2t_recall@1": 1.0}, 5000, COCO_PARAMS, limit=5000)
    assert not_comparable_reasons(coco, limited) == ["a --limit 5000 run"]
    mini = tmp_path / "cache" / "minidata" / "v4-seed0"
    on_mini = _record("coco_retrieval", {"i2t_recall@1": 1.0}, 5000, COCO_PARAMS, data_root=str(mini))
    assert not_comparable_reasons(coco, on_mini) == ["the bundled mini dataset, not the benchmark's"]

    snli = _figure("coca", "snli_ve/accuracy", "dev")
    probe = _record("snli_ve", {"accuracy": 0.9}, 17858, {"split": "dev"})
    (reason,) = not_comparable_reasons(snli, probe)
    assert "fine-tunes" in reason and "frozen" in reason
    rows = compare_with_published([one_k_a, probe], ["coca"])
    assert rows and all(not r.comparable and r.difference is None for r in rows)
    assert "not comparable: split='1k-A'" in format_published_comparison(rows)


def test_the_paper_view_marks_a_run_that_is_not_comparable():
    record = _record("imagenet_zeroshot", {"acc1": 0.5}, 40, {"templates": "openai", "label_space": "full"})
    text = paper_view([record], ["coca"])
    row = next(line for line in text.splitlines() if line.startswith("| mine (this run)"))
    assert "50.0†" in row and row.rstrip(" |").endswith("–")  # no Avg without all six
    assert "† 40 samples, where ImageNet-1k val has 50,000: mine imagenet_zeroshot/acc1" in text


def test_malformed_figures_name_the_file_and_key():
    data = {"sources": {"s": {"title": "t", "url": "https://x"}}, "models": {"m": {"label": "M", "source": "s"}},
            "benchmarks": {"imagenet_zeroshot": {"split": "val", "protocol": "zs"}},
            "figures": [{"table": "T1", "columns": ["imagenet_zeroshot/acc1"], "rows": [["m", 1.0]]}]}  # fmt: skip
    assert len(parse_published(data).figures) == 1
    broken = copy.deepcopy(data)
    broken["figures"][0]["rows"] = [["unknown-model", 1.0]]
    with pytest.raises(
        PublishedError, match=re.escape(f"{FIGURES_FILE}: figures[1] (T1) has a row for 'unknown-model'")
    ):
        parse_published(broken)
    broken = copy.deepcopy(data)
    broken["figures"][0]["columns"] = ["no_such_benchmark/acc1"]
    with pytest.raises(PublishedError, match=r"no \[benchmarks.no_such_benchmark\]"):
        parse_published(broken)
    with pytest.raises(PublishedError, match="--published 'nope' names no published model"):
        published().select("nope")
    assert published().select("all") == list(published().models)
