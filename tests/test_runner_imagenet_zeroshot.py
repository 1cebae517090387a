"""The imagenet_zeroshot plugin on a hand-made ImageNet folder, with a model whose answers are known."""
import contextlib
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from coca_bench import registry
from coca_bench.features import FeatureExtractor
from coca_bench.registry import TaskContext, get_task
from coca_bench.runner import load_task_registry

# Class name -> direction in a 3-d (r, g, b) embedding space; amber is "red + green".
CLASSES = {"crimson": (1, 0, 0), "emerald": (0, 1, 0), "azure": (0, 0, 1), "amber": (1, 1, 0)}
WNIDS = ["n001", "n002", "n003", "n004"]
NAMES = list(CLASSES)


class ColourModel:
    """Images embed as their mean colour; a text embeds as the colour its class name stands for."""

    name = "colour"
    fingerprint = "colour-v1"
    preprocess_fingerprint = "mean-colour"
    weights_sha256 = "c" * 64
    device = "cpu"

    @staticmethod
    def preprocess(image):
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)

    @staticmethod
    def tokenizer(texts):
        ids = []
        for text in texts:
            words = set(re.findall(r"[a-z]+", text.lower()))
            (name,) = [n for n in NAMES if n in words]
            ids.append([NAMES.index(name)])
        return torch.tensor(ids)

    def encode_image(self, pixels, normalize=True):
        return torch.nn.functional.normalize(pixels.mean(dim=(2, 3)), dim=-1)

    def encode_text(self, ids, normalize=True):
        table = torch.tensor([CLASSES[n] for n in NAMES], dtype=torch.float32)
        return torch.nn.functional.normalize(table[ids[:, 0]], dim=-1)

    def autocast(self, precision):
        return contextlib.nullcontext()


@pytest.fixture(autouse=True)
def builtin_tasks():
    registry._clear_for_tests()
    load_task_registry()
    yield
    registry._clear_for_tests()


def make_imagenet(root, images_by_wnid):
    """``images_by_wnid``: wnid -> list of RGB colours, one image each."""
    root.mkdir(parents=True)
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} {n}, other name\n" for w, n in zip(WNIDS, NAMES)))
    for wnid, colours in images_by_wnid.items():
        folder = root / "val" / wnid
        folder.mkdir(parents=True)
        for i, colour in enumerate(colours):
            Image.new("RGB", (4, 4), colour).save(folder / f"{wnid}_{i}.png")


def run(tmp_path, task="imagenet_zeroshot", limit=None, templates="simple"):
    spec = get_task(task)
    extractor = FeatureExtractor(ColourModel(), tmp_path / "cache", batch_size=4, progress=False)
    ctx = TaskContext(model=extractor.model, features=extractor, data_root=tmp_path, limit=limit)
    return spec, spec.run(ctx, spec.resolve_params({"templates": templates}))


def test_accuracy_and_per_sample_records_hand_computed(tmp_path):
    make_imagenet(
        tmp_path / "imagenet",
        {
            "n001": [(255, 0, 0), (250, 10, 0), (0, 0, 255)],  # the third is blue: predicted azure, wrong
            "n002": [(0, 255, 0)],
            "n003": [(0, 0, 250), (10, 0, 255)],
            "n004": [(255, 255, 0)],
        },
    )
    spec, result = run(tmp_path)
    assert result.metrics["acc1"] == pytest.approx(6 / 7)
    assert result.metrics["mean_per_class_recall"] == pytest.approx((2 / 3 + 1 + 1 + 1) / 4)
    assert result.metrics["acc5"] is not None and math.isnan(result.metrics["acc5"])  # 4 classes < 5
    wrong = [s for s in result.samples if s["acc1"] == 0]
    assert wrong == [{"id": "n001/n001_2", "label": 0, "pred": 2, "acc1": 0}]
    assert spec.recompute(result.samples, {})["acc1"] == pytest.approx(result.metrics["acc1"])
    assert spec.recompute(result.samples, {})["mean_per_class_recall"] == pytest.approx(result.metrics["mean_per_class_recall"])
    assert len(result.extra_config["templates"]) == 7 and "{c}" in result.extra_config["templates"][0]
    assert [p.name for p in result.annotation_files] == ["LOC_synset_mapping.txt"]


def test_subset_restricts_logits_to_the_classes_present(tmp_path):
    # No amber folder: an orange image, closest to amber overall, must be scored among the present classes.
    make_imagenet(tmp_path / "imagenet_subset", {"n001": [(255, 150, 0)], "n002": [(0, 255, 0)], "n003": [(0, 0, 255)]})
    _, result = run(tmp_path, task="imagenet_subset_zeroshot")
    assert result.metrics["acc1"] == 1.0
    assert result.extra_config["num_classes"] == 3

    make_imagenet(tmp_path / "imagenet", {"n001": [(255, 150, 0)], "n004": [(255, 255, 0)]})
    _, full = run(tmp_path)  # with amber present the orange image goes to amber
    assert [s["pred"] for s in full.samples] == [3, 3]


def test_limit_unreadable_images_and_openai_templates(tmp_path):
    make_imagenet(tmp_path / "imagenet", {"n001": [(255, 0, 0)] * 3, "n002": [(0, 255, 0)] * 3})
    (tmp_path / "imagenet" / "val" / "n001" / "n001_0.png").write_bytes(b"broken")
    _, result = run(tmp_path, limit=4, templates="openai")
    assert len(result.samples) + len(result.skipped) == 4
    assert [s.sample_id for s in result.skipped] == ["n001/n001_0"]
    assert result.metrics["acc1"] == 1.0
    assert len(result.extra_config["templates"]) == 80
    assert result.extra_config["num_classes"] == 2  # the limit does not shrink the label space


def test_unknown_template_set_is_a_clear_error(tmp_path):
    make_imagenet(tmp_path / "imagenet", {"n001": [(255, 0, 0)]})
    with pytest.raises(ValueError, match="templates='fancy'"):
        run(tmp_path, templates="fancy")
