"""Video classification beyond Kinetics-400: the Kinetics-600/-700 variants and Moments in Time, their readers on the
layouts real copies use (csv beside the split folder, ``annotations/``, the download's own folder, flat clips),
malformed files, and what every video classification task records (frames, pooling)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_task

from coca_bench.data import read_kinetics, read_moments
from coca_bench.data.annotations import AnnotationFormatError, DatasetNotFoundError
from coca_bench.data.kinetics import DEEPMIND_ARCHIVE_FOLDERS, KINETICS_ARCHIVE_FOLDERS
from coca_bench.data.mini_video import (
    EVAL_PER_CLASS,
    KINETICS600_CLASSES,
    KINETICS700_CLASSES,
    MOMENTS_CLASSES,
    TRAIN_PER_CLASS,
    moments_class_name,
)
from coca_bench.data.moments import MOMENTS_ARCHIVE_FOLDERS

MOMENTS_RAW = "moments/Moments_in_Time_Raw"


def _one_line(excinfo: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ---------------------------------------------------------------------------------------------
# Kinetics: where the csv and the clips are


def test_kinetics_csv_beside_the_split_folder_with_flat_clips(minidata_root: Path) -> None:
    """The mini Kinetics-600 keeps ``val.csv`` next to ``val/`` (no ``annotations/``) and its clips flat."""
    root = minidata_root / "kinetics600"
    assert not (root / "annotations").exists()
    for split, per_class in (("train", TRAIN_PER_CLASS), ("val", EVAL_PER_CLASS)):
        records = read_kinetics(root, split)
        assert records.annotation_files == (root / f"{split}.csv",)
        assert records.class_ids == tuple(sorted(f"{kind} {motion}" for kind, motion in KINETICS600_CLASSES))
        assert len(records) == per_class * len(KINETICS600_CLASSES)
        assert all(clip.path.parent == root / split and clip.path.is_file() for clip in records)


def test_kinetics_inside_the_cvdf_download_folder(minidata_root: Path) -> None:
    """The mini Kinetics-700 is the folder the CVDF downloader writes: ``k700-2020/annotations/`` and label folders."""
    root = minidata_root / "kinetics700"
    assert [p.name for p in root.iterdir()] == ["k700-2020"]
    records = read_kinetics(root, "val")
    assert records.annotation_files == (root / "k700-2020" / "annotations" / "val.csv",)
    assert len(records) == EVAL_PER_CLASS * len(KINETICS700_CLASSES)
    for clip in records:
        assert clip.path.is_file() and clip.path.parent == root / "k700-2020" / "val" / records.class_ids[clip.label]


def test_kinetics_csv_beside_the_split_inside_a_download_folder(minidata_root: Path, tmp_path: Path) -> None:
    """The CVDF k400 downloader's own layout: ``k400/val.csv`` beside ``k400/val/<label>/``."""
    shutil.copytree(minidata_root / "kinetics" / "val", tmp_path / "k400" / "val")
    shutil.copy(minidata_root / "kinetics" / "annotations" / "val.csv", tmp_path / "k400" / "val.csv")
    records = read_kinetics(tmp_path, "val")
    assert records.annotation_files == (tmp_path / "k400" / "val.csv",)
    assert all(clip.path.is_file() and clip.path.parent.parent == tmp_path / "k400" / "val" for clip in records)


def test_kinetics_without_a_csv_names_every_path_it_tried(tmp_path: Path) -> None:
    (tmp_path / "val").mkdir()
    with pytest.raises(DatasetNotFoundError) as excinfo:
        read_kinetics(tmp_path, "val")
    names = [f"{place}{name}.csv" for name in ("val", "validate") for place in ("annotations/", "")]
    tried = [tmp_path / name for name in names]
    tried += [
        tmp_path / folder / name for folder in (*KINETICS_ARCHIVE_FOLDERS, *DEEPMIND_ARCHIVE_FOLDERS) for name in names
    ]
    _one_line(excinfo, "the Kinetics annotation csv for split 'val'", *map(str, tried))


@pytest.mark.parametrize(("archive", "clips"), [("kinetics400", "val"), ("kinetics700_2020", "validate")])
def test_kinetics_from_deepminds_annotation_archive_with_the_clips_downloaded_beside_it(
    minidata_root: Path, tmp_path: Path, archive: str, clips: str
) -> None:
    """DeepMind's kinetics400.tar.gz unpacks to ``kinetics400/{train,validate,test}.csv``; the download scripts then
    write the clips into ``val/`` (or ``validate/``) beside it, by label."""
    shutil.copytree(minidata_root / "kinetics" / "val", tmp_path / clips)
    (tmp_path / archive).mkdir()
    shutil.copy(minidata_root / "kinetics" / "annotations" / "val.csv", tmp_path / archive / "validate.csv")
    records = read_kinetics(tmp_path, "val")
    reference = read_kinetics(minidata_root / "kinetics", "val")
    assert records.annotation_files == (tmp_path / archive / "validate.csv",)
    assert [c.id for c in records] == [c.id for c in reference] and records.class_ids == reference.class_ids
    assert all(clip.path.is_file() and clip.path.parent.parent == tmp_path / clips for clip in records)


# ---------------------------------------------------------------------------------------------
# Moments in Time


def test_moments_in_the_archive_folder_with_plus_class_names(minidata_root: Path) -> None:
    root = minidata_root / "moments"
    categories = (minidata_root / MOMENTS_RAW / "moments_categories.txt").read_text().splitlines()
    names = [moments_class_name(kind, motion) for kind, motion in MOMENTS_CLASSES]
    assert categories == [f"{name},{index}" for index, name in enumerate(sorted(names))]
    truth = json.loads((minidata_root / "ground_truth.json").read_text())
    for split, csv_name, per_class in (("validation", "validationSet.csv", EVAL_PER_CLASS),
                                       ("training", "trainingSet.csv", TRAIN_PER_CLASS)):  # fmt: skip
        records = read_moments(root, split)
        assert records.class_ids == tuple(sorted(names)) and "circle+moving+up" in records.class_ids
        assert records.class_names == tuple(name.replace("+", " ") for name in records.class_ids)
        assert records.annotation_files[0] == minidata_root / MOMENTS_RAW / csv_name
        assert len(records) == per_class * len(MOMENTS_CLASSES)
        rows = (minidata_root / MOMENTS_RAW / csv_name).read_text().splitlines()
        assert [clip.id for clip in records] == [row.split(",")[0].removesuffix(".mp4") for row in rows]
        for clip in records:
            assert clip.path == minidata_root / MOMENTS_RAW / split / f"{clip.id}.mp4" and clip.path.is_file()
            assert clip.id.split("/")[0] == records.class_ids[clip.label]
            # The label is true of the clip: its shape and its motion.
            recorded = truth[str(clip.path.relative_to(minidata_root))]
            assert records.class_names[clip.label] == f"{recorded['kind']} {recorded['motion']}", (clip.id, recorded)


@pytest.mark.parametrize("layout", ["contents placed directly", "mmaction2: annotations/ and videos/"])
def test_moments_other_layouts(minidata_root: Path, tmp_path: Path, layout: str) -> None:
    source = minidata_root / MOMENTS_RAW
    annotations, videos = (tmp_path, tmp_path) if layout.startswith("contents") else (
        tmp_path / "annotations", tmp_path / "videos")  # fmt: skip
    annotations.mkdir(exist_ok=True)
    for name in ("trainingSet.csv", "validationSet.csv", "moments_categories.txt"):
        shutil.copy(source / name, annotations / name)
    shutil.copytree(source / "validation", videos / "validation")
    records = read_moments(tmp_path, "validation")
    assert records.annotation_files[0] == annotations / "validationSet.csv"
    assert all(clip.path.is_file() and clip.path.is_relative_to(videos / "validation") for clip in records)


def test_moments_without_its_csv_names_every_path_it_tried(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as excinfo:
        read_moments(tmp_path, "training")
    tried = [tmp_path / name for name in ("trainingSet.csv", "annotations/trainingSet.csv")]
    tried += [tmp_path / folder / "trainingSet.csv" for folder in MOMENTS_ARCHIVE_FOLDERS]
    _one_line(excinfo, "the Moments in Time training csv", *map(str, tried))


def _replace_line(path: Path, number: int, new: str | None) -> None:
    """Line ``number`` (1-based) replaced by ``new``, or appended again at the end when ``new`` is None."""
    lines = path.read_text().splitlines()
    if new is None:
        lines.append(lines[number - 1])
    else:
        lines[number - 1] = new
    path.write_text("\n".join(lines) + "\n")


MOMENTS_DAMAGE = {
    "a row with an unknown label": (
        "validationSet.csv", lambda path: _replace_line(path, 2, "dancing/yt-abc_1.mp4,dancing,3,0"),
        ["line 2 has label 'dancing', which is not a class of moments_categories.txt"],
    ),
    "a row without its label column": (
        "validationSet.csv", lambda path: _replace_line(path, 3, "circle+moving+up/yt-abc_1.mp4"),
        ["line 3 has one field, no label"],
    ),
    "a repeated row": (
        "validationSet.csv", lambda path: _replace_line(path, 4, None), ["line 21 repeats the clip", "of line 4"],
    ),
    "a row leading outside the dataset": (
        "validationSet.csv", lambda path: _replace_line(path, 1, "../../../etc/x.mp4,star+shrinking,3,0"),
        ["line 1 filename '../../../etc/x.mp4' leads outside"],
    ),
    "a categories line without an index": (
        "moments_categories.txt", lambda path: _replace_line(path, 2, "circle+shrinking"),
        ["line 2 ('circle+shrinking') is not a class name and an index"],
    ),
    "a category index that is not a number": (
        "moments_categories.txt", lambda path: _replace_line(path, 3, "square+moving+up,two"), ["line 3 index is 'two'"],
    ),
    "a repeated category": (
        "moments_categories.txt", lambda path: _replace_line(path, 5, "square+moving+up,4"),
        ["line 5 repeats the class 'square+moving+up' of line 3"],
    ),
    "a repeated category index": (
        "moments_categories.txt", lambda path: _replace_line(path, 5, "spinning,1"),
        ["line 5 repeats the index 1 of line 2"],
    ),
    "a gap in the category indices": (
        "moments_categories.txt", lambda path: _replace_line(path, 5, "spinning,7"), ["0..4, but 4 is missing"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(MOMENTS_DAMAGE))
def test_malformed_moments_files_are_one_line_errors_naming_file_and_line(
    minidata_root: Path, tmp_path: Path, damage: str
) -> None:
    name, edit, fragments = MOMENTS_DAMAGE[damage]
    root = tmp_path / "moments"
    shutil.copytree(minidata_root / "moments", root)
    path = root / "Moments_in_Time_Raw" / name
    read_moments(root, "validation")  # intact, it reads
    edit(path)
    with pytest.raises(AnnotationFormatError) as excinfo:
        read_moments(root, "validation")
    _one_line(excinfo, str(path), *fragments)


def test_moments_without_its_categories_file(minidata_root: Path, tmp_path: Path) -> None:
    shutil.copytree(minidata_root / "moments", tmp_path / "moments")
    (tmp_path / MOMENTS_RAW / "moments_categories.txt").unlink()
    with pytest.raises(DatasetNotFoundError) as excinfo:
        read_moments(tmp_path / "moments", "validation")
    _one_line(excinfo, str(tmp_path / MOMENTS_RAW / "moments_categories.txt"))


# ---------------------------------------------------------------------------------------------
# The tasks through the runner (a tiny random model: what is recorded, not how well)


@pytest.fixture(scope="module")
def tiny_model():
    from coca_bench.model import load_model

    return load_model("tiny-random-s0")


@pytest.mark.usefixtures("clean_registry")
def test_plus_class_names_reach_the_prompts_as_words(tmp_path, minidata_root, tiny_model, monkeypatch) -> None:
    from coca_bench.features import FeatureExtractor

    prompts: list[str] = []
    embed_texts = FeatureExtractor.embed_texts
    monkeypatch.setattr(FeatureExtractor, "embed_texts", lambda self, texts, **kw: prompts.extend(texts) or
                        embed_texts(self, texts, **kw))  # fmt: skip
    record, samples = run_task(tmp_path, "moments_zeroshot", minidata_root, model=tiny_model, params=["num_frames=2"])
    assert len(samples) == EVAL_PER_CLASS * len(MOMENTS_CLASSES) and record["config"]["extra"]["num_classes"] == 5
    assert "a video of circle moving up." in prompts and "a demonstration of a person star shrinking." in prompts
    assert len(prompts) == 5 * 28 and not any("+" in prompt for prompt in prompts)


VIDEO_CLASSIFICATION_RUNS = {
    "kinetics600_zeroshot": ["num_frames=3"],
    "kinetics700_zeroshot": ["num_frames=3"],
    "moments_zeroshot": ["num_frames=3"],
    "kinetics600_attentive_probe": ["num_frames=3", "epochs=2", "min_steps=0", "num_heads=4"],
    "kinetics700_attentive_probe": ["num_frames=3", "epochs=2", "min_steps=0", "num_heads=4"],
    "moments_attentive_probe": ["num_frames=3", "epochs=2", "min_steps=0", "num_heads=4"],
}


@pytest.mark.usefixtures("clean_registry")
@pytest.mark.parametrize("task", list(VIDEO_CLASSIFICATION_RUNS))
def test_video_classification_tasks_record_frames_and_pooling(tmp_path, minidata_root, tiny_model, task) -> None:
    record, samples = run_task(tmp_path, task, minidata_root, model=tiny_model, params=VIDEO_CLASSIFICATION_RUNS[task])
    extra = record["config"]["extra"]
    assert extra["frames"] == {"num_frames": 3, "mode": "uniform", "backend": "decord"}
    assert record["config"]["params"]["num_frames"] == 3 and all(len(s["frame_indices"]) == 3 for s in samples)
    assert len(samples) == EVAL_PER_CLASS * 5 and extra["num_classes"] == 5
    assert extra["missing_or_unreadable_clips"] == 0
    if task.endswith("zeroshot"):
        assert extra["pooling"] == "mean of normalised frame embeddings, renormalised"
        assert len(record["config"]["key_material"]["templates"]) == 28
    else:
        assert extra["pooler"]["queries"] == 1 and extra["pooler"]["heads"] == 4
        assert extra["train_size"] == TRAIN_PER_CLASS * 5
        assert extra["tokens_per_clip"] == 3 * (1 + (64 // 16) ** 2)  # 3 frames x (cls + patches)
        # The paper's frozen-feature settings: Kinetics' label smoothing 0.1, Moments' none (App. A, Table 9).
        assert record["config"]["params"]["label_smoothing"] == (0.0 if task.startswith("moments") else 0.1)
