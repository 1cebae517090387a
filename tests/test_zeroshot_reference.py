"""Zero-shot classification checked against its reference definitions.

- acc@k: CLIP_benchmark's ``accuracy`` (topk over logits, true label among the top k);
- mean per-class recall: scikit-learn's ``balanced_accuracy_score``, which CLIP_benchmark calls;
- the whole task against open_clip's own pipeline (``build_zero_shot_classifier`` + ``encode_image``) on the same
  weights and images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from coca_bench.metrics.classification import mean_per_class_recall, topk_accuracy


def clip_benchmark_accuracy(output: torch.Tensor, target: torch.Tensor, topk=(1,)):
    """clip_benchmark.metrics.zeroshot_classification.accuracy (its ``float(array)`` becomes ``.item()``: the
    original breaks on numpy 2.4)."""
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    n = len(target)
    return [correct[:k].reshape(-1).float().sum(0, keepdim=True).item() / n for k in topk]


@pytest.mark.parametrize("seed", range(5))
def test_topk_accuracy_matches_clip_benchmark(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(200, 12))
    labels = rng.integers(0, 12, size=200)
    ours = topk_accuracy(logits, labels, ks=(1, 5))
    reference = clip_benchmark_accuracy(torch.from_numpy(logits), torch.from_numpy(labels), topk=(1, 5))
    assert ours["acc1"] == pytest.approx(reference[0]) and ours["acc5"] == pytest.approx(reference[1])


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # the case under test
@pytest.mark.parametrize("seed", range(5))
def test_mean_per_class_recall_matches_sklearn(seed):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, size=150)
    preds = np.where(rng.random(150) < 0.4, labels, rng.integers(0, 9, size=150))  # includes never-true classes
    assert mean_per_class_recall(preds, labels) == pytest.approx(sklearn_metrics.balanced_accuracy_score(labels, preds))


def test_imagenet_zeroshot_task_matches_open_clip_pipeline(tiny_open_clip, minidata_root, tmp_path):
    """Run the task through the runner on the mini ImageNet with an open_clip checkpoint file, then recompute every
    prediction with open_clip's classifier builder and image encoder."""
    open_clip = pytest.importorskip("open_clip")
    from open_clip.zero_shot_classifier import build_zero_shot_classifier
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    from coca_bench.data import load_image, read_imagenet
    from coca_bench.model.config import PreprocessConfig
    from coca_bench.model.preprocess import build_preprocess
    from coca_bench.runner import RunConfig, run_suite
    from coca_bench.settings import RunSettings

    reference, weights = tiny_open_clip
    out = tmp_path / "results"
    settings = RunSettings(num_workers=0, device="cpu", progress=False, cache_dir=tmp_path / "features")
    run_suite(
        RunConfig(
            tasks="imagenet_zeroshot",
            checkpoints=[f"ref=open_clip:coca_tiny_test:{weights}"],
            data_root=minidata_root,
            output=out,
            settings=settings,
        )
    )
    samples = {s["id"]: s for s in map(json.loads, (out / "ref" / "imagenet_zeroshot.samples.jsonl").open())}
    record = json.loads((out / "ref" / "imagenet_zeroshot.json").read_text())

    records = read_imagenet(minidata_root / "imagenet", "val")
    classes = list(records.present_labels)
    with torch.no_grad():
        weights_ref = build_zero_shot_classifier(
            reference,
            open_clip.get_tokenizer("coca_tiny_test"),
            [records.class_names[c] for c in classes],
            OPENAI_IMAGENET_TEMPLATES,
            num_classes_per_batch=4,
        )
        preprocess = build_preprocess(PreprocessConfig(image_size=64))
        pixels = torch.stack([preprocess(load_image(s.path)) for s in records.items])
        logits = 100.0 * reference.encode_image(pixels, normalize=True) @ weights_ref
    preds = logits.argmax(dim=1)
    labels = torch.tensor([classes.index(s.label) for s in records.items])
    assert len(samples) == len(records.items)
    for sample, pred in zip(records.items, preds.tolist()):
        assert samples[sample.id]["pred"] == classes[pred]
    acc1, acc5 = clip_benchmark_accuracy(logits, labels, topk=(1, 5))
    assert record["metrics"]["acc1"] == pytest.approx(acc1) and record["metrics"]["acc5"] == pytest.approx(acc5)
    assert 0 < acc5 < 1, "a degenerate case (all or nothing) would not test the ranking"
    assert len(set(preds.tolist())) > 1, "one class winning everywhere would not test the ranking"
