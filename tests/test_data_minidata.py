"""The mini-dataset generator: determinism, atomic caching, and truth of every label against the pixels."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coca_bench.data import minidata
from coca_bench.data.minidata import all_mini_datasets, default_data_root, generate_minidata
from coca_bench.data.scenes import COLOURS, NOVEL_SHAPES, POSITION_PHRASES, SHAPES
from coca_bench.data.video import read_frames


@pytest.fixture(scope="session")
def ground_truth(minidata_root: Path) -> dict:
    return json.loads((minidata_root / "ground_truth.json").read_text())


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _colour_distance(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).max())


def _nearest_colour(rgb) -> str:
    return min(COLOURS, key=lambda name: _colour_distance(rgb, COLOURS[name]))


def _foreground(pixels: np.ndarray, background) -> np.ndarray:
    """Pixels clearly different from the (gradient-shaded) background: the shapes."""
    return np.abs(pixels.astype(int) - np.asarray(background)).max(axis=-1) > 60


def _count_blobs(mask: np.ndarray) -> int:
    """4-connected components, ignoring specks of JPEG noise."""
    seen = np.zeros_like(mask, dtype=bool)
    blobs = 0
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        size, queue = 0, deque([(y, x)])
        seen[y, x] = True
        while queue:
            cy, cx = queue.popleft()
            size += 1
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        blobs += size >= 20
    return blobs


# ---------------------------------------------------------------------------------------------
# Determinism, caching, atomicity


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(minidata_root: Path, tmp_path: Path) -> None:
    again = generate_minidata(tmp_path / "again", seed=0)
    first, second = _digests(minidata_root), _digests(again)
    assert len(first) > 200
    assert any(name.endswith(".mp4") for name in first) and any(name.endswith(".jpg") for name in first)
    assert first == second

    other = _digests(generate_minidata(tmp_path / "other", seed=1))
    differing = [name for name in first if name in other and other[name] != first[name]]
    assert any(name.endswith(".mp4") for name in differing)
    assert any(name.endswith("dataset_coco.json") for name in differing)


def test_every_dataset_folder_and_the_readme_exist(minidata_root: Path) -> None:
    for dataset in all_mini_datasets():
        assert (minidata_root / dataset).is_dir(), dataset
    assert "official layout" in (minidata_root / "README.md").read_text()


def test_generate_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_minidata(tmp_path / "root")
    assert (tmp_path / "root" / "keep.txt").read_text() == "mine"


def test_a_crash_during_generation_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(self, rng):
        raise RuntimeError("disk full")

    monkeypatch.setattr(minidata._MiniDataWriter, "vqav2", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_minidata(tmp_path / "root")
    assert list(tmp_path.iterdir()) == []


def test_default_data_root_generates_once_under_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_generate(root: Path, seed: int = 0) -> Path:
        calls.append((root, seed))
        root.mkdir(parents=True)
        return root

    monkeypatch.setenv("COCA_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(minidata, "generate_minidata", fake_generate)
    expected = tmp_path / "cache" / "minidata" / f"v{minidata.GENERATOR_VERSION}-seed3"
    assert default_data_root(seed=3) == expected
    assert default_data_root(seed=3) == expected
    assert calls == [(expected, 3)]


def test_default_data_root_accepts_losing_the_race(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def other_process_won(root: Path, seed: int = 0) -> Path:
        root.mkdir(parents=True)  # the winner's complete copy
        raise FileExistsError(f"{root} was created by another process while generating.")

    monkeypatch.setenv("COCA_BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(minidata, "generate_minidata", other_process_won)
    assert default_data_root().is_dir()


# ---------------------------------------------------------------------------------------------
# Content truth: pixels agree with the recorded scenes, and labels/captions/answers with both


def test_every_image_shows_its_recorded_shapes(minidata_root: Path, ground_truth: dict) -> None:
    images = {name: scene for name, scene in ground_truth.items() if not name.endswith(".mp4")}
    assert len(images) > 150
    for name, scene in images.items():
        pixels = np.asarray(Image.open(minidata_root / name).convert("RGB"))
        size = pixels.shape[0]
        for shape in scene["shapes"]:
            x, y = (int(c * size) for c in shape["centre"])
            assert _colour_distance(pixels[y, x], COLOURS[shape["colour"]]) < 40, (name, shape)
        assert _colour_distance(pixels[size // 2, 1], scene["background"]) < 20, name
        assert _count_blobs(_foreground(pixels, scene["background"])) == len(scene["shapes"]), name


def test_imagenet_class_names_match_the_dominant_colour(minidata_root: Path) -> None:
    names = dict(
        line.split(" ", 1) for line in (minidata_root / "imagenet/LOC_synset_mapping.txt").read_text().splitlines()
    )
    checked = 0
    for path in sorted((minidata_root / "imagenet/val").glob("*/*.JPEG")):
        pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
        saturated = pixels[(pixels.max(axis=1) - pixels.min(axis=1)) > 100]
        colours = [_nearest_colour(p) for p in saturated[:: max(1, len(saturated) // 50)]]
        dominant = max(set(colours), key=colours.count)
        assert names[path.parent.name].split()[0] == dominant, path
        checked += 1
    assert checked == 40


def test_vqa_answers_are_true_of_the_image(minidata_root: Path, ground_truth: dict) -> None:
    root = minidata_root / "vqav2"
    questions = {
        q["question_id"]: q
        for q in json.loads((root / "v2_OpenEnded_mscoco_val2014_questions.json").read_text())["questions"]
    }
    annotations = json.loads((root / "v2_mscoco_val2014_annotations.json").read_text())["annotations"]
    seen_types = set()
    for annotation in annotations:
        question = questions[annotation["question_id"]]
        name = f"vqav2/val2014/COCO_val2014_{question['image_id']:012d}.jpg"
        scene = ground_truth[name]
        shapes = scene["shapes"]
        text, answer = question["question"], annotation["multiple_choice_answer"]
        assert len(annotation["answers"]) == 10
        assert [a["answer_id"] for a in annotation["answers"]] == list(range(1, 11))
        seen_types.add(annotation["answer_type"])
        if text == "How many shapes are there?":
            pixels = np.asarray(Image.open(minidata_root / name).convert("RGB"))
            assert int(answer) == _count_blobs(_foreground(pixels, scene["background"])) == len(shapes)
            assert {a["answer"] for a in annotation["answers"]} <= {
                answer,
                ["zero", "one", "two", "three", "four"][int(answer)],
            }
        elif match := re.fullmatch(r"How many (\w+) shapes are in the picture\?", text):
            assert int(answer) == sum(s["colour"] == match[1] for s in shapes)
        elif match := re.fullmatch(r"What color is the (\w+)\?", text):
            assert [s["colour"] for s in shapes if s["kind"] == match[1]] == [answer]
        elif match := re.fullmatch(r"What shape is (.+)\?", text):
            position = next(p for p, phrase in POSITION_PHRASES.items() if phrase == match[1])
            assert [s["kind"] for s in shapes if s["position"] == position] == [answer]
        elif match := re.fullmatch(r"Is there an? (\w+) (\w+)\?", text):
            present = any(s["colour"] == match[1] and s["kind"] == match[2] for s in shapes)
            assert answer == ("yes" if present else "no")
        else:
            pytest.fail(f"unexpected question {text!r}")
    assert seen_types == {"yes/no", "number", "other"}


def test_captions_only_name_colours_shapes_and_places_that_are_in_the_image(
    minidata_root: Path, ground_truth: dict
) -> None:
    karpathy = json.loads((minidata_root / "coco/dataset_coco.json").read_text())
    nocaps = json.loads((minidata_root / "nocaps/nocaps_val_4500_captions.json").read_text())
    captioned = [
        (f"coco/{im['filepath']}/{im['filename']}", [s["raw"] for s in im["sentences"]]) for im in karpathy["images"]
    ]
    by_id = {im["id"]: im["file_name"] for im in nocaps["images"]}
    for annotation in nocaps["annotations"]:
        captioned.append((f"nocaps/validation/{by_id[annotation['image_id']]}", [annotation["caption"]]))
    for name, captions in captioned:
        shapes = ground_truth[name]["shapes"]
        for caption in captions:
            words = set(re.findall(r"[a-z]+", caption.lower()))
            assert words & set(COLOURS) <= {s["colour"] for s in shapes}, (name, caption)
            assert words & set(SHAPES + NOVEL_SHAPES) <= {s["kind"] for s in shapes}, (name, caption)
            for position, phrase in POSITION_PHRASES.items():
                if phrase in caption.lower():
                    assert position in {s["position"] for s in shapes}, (name, caption)


def test_videos_move_as_their_labels_say(minidata_root: Path, ground_truth: dict) -> None:
    rows = list(csv.DictReader(open(minidata_root / "kinetics/annotations/val.csv")))
    assert {row["label"] for row in rows} == {f"{kind} {motion}" for kind, motion in minidata.KINETICS_CLASSES}
    for row in rows:
        name = f"kinetics/val/{row['label']}/{row['youtube_id']}_{int(row['time_start']):06d}_{int(row['time_end']):06d}.mp4"
        truth = ground_truth[name]
        first, last = read_frames(minidata_root / name, [0, truth["num_frames"] - 1], backend="pyav")
        masks = [_foreground(frame, truth["background"]) for frame in (first, last)]
        (y0, x0), (y1, x1) = (np.argwhere(mask).mean(axis=0) / mask.shape[0] for mask in masks)
        area0, area1 = (mask.sum() for mask in masks)
        expected = {
            "moving left": x1 < x0 - 0.3,
            "moving right": x1 > x0 + 0.3,
            "moving up": y1 < y0 - 0.3,
            "moving down": y1 > y0 + 0.3,
            "growing": area1 > 4 * area0,
            "shrinking": area0 > 4 * area1,
        }
        kind, motion = row["label"].split(" ", 1)
        assert expected[motion] and truth["kind"] == kind, (name, (x0, y0, area0), (x1, y1, area1))
        first_colour = _nearest_colour(first[masks[0]].mean(axis=0))
        assert first_colour == truth["colour"], name


# ---------------------------------------------------------------------------------------------
# Official layouts, field by field


def test_karpathy_file_has_exactly_karpathys_fields(minidata_root: Path) -> None:
    payload = json.loads((minidata_root / "coco/dataset_coco.json").read_text())
    assert payload["dataset"] == "coco"
    images = payload["images"]
    assert {im["split"] for im in images} == {"train", "val", "test"}
    assert sum(im["split"] == "test" for im in images) == 25
    for im in images:
        assert set(im) == {"filepath", "filename", "imgid", "split", "sentids", "cocoid", "sentences"}
        assert im["filename"] == f"COCO_{im['filepath']}_{im['cocoid']:012d}.jpg"
        assert (minidata_root / "coco" / im["filepath"] / im["filename"]).is_file()
        assert len(im["sentences"]) == 5
        assert im["sentids"] == [s["sentid"] for s in im["sentences"]]
        for sentence in im["sentences"]:
            assert set(sentence) == {"tokens", "raw", "imgid", "sentid"}
            assert sentence["imgid"] == im["imgid"]
            assert sentence["tokens"] == re.findall(r"[a-z0-9]+", sentence["raw"].lower())


def test_kinetics_and_msrvtt_files_follow_their_naming(minidata_root: Path) -> None:
    for split in ("train", "val"):
        rows = list(csv.DictReader(open(minidata_root / f"kinetics/annotations/{split}.csv")))
        assert list(rows[0]) == ["label", "youtube_id", "time_start", "time_end", "split"]
        assert {row["split"] for row in rows} == {split}
        for row in rows:
            assert re.fullmatch(r"[A-Za-z0-9_-]{11}", row["youtube_id"])
    data = json.loads((minidata_root / "msrvtt/MSRVTT_data.json").read_text())
    for video in data["videos"]:
        assert set(video) == {"category", "url", "video_id", "start time", "end time", "split", "id"}
        assert (minidata_root / "msrvtt/videos/all" / f"{video['video_id']}.mp4").is_file()
    jsfusion = list(csv.DictReader(open(minidata_root / "msrvtt/MSRVTT_JSFUSION_test.csv")))
    assert list(jsfusion[0]) == ["key", "vid_key", "video_id", "sentence"]
    captions = {(s["video_id"], s["caption"]) for s in data["sentences"]}
    assert all((row["video_id"], row["sentence"]) in captions for row in jsfusion)
