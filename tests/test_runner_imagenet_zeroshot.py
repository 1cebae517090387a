"""The imagenet_zeroshot plugin on a hand-made ImageNet folder, with a model whose answers are known."""

import contextlib
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from coca_bench import registry
from coca_bench.data import imagenet_wnids
from coca_bench.params import ParamError
from coca_bench.registry import get_task
from coca_bench.results import ResultStore
from coca_bench.runner import RunConfig, load_task_registry, run_suite
from coca_bench.settings import RunSettings

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
            named = [n for n in NAMES if n in words]
            ids.append([NAMES.index(named[0]) if named else len(NAMES)])  # any other class name: grey
        return torch.tensor(ids)

    def encode_image(self, pixels, normalize=True):
        return torch.nn.functional.normalize(pixels.mean(dim=(2, 3)), dim=-1)

    def encode_text(self, ids, normalize=True):
        table = torch.tensor([*(CLASSES[n] for n in NAMES), (1, 1, 1)], dtype=torch.float32)
        return torch.nn.functional.normalize(table[ids[:, 0]], dim=-1)

    def autocast(self, precision):
        return contextlib.nullcontext()


@pytest.fixture(autouse=True)
def builtin_tasks():
    registry._clear_for_tests()
    load_task_registry()
    yield
    registry._clear_for_tests()


def make_imagenet(root, images_by_wnid, mapping=True):
    """``images_by_wnid``: wnid -> list of RGB colours, one image each."""
    root.mkdir(parents=True)
    if mapping:
        (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} {n}, other name\n" for w, n in zip(WNIDS, NAMES)))
    for wnid, colours in images_by_wnid.items():
        folder = root / "val" / wnid
        folder.mkdir(parents=True)
        for i, colour in enumerate(colours):
            Image.new("RGB", (4, 4), colour).save(folder / f"{wnid}_{i}.png")


def run(tmp_path, task="imagenet_zeroshot", limit=None, templates="simple"):
    """The task through the real runner (limit, metrics from declarations, skips); returns (record, samples)."""
    settings = RunSettings(device="cpu", num_workers=0, batch_size=4, progress=False, limit=limit,
                           cache_dir=tmp_path / "cache")  # fmt: skip
    config = RunConfig(tasks=task, checkpoints=["colour"], data_root=tmp_path, output=tmp_path / "out",
                       params=[f"templates={templates}"], settings=settings)  # fmt: skip
    (record,) = run_suite(config, load_model=lambda spec, device: ColourModel())
    return record, ResultStore(tmp_path / "out").samples("colour", task)


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
    record, samples = run(tmp_path)
    metrics = record["metrics"]
    assert metrics["acc1"] == pytest.approx(6 / 7)
    assert metrics["mean_per_class_recall"] == pytest.approx((2 / 3 + 1 + 1 + 1) / 4)
    assert math.isnan(metrics["acc5"])  # 4 classes < 5
    wrong = [s for s in samples if s["acc1"] == 0]
    assert wrong == [{"id": "n001/n001_2", "label": 0, "pred": 2, "acc1": 0}]
    spec = get_task("imagenet_zeroshot")
    assert spec.recompute(samples, {})["acc1"] == pytest.approx(metrics["acc1"])
    assert spec.recompute(samples, {})["mean_per_class_recall"] == pytest.approx(metrics["mean_per_class_recall"])
    templates = record["config"]["key_material"]["templates"]
    assert len(templates) == 7 and "{c}" in templates[0]
    assert record["dataset"]["annotation_files"] == ["LOC_synset_mapping.txt", "coca_bench/data/imagenet_wnids.txt"]


def test_subset_restricts_logits_to_the_classes_present(tmp_path):
    # No amber folder: an orange image, closest to amber overall, must be scored among the present classes.
    make_imagenet(tmp_path / "imagenet_subset", {"n001": [(255, 150, 0)], "n002": [(0, 255, 0)], "n003": [(0, 0, 255)]})
    record, _ = run(tmp_path, task="imagenet_subset_zeroshot")
    assert record["metrics"]["acc1"] == 1.0
    assert record["config"]["extra"]["num_classes"] == 3

    make_imagenet(tmp_path / "imagenet", {"n001": [(255, 150, 0)], "n002": [(0, 255, 0)], "n003": [(0, 0, 255)]})
    record, samples = run(tmp_path)  # the full task scores every class, present or not: amber wins
    assert [s["pred"] for s in samples] == [3, 1, 2] and record["metrics"]["acc1"] == pytest.approx(2 / 3)


def test_a_partly_extracted_imagenet_is_scored_over_all_1000_classes(tmp_path):
    """3 of the 1,000 class folders: scoring only those would report inflated accuracy with no warning."""
    wnids = imagenet_wnids()
    make_imagenet(tmp_path / "imagenet", {wnids[0]: [(9, 9, 9)], wnids[1]: [(9, 9, 9)], wnids[2]: [(9, 9, 9)]},
                  mapping=False)  # fmt: skip
    record, samples = run(tmp_path)
    assert record["config"]["extra"]["num_classes"] == 1000
    assert record["config"]["extra"]["num_classes_present"] == 3
    assert record["metrics"]["acc1"] < 1.0  # grey images tie with every class: ties go to the lowest class index


def test_limit_unreadable_images_and_openai_templates(tmp_path):
    make_imagenet(tmp_path / "imagenet", {"n001": [(255, 0, 0)] * 3, "n002": [(0, 255, 0)] * 3})
    (tmp_path / "imagenet" / "val" / "n001" / "n001_0.png").write_bytes(b"broken")
    record, samples = run(tmp_path, limit=4, templates="openai")
    assert len(samples) + len(record["skipped"]) == 4  # the runner applied the limit and recorded the skip
    assert [s["id"] for s in record["skipped"]] == ["n001/n001_0"]
    assert record["metrics"]["acc1"] == 1.0
    assert len(record["config"]["key_material"]["templates"]) == 80
    assert record["config"]["extra"]["num_classes"] == 4  # neither the limit nor the folders shrink the label space


def test_unknown_template_set_is_a_clear_error(tmp_path):
    make_imagenet(tmp_path / "imagenet", {"n001": [(255, 0, 0)]})
    with pytest.raises(ParamError, match=r"'imagenet_zeroshot': parameter templates=\"fancy\".*\['openai', 'simple'\]"):
        run(tmp_path, templates="fancy")


def test_edited_prompt_strings_rerun_even_under_the_same_template_set_name(tmp_path, monkeypatch):
    """An open_clip upgrade that edits its templates must not be served the old result (the name stays 'simple')."""
    from coca_bench.data.imagenet import open_clip_zero_shot_metadata

    zero_shot_metadata = open_clip_zero_shot_metadata()
    make_imagenet(tmp_path / "imagenet", {"n001": [(255, 0, 0)], "n002": [(0, 255, 0)]})
    first, _ = run(tmp_path)
    again, _ = run(tmp_path)
    assert again["key"] == first["key"] and again["run"]["started_at"] == first["run"]["started_at"]  # reused
    edited = (lambda c: f"an edited prompt of a {c}.", *zero_shot_metadata.SIMPLE_IMAGENET_TEMPLATES[1:])
    monkeypatch.setattr(zero_shot_metadata, "SIMPLE_IMAGENET_TEMPLATES", edited)
    rerun, _ = run(tmp_path)
    assert rerun["key"] != first["key"]
    assert rerun["config"]["key_material"]["templates"][0] == "an edited prompt of a {c}."
