"""Video: frame sampling, pooled embeddings, the video tasks through the runner, open_clip parity, bad clips."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import run_task

from coca_bench.data.video import clip_frame_indices, read_frames

pytestmark = pytest.mark.usefixtures("clean_registry")


def test_frame_indices_for_known_lengths_windows_and_short_clips():
    assert clip_frame_indices(32, 8.0, 4) == [4, 12, 20, 28]  # centres of 4 equal segments
    assert clip_frame_indices(16, 8.0, 16) == list(range(16))
    # shorter than asked: floor((2i + 1) * 5 / 16) repeats frames, in order
    assert clip_frame_indices(5, 8.0, 8) == [0, 0, 1, 2, 2, 3, 4, 4]
    # A trimmed file (its duration matches the window) is sampled whole, whatever the window's offset.
    assert clip_frame_indices(80, 8.0, 4, window=(120.0, 130.0)) == [10, 30, 50, 70]
    # An untrimmed file (10 minutes for a 10 s window) is sampled inside the window only.
    assert clip_frame_indices(4800, 8.0, 4, window=(120.0, 130.0)) == [970, 990, 1010, 1030]
    assert clip_frame_indices(40, 0.0, 2, window=(1.0, 2.0)) == [10, 30]  # unknown fps: the whole file


@pytest.fixture(scope="module")
def tiny_model():
    from coca_bench.model import load_model

    return load_model("tiny-random-s0")


def test_video_embedding_is_the_mean_of_its_frame_embeddings(tmp_path, minidata_root, tiny_model):
    from PIL import Image

    record, samples = run_task(tmp_path, "msrvtt_retrieval", minidata_root, model=tiny_model, params=["num_frames=5"])
    clip = minidata_root / "msrvtt" / "videos" / "all" / f"{samples[0]['id']}.mp4"
    frames = read_frames(clip, samples[0]["frame_indices"], backend="pyav")  # decoded independently
    pixels = torch.stack([tiny_model.preprocess(Image.fromarray(f)) for f in frames])
    per_frame = tiny_model.encode_image(pixels)
    pooled = torch.nn.functional.normalize(per_frame.mean(dim=0), dim=-1)
    from coca_bench.features import FeatureExtractor, FrameSampling
    from coca_bench.settings import RunSettings

    extractor = FeatureExtractor(tiny_model, tmp_path / "cache", RunSettings(device="cpu", num_workers=0))
    ours = extractor.embed_videos([{"id": "v", "path": clip}], FrameSampling(5))
    torch.testing.assert_close(torch.from_numpy(ours.vectors[0]), pooled, atol=1e-5, rtol=1e-5)
    assert ours.frame_indices == [samples[0]["frame_indices"]] and len(samples[0]["frame_indices"]) == 5
    assert record["config"]["extra"]["frames"] == {"num_frames": 5, "mode": "uniform", "backend": "decord"}


def test_msrvtt_retrieval_ranks_like_open_clip_on_the_recorded_frames(tiny_open_clip, minidata_root, tmp_path):
    import open_clip
    from PIL import Image
    from test_retrieval_task import brute_force_ranks

    from coca_bench.model.config import PreprocessConfig
    from coca_bench.model.preprocess import build_preprocess
    from coca_bench.results import ResultStore
    from coca_bench.runner import RunConfig, run_suite
    from coca_bench.settings import RunSettings

    reference, weights = tiny_open_clip
    settings = RunSettings(device="cpu", num_workers=0, progress=False, cache_dir=tmp_path / "cache")
    run_suite(RunConfig(tasks="msrvtt_retrieval", checkpoints=[f"ref=open_clip:coca_tiny_test:{weights}"],
                        data_root=minidata_root, output=tmp_path / "out", params=["split=full", "num_frames=4"],
                        settings=settings))  # fmt: skip
    samples = ResultStore(tmp_path / "out").samples("ref", "msrvtt_retrieval")
    data = json.loads((minidata_root / "msrvtt" / "MSRVTT_data.json").read_text())
    captions = {s["id"]: [c["caption"].strip() for c in data["sentences"] if c["video_id"] == s["id"]] for s in samples}
    preprocess = build_preprocess(PreprocessConfig(image_size=64))
    videos = []
    with torch.no_grad():
        for sample in samples:
            frames = read_frames(minidata_root / "msrvtt" / "videos" / "all" / f"{sample['id']}.mp4",
                                 sample["frame_indices"], backend="pyav")  # fmt: skip
            per_frame = reference.encode_image(torch.stack([preprocess(Image.fromarray(f)) for f in frames]),
                                               normalize=True)  # fmt: skip
            videos.append(torch.nn.functional.normalize(per_frame.mean(0), dim=-1).numpy())
        flat = [(k, c) for k, s in enumerate(samples) for c in captions[s["id"]]]
        texts = reference.encode_text(open_clip.get_tokenizer("coca_tiny_test")([c for _, c in flat]), normalize=True)
    v2t, t2v = brute_force_ranks(np.stack(videos), texts.numpy(), np.array([k for k, _ in flat]))
    assert [s["v2t_rank"] for s in samples] == v2t
    assert [r for s in samples for r in s["t2v_ranks"]] == t2v
    assert len(flat) > len(samples)  # the full split: several captions per video


def test_kinetics_tasks_record_frames_and_the_clip_mean_of_top1_top5(tmp_path, minidata_root, tiny_model):
    record, samples = run_task(tmp_path, "kinetics_zeroshot", minidata_root, model=tiny_model, params=["num_frames=4"])
    assert record["config"]["extra"]["num_classes"] == 6 and len(record["config"]["key_material"]["templates"]) == 28
    metrics = record["metrics"]
    assert metrics["mean_top1_top5"] == pytest.approx((metrics["acc1"] + metrics["acc5"]) / 2)
    assert all(len(s["frame_indices"]) == 4 for s in samples)
    probe, probe_samples = run_task(tmp_path / "p", "kinetics_attentive_probe", minidata_root, model=tiny_model,
                                    params=["num_frames=2", "epochs=5", "min_steps=0"])  # fmt: skip
    assert probe["config"]["params"]["label_smoothing"] == 0.1 and len(probe_samples) == 36
    assert probe["config"]["extra"]["tokens_per_clip"] == 2 * (1 + (64 // 16) ** 2)  # 2 frames x (cls + patches)


def _broken_kinetics(tmp_path, minidata_root):
    root = tmp_path / "data" / "kinetics"
    shutil.copytree(minidata_root / "kinetics", root)
    clips = sorted((root / "val").rglob("*.mp4"))
    clips[0].write_bytes(clips[0].read_bytes()[:300])  # truncated
    clips[1].write_bytes(b"")  # zero-length
    clips[2].write_text("this is not a video\n")  # text under an .mp4 name
    clips[3].unlink()  # missing, as much of real Kinetics is
    return root, clips[:4]


def test_unreadable_and_missing_clips_are_recorded_skips_or_fatal_with_strict(tmp_path, minidata_root, tiny_model):
    from coca_bench.features import FeatureExtractionError

    _, broken = _broken_kinetics(tmp_path, minidata_root)
    record, samples = run_task(tmp_path, "kinetics_zeroshot", tmp_path / "data", model=tiny_model,
                               params=["num_frames=4"])  # fmt: skip
    skipped = {s["id"]: s["reason"] for s in record["skipped"]}
    assert set(skipped) == {p.stem for p in broken} and len(samples) == 36 - 4
    assert all(reason.startswith("unreadable video") for reason in skipped.values())
    assert "file not found" in skipped[broken[3].stem]
    assert record["config"]["extra"]["missing_or_unreadable_clips"] == 4
    with pytest.raises(FeatureExtractionError, match="Cannot read video"):
        run_task(tmp_path / "strict", "kinetics_zeroshot", tmp_path / "data", model=tiny_model, strict=True,
                 params=["num_frames=4"])  # fmt: skip


def test_msrvtt_captioning_records_frames_and_pooling(tmp_path, minidata_root, tiny_model):
    record, samples = run_task(tmp_path, "msrvtt_captioning", minidata_root, model=tiny_model,
                               params=["num_frames=2", "max_new_tokens=6", "pooling=concat"], limit=3)  # fmt: skip
    assert record["config"]["extra"]["pooling"] == "concat" and len(samples) == 3
    assert all(len(s["frame_indices"]) == 2 and isinstance(s["caption"], str) for s in samples)
    data = json.loads((minidata_root / "msrvtt" / "MSRVTT_data.json").read_text())
    for sample in samples:  # every reference of the clip in MSRVTT_data.json (20 on the real full split)
        assert len(sample["reference_tokens"]) == sum(c["video_id"] == sample["id"] for c in data["sentences"]) > 1
