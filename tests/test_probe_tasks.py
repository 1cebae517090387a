"""Linear and attentive probes through the runner: above chance, limit on the evaluated split only, caching."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_task
from PIL import Image

pytestmark = pytest.mark.usefixtures("clean_registry")
CHANCE_MINI_IMAGENET = 1 / 8


def test_linear_probe_beats_chance_and_limit_never_shrinks_training(tmp_path, minidata_root):
    record, samples = run_task(tmp_path, "imagenet_linear_probe", minidata_root)
    extra = record["config"]["extra"]
    assert record["metrics"]["acc1"] > 3 * CHANCE_MINI_IMAGENET
    assert len(samples) == 40 and extra["num_classes"] == 8
    assert extra["chosen_c"] in extra["c_grid"] and len(extra["val_accuracy"]) == len(extra["c_grid"])
    assert extra["train_size"] + extra["val_size"] == 32  # 4 training images per class, 20% held out for the sweep

    limited, limited_samples = run_task(tmp_path / "limited", "imagenet_linear_probe", minidata_root, limit=5)
    assert len(limited_samples) == 5
    assert limited["config"]["extra"]["train_size"] == extra["train_size"]  # training data untouched
    assert limited["config"]["extra"]["chosen_c"] == extra["chosen_c"]


def test_linear_probe_is_deterministic_and_few_shot_is_seeded(tmp_path, minidata_root):
    first, first_samples = run_task(
        tmp_path / "a", "imagenet_linear_probe", minidata_root, params=["shots=3", "val_fraction=0.34"]
    )
    again, again_samples = run_task(
        tmp_path / "b", "imagenet_linear_probe", minidata_root, params=["shots=3", "val_fraction=0.34"]
    )
    assert first_samples == again_samples and first["metrics"] == again["metrics"]
    assert first["config"]["extra"]["train_size"] + first["config"]["extra"]["val_size"] == 24  # 3 per class


def make_folder_dataset(root: Path) -> None:
    """Three colour classes, train and test (no val): ImageFolder layout with arbitrary class names."""
    colours = {"apple": (220, 30, 30), "grass": (30, 200, 40), "sky": (40, 60, 230)}
    for split, count in (("train", 6), ("test", 3)):
        for name, colour in colours.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                shade = tuple(min(255, c + 7 * i) for c in colour)
                Image.new("RGB", (16, 16), shade).save(folder / f"{i}.png")


def test_generic_linear_probe_on_any_image_folder_dataset(tmp_path):
    make_folder_dataset(tmp_path / "data" / "colours")
    record, samples = run_task(tmp_path, "linear_probe", tmp_path / "data", params=["dataset=colours"])
    assert record["dataset"]["name"] == "colours" and record["config"]["extra"]["eval_split"] == "test"
    assert len(samples) == 9 and record["metrics"]["acc1"] == 1.0
    assert {s["label"] for s in samples} == {0, 1, 2}


def test_attentive_probe_beats_chance_on_encoder_tokens_and_reuses_cached_tokens(tmp_path, minidata_root):
    from coca_bench.model import load_model

    model = load_model("tiny-random-s0")
    record, samples = run_task(tmp_path, "imagenet_attentive_probe", minidata_root, model=model)
    assert record["metrics"]["acc1"] > 2 * CHANCE_MINI_IMAGENET
    assert record["config"]["params"]["token_storage"] == "fp16" and record["config"]["params"]["lr"] == 5e-4
    assert record["run"]["feature_cache"]["items_encoded"] == 72  # 32 training + 40 evaluated images

    other, _ = run_task(tmp_path, "imagenet_attentive_probe", minidata_root, model=model, params=["lr=0.001"])
    assert other["key"] != record["key"]
    assert other["run"]["feature_cache"]["items_encoded"] == 0  # another hyper-parameter: tokens from the cache
    same, same_samples = run_task(tmp_path / "again", "imagenet_attentive_probe", minidata_root, model=model)
    assert same_samples == samples  # seeded and deterministic on a CPU
