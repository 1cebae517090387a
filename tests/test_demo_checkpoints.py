"""The shipped ``demo`` checkpoint: small files that load by name, scores far above chance on every bundled task, and
significantly above ``demo-early`` on every task of the default run.

Scores come from the session's default run (``run_suite.py --tasks all`` on the mini datasets, conftest's
``default_run``); every chance level is derived from the run's own data (the number of classes, images and captions
per image, the majority VQA answer, captions paired with the wrong images), never copied from an earlier run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from coca_bench.model.catalog import DEFAULT_CHECKPOINTS, SHIPPED_CHECKPOINTS, SHIPPED_DIR

MAX_SHIPPED_BYTES = 8_000_000


@pytest.mark.parametrize("name", sorted(SHIPPED_CHECKPOINTS))
def test_shipped_checkpoints_are_small_and_load_by_name(name: str):
    import torch

    from coca_bench.model import get_preset, load_model

    folder = SHIPPED_DIR / name
    assert (folder / "model.safetensors").stat().st_size < MAX_SHIPPED_BYTES
    card = (folder / "MODEL_CARD.md").read_text()
    assert "python run_suite.py train" in card and "Wall time" in card and "Parameters" in card
    model = load_model(name)
    assert model.name == name and model.config == get_preset("coca-demo")
    assert all(p.dtype == torch.float32 for p in model.network.parameters())  # fp16 storage, upcast on load
    assert DEFAULT_CHECKPOINTS == ["demo", "demo-early"]


def _samples(out: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in (out / "demo" / f"{task}.samples.jsonl").read_text().splitlines()]


def _classification_chance(record: dict, samples: list[dict]) -> float:
    """A classifier that ignores the input: 1 / classes, or the most frequent class's share if that is higher."""
    labels = [s["label"] for s in samples]
    classes = record["config"]["extra"]["num_classes"]
    return max(1 / classes, max(labels.count(label) for label in set(labels)) / len(labels))


def _shuffled_cider(samples: list[dict]) -> float:
    """CIDEr of the model's own captions, each scored against the next image's references: fluent text that does
    not look at its image."""
    from coca_bench.metrics.captioning import cider_d

    captions = [s["caption_tokens"] for s in samples]
    references = [s["reference_tokens"] for s in samples]
    return cider_d(captions[1:] + captions[:1], references)[0]


def _far_above(value: float, chance: float) -> bool:
    """At least twice chance (halfway to a perfect score where twice chance is out of reach, as for a true/false
    task), and a third of the way from chance to a perfect score."""
    return value >= max(min(2 * chance, (1 + chance) / 2), chance + (1 - chance) / 3)


@pytest.mark.slow
def test_demo_is_significantly_better_than_demo_early_on_every_task(default_run):
    """The default run's comparison: demo's headline metric (the first each task declares) beats demo-early's, with a
    95% paired bootstrap interval that excludes 0, on every task, the README's plugin included."""
    import csv

    from coca_bench.runner import load_task_registry

    rows = list(csv.DictReader(default_run.comparison_csv.splitlines()))
    tasks = load_task_registry()
    stored = {p.stem for p in (default_run.output / "demo").glob("*.json") if p.name != "checkpoint.json"}
    assert set(tasks) <= stored, sorted(set(tasks) - stored)
    failures = []
    for task in sorted(stored & set(tasks)):
        headline = tasks[task].metrics[0]
        (row,) = [r for r in rows if (r["task"], r["metric"], r["checkpoint"]) == (task, headline.name, "demo")]
        assert row["baseline"] == "demo-early"
        better = float(row["delta"]) > 0 if headline.higher_is_better else float(row["delta"]) < 0
        if not (better and row["significant"] == "True"):
            failures.append(f"{task}/{headline.name}: {row['delta']} [{row['ci_low']}, {row['ci_high']}]")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_demo_scores_far_above_chance_on_every_task(default_run):
    from coca_bench.results import ResultStore

    out = default_run.output
    records = {r["task"]["name"]: r for r in ResultStore(out).records() if r["checkpoint"]["name"] == "demo"}
    failures = []

    def check(task: str, metric: str, chance: float) -> None:
        value = records[task]["metrics"][metric]
        if not _far_above(value, chance):
            failures.append(f"{task}/{metric} = {value:.3f}: chance {chance:.3f}")

    for task in ("imagenet_zeroshot", "imagenet_subset_zeroshot", "imagenet_linear_probe", "linear_probe",
                 "imagenet_attentive_probe", "imagenet_v2_zeroshot", "imagenet_a_zeroshot", "imagenet_r_zeroshot",
                 "imagenet_sketch_zeroshot", "objectnet_zeroshot"):  # fmt: skip
        check(task, "acc1", _classification_chance(records[task], _samples(out, task)))
    # The mini Kinetics classes pair a shape with a motion and hold no motion's reverse, whose frames a model without
    # temporal order (the paper's video protocol) could not tell apart, so a perfect score is reachable.
    for task in ("kinetics_zeroshot", "kinetics_attentive_probe", "kinetics600_zeroshot", "kinetics600_attentive_probe",
                 "kinetics700_zeroshot", "kinetics700_attentive_probe", "moments_zeroshot",
                 "moments_attentive_probe"):  # fmt: skip
        check(task, "acc1", _classification_chance(records[task], _samples(out, task)))

    for task, (query, per_item) in {"coco_retrieval": ("i2t", "t2i_ranks"), "flickr30k_retrieval": ("i2t", "t2i_ranks"),
                                    "msrvtt_retrieval": ("v2t", "t2v_ranks")}.items():  # fmt: skip
        samples = _samples(out, task)
        texts = sum(len(s[per_item]) for s in samples)
        other = "t2v" if query == "v2t" else "t2i"
        # a random ranking puts one of an item's own texts first with probability (its texts) / (all texts)
        check(task, f"{query}_recall@1", np.mean([len(s[per_item]) for s in samples]) / texts)
        check(task, f"{other}_recall@1", 1 / len(samples))

    vqa = records["vqav2"]
    check("vqav2", "accuracy", vqa["config"]["extra"]["majority_answer_accuracy"])
    for task in ("snli_ve", "nlvr2"):  # chance: always the split's most frequent label
        check(task, "accuracy", records[task]["config"]["extra"]["majority_label_accuracy"])

    if shutil.which("java"):  # the captioning tasks need Java (PTB tokenizer, METEOR)
        for task in ("coco_captioning", "nocaps_captioning", "msrvtt_captioning"):
            samples = _samples(out, task)
            shuffled = _shuffled_cider(samples)
            cider = records[task]["metrics"]["CIDEr"]
            if not cider >= max(2 * shuffled, shuffled + 0.3):
                failures.append(f"{task}/CIDEr = {cider:.3f}: with captions of other images {shuffled:.3f}")
        right = _captions_naming_the_scene(_samples(out, "coco_captioning"))
        if right <= 0.5:  # "most"
            failures.append(f"coco_captioning: {right:.0%} of captions name their image's shapes and colours")
    assert not failures, "\n".join(failures)


def _captions_naming_the_scene(samples: list[dict]) -> float:
    """The share of captions that name at least one "<colour> <shape>" and only ones the image holds (the mini
    data's ``ground_truth.json`` lists every image's shapes)."""
    from coca_bench.data import default_data_root
    from coca_bench.data.scenes import COLOURS, NOVEL_SHAPES, SHAPES

    truth = json.loads((default_data_root() / "ground_truth.json").read_text())
    right = 0
    for sample in samples:
        scene = truth[f"coco/val2014/COCO_val2014_{int(sample['id']):012d}.jpg"]
        present = {(shape["colour"], shape["kind"]) for shape in scene["shapes"]}
        words = sample["caption"].lower().replace(".", " ").split()
        named = {(a, b) for a, b in zip(words, words[1:]) if a in COLOURS and b in (*SHAPES, *NOVEL_SHAPES)}
        right += bool(named) and named <= present
    return right / len(samples)
