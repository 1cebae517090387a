"""COCO / Flickr30K retrieval through the runner: layouts, the brute-force reference, open_clip parity, warnings."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import PixelStatsModel, run_task

from coca_bench.data import DatasetNotFoundError

pytestmark = pytest.mark.usefixtures("clean_registry")


def brute_force_ranks(images: np.ndarray, texts: np.ndarray, owner: np.ndarray) -> tuple[list[int], list[int]]:
    """The definition, with the full similarity matrix: 1 + wrong items scoring at least the correct one."""
    sims = images.astype(np.float64) @ texts.astype(np.float64).T
    i2t = []
    for i in range(len(images)):
        best = sims[i, owner == i].max()
        i2t.append(1 + int((sims[i, owner != i] >= best).sum()))
    t2i = [1 + int((np.delete(sims[:, j], owner[j]) >= sims[owner[j], j]).sum()) for j in range(len(texts))]
    return i2t, t2i


def test_coco_task_ranks_like_a_brute_force_similarity_matrix(tmp_path, minidata_root):
    record, samples = run_task(tmp_path, "coco_retrieval", minidata_root)
    items = json.loads((minidata_root / "coco" / "dataset_coco.json").read_text())["images"]
    test = [i for i in items if i["split"] == "test"]
    model = PixelStatsModel()
    import torch
    from PIL import Image

    pixels = torch.stack(
        [
            model.preprocess(Image.open(minidata_root / "coco" / i["filepath"] / i["filename"]).convert("RGB"))
            for i in test
        ]
    )
    images = model.encode_image(pixels).numpy()
    captions = [(k, s["raw"].strip()) for k, i in enumerate(test) for s in i["sentences"]]
    texts = model.encode_text(model.tokenizer([c for _, c in captions])).numpy()
    owner = np.array([k for k, _ in captions])
    i2t, t2i = brute_force_ranks(images, texts, owner)
    assert [s["id"] for s in samples] == [str(i["cocoid"]) for i in test]
    assert [s["i2t_rank"] for s in samples] == i2t
    assert [r for s in samples for r in s["t2i_ranks"]] == t2i
    assert record["metrics"]["i2t_recall@1"] == pytest.approx(np.mean(np.array(i2t) <= 1))
    assert record["metrics"]["t2i_recall@5"] == pytest.approx(np.mean(np.array(t2i) <= 5))
    assert record["metrics"]["t2i_median_rank"] == pytest.approx(np.median(t2i))
    assert 0 < record["metrics"]["i2t_recall@5"] < 1, "a degenerate case would not test the ranking"
    assert record["config"]["extra"] == {"num_images": len(test), "num_captions": len(captions)}


@pytest.mark.parametrize("layout", ["lavis", "clip_benchmark"])
def test_common_download_layouts_are_found_without_flags(tmp_path, minidata_root, layout):
    source = minidata_root / "coco"
    root = tmp_path / "data" / "coco"
    if layout == "lavis":  # annotations/dataset_coco.json, images/val2014/...
        (root / "annotations").mkdir(parents=True)
        shutil.copy(source / "dataset_coco.json", root / "annotations" / "dataset_coco.json")
        shutil.copytree(source / "val2014", root / "images" / "val2014")
    else:  # the JSON and val2014/ side by side
        root.mkdir(parents=True)
        shutil.copy(source / "dataset_coco.json", root / "dataset_coco.json")
        shutil.copytree(source / "val2014", root / "val2014")
    reference, _ = run_task(tmp_path / "reference", "coco_retrieval", minidata_root)
    record, _ = run_task(tmp_path, "coco_retrieval", tmp_path / "data")
    assert record["metrics"] == reference["metrics"]


def test_overrides_and_a_clear_error_listing_every_place_tried(tmp_path, minidata_root):
    root = tmp_path / "data" / "flickr30k"
    root.mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError) as info:
        run_task(tmp_path, "flickr30k_retrieval", tmp_path / "data")
    for place in ("dataset_flickr30k.json", "annotations/dataset_flickr30k.json", "karpathy/dataset_flickr30k.json"):
        assert str(root / place) in str(info.value)
    shutil.copy(minidata_root / "flickr30k" / "dataset_flickr30k.json", tmp_path / "karpathy.json")
    with pytest.raises(DatasetNotFoundError, match="image_root") as info:
        run_task(
            tmp_path, "flickr30k_retrieval", tmp_path / "data", params=[f"annotation_file={tmp_path / 'karpathy.json'}"]
        )
    assert str(root / "images") in str(info.value)
    shutil.copytree(minidata_root / "flickr30k" / "flickr30k-images", tmp_path / "pictures")
    record, _ = run_task(
        tmp_path,
        "flickr30k_retrieval",
        tmp_path / "data",
        params=[f"annotation_file={tmp_path / 'karpathy.json'}", f"image_root={tmp_path / 'pictures'}"],
    )
    reference, _ = run_task(tmp_path / "reference", "flickr30k_retrieval", minidata_root)
    assert record["metrics"] == reference["metrics"]


def test_collapsed_image_embeddings_carry_a_warning(tmp_path, minidata_root):
    record, _ = run_task(tmp_path, "flickr30k_retrieval", minidata_root, model=PixelStatsModel(collapse=True))
    assert any("image embeddings are collapsed" in w for w in record["warnings"])
    healthy, _ = run_task(tmp_path / "healthy", "flickr30k_retrieval", minidata_root)
    assert healthy["warnings"] == []


def test_limit_keeps_images_with_all_their_captions(tmp_path, minidata_root):
    record, samples = run_task(tmp_path, "coco_retrieval", minidata_root, limit=3)
    assert len(samples) == 3 and all(len(s["t2i_ranks"]) == 5 for s in samples)
    assert all(1 <= s["i2t_rank"] <= 15 and max(s["t2i_ranks"]) <= 3 for s in samples)


def test_task_with_an_open_clip_checkpoint_ranks_like_open_clip_itself(tiny_open_clip, minidata_root, tmp_path):
    """The runner, our model and the blocked ranking against open_clip's encoders plus a full similarity matrix."""
    import open_clip
    import torch
    from PIL import Image

    from coca_bench.model.config import PreprocessConfig
    from coca_bench.model.preprocess import build_preprocess
    from coca_bench.results import ResultStore
    from coca_bench.runner import RunConfig, run_suite
    from coca_bench.settings import RunSettings

    reference, weights = tiny_open_clip
    settings = RunSettings(device="cpu", num_workers=0, progress=False, cache_dir=tmp_path / "cache")
    config = RunConfig(tasks="flickr30k_retrieval", checkpoints=[f"ref=open_clip:coca_tiny_test:{weights}"],
                       data_root=minidata_root, output=tmp_path / "out", settings=settings)  # fmt: skip
    run_suite(config)
    samples = ResultStore(tmp_path / "out").samples("ref", "flickr30k_retrieval")

    items = [i for i in json.loads((minidata_root / "flickr30k" / "dataset_flickr30k.json").read_text())["images"]
             if i["split"] == "test"]  # fmt: skip
    preprocess = build_preprocess(PreprocessConfig(image_size=64))
    folder = minidata_root / "flickr30k" / "flickr30k-images"
    captions = [(k, s["raw"].strip()) for k, i in enumerate(items) for s in i["sentences"]]
    with torch.no_grad():
        pixels = torch.stack([preprocess(Image.open(folder / i["filename"]).convert("RGB")) for i in items])
        images = reference.encode_image(pixels, normalize=True).numpy()
        tokens = open_clip.get_tokenizer("coca_tiny_test")([c for _, c in captions])
        texts = reference.encode_text(tokens, normalize=True).numpy()
    owner = np.array([k for k, _ in captions])
    i2t, t2i = brute_force_ranks(images, texts, owner)
    assert [s["i2t_rank"] for s in samples] == i2t
    assert [r for s in samples for r in s["t2i_ranks"]] == t2i
    sims = images @ texts.T
    for row, sample in zip(sims, samples):  # the same top 5; two texts within float rounding may swap places
        reference_top5 = np.argsort(-row, kind="stable")[:5]
        assert np.allclose(row[sample["top5_texts"]], row[reference_top5], rtol=0, atol=1e-6)
