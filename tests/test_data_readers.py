"""Readers of the official dataset formats: records from the mini data, and clear errors on bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from coca_bench.data import (
    AnnotationFormatError,
    DatasetLayoutError,
    DatasetNotFoundError,
    imagenet_wnids,
    read_coco_captions,
    read_coco_val_captions,
    read_imagenet,
    read_karpathy,
    read_kinetics,
    read_msrvtt,
    read_nocaps,
    read_vqa,
)
from coca_bench.data.imagenet import IMAGENET_WNIDS_FILE


def _copy_json(source: Path, target: Path, edit) -> Path:
    payload = json.loads(source.read_text())
    edit(payload)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload))
    return target


def _error_names(excinfo: pytest.ExceptionInfo, path: Path, *fragments: str) -> None:
    message = str(excinfo.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message


# ---------------------------------------------------------------------------------------------
# ImageNet


def test_bundled_wnids_are_the_standard_sorted_imagenet_1k_list() -> None:
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 == len(set(wnids))
    assert list(wnids) == sorted(wnids)
    assert all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    assert wnids[0] == "n01440764"  # tench
    assert wnids[999] == "n15075141"  # toilet tissue
    assert wnids[442] == "n02825657"  # bell cote (CLIP: "bell tower")


def test_imagenet_mini_val_reads_every_class_in_official_order(minidata_root: Path) -> None:
    records = read_imagenet(minidata_root / "imagenet")
    assert len(records) == 40
    assert records.class_names[:2] == ("red circle", "green square")
    assert records.present_labels == tuple(range(8))
    assert records.annotation_files == (minidata_root / "imagenet" / "LOC_synset_mapping.txt", IMAGENET_WNIDS_FILE)
    assert len({s.id for s in records}) == 40
    for sample in records:
        assert sample.path.is_file()
        assert records.class_ids[sample.label] == sample.path.parent.name
    assert [s.path.name for s in records] == sorted(s.path.name for s in records)
    assert len({s.label for s in records.head(10)}) >= 4  # a --limit prefix is not a single class
    assert len(read_imagenet(minidata_root / "imagenet", split="train")) == 32


def test_imagenet_subset_keeps_the_full_label_space(minidata_root: Path) -> None:
    records = read_imagenet(minidata_root / "imagenet_subset")
    assert len(records.class_names) == 8
    assert records.present_labels == (1, 4, 6)
    assert {s.label for s in records} == {1, 4, 6}

    wnids = records.class_ids
    chosen = read_imagenet(minidata_root / "imagenet", classes=[wnids[3], wnids[5]])
    assert chosen.present_labels == (3, 5) and len(chosen) == 10
    with pytest.raises(ValueError, match="n99999999"):
        read_imagenet(minidata_root / "imagenet", classes=["n99999999"])


def test_imagenet_without_mapping_uses_standard_wnids_and_clip_names(tmp_path: Path) -> None:
    for wnid, name in (("n01440764", "a.JPEG"), ("n15075141", "b.JPEG")):
        (tmp_path / "val" / wnid).mkdir(parents=True)
        (tmp_path / "val" / wnid / name).write_bytes(b"not decoded by the reader")
    records = read_imagenet(tmp_path)
    assert [s.label for s in records] == [0, 999]
    assert records.present_labels == (0, 999)
    assert len(records.class_names) == 1000
    assert records.class_names[0] == "tench" and records.class_names[999] == "toilet paper"
    assert records.annotation_files == (IMAGENET_WNIDS_FILE,)


def test_imagenet_layout_errors_say_what_is_expected(tmp_path: Path, minidata_root: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as excinfo:
        read_imagenet(tmp_path / "nowhere")
    _error_names(excinfo, tmp_path / "nowhere", "<split>/<wnid>/<image>")

    (tmp_path / "flat" / "val").mkdir(parents=True)
    (tmp_path / "flat" / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"x")
    with pytest.raises(DatasetLayoutError, match="holds 1 images directly"):
        read_imagenet(tmp_path / "flat")

    root = tmp_path / "stray"
    shutil.copytree(minidata_root / "imagenet_subset", root)
    (root / "val" / "n01440764").mkdir()
    with pytest.raises(DatasetLayoutError) as excinfo:
        read_imagenet(root)
    _error_names(excinfo, root / "val", "n01440764", "LOC_synset_mapping.txt")


def test_malformed_synset_mapping_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "val" / "n90000000").mkdir(parents=True)
    mapping = tmp_path / "LOC_synset_mapping.txt"
    mapping.write_text("n90000000 red circle\nn90000001\n")
    with pytest.raises(AnnotationFormatError) as excinfo:
        read_imagenet(tmp_path)
    _error_names(excinfo, mapping, "line 2", "Kaggle")


# ---------------------------------------------------------------------------------------------
# Karpathy, COCO captions, NoCaps


def test_karpathy_coco_and_flickr_test_splits(minidata_root: Path) -> None:
    coco = read_karpathy(minidata_root / "coco", "coco")
    assert len(coco) == 25 and coco.split == "test"
    assert all(len(item.captions) == 5 and item.path.is_file() for item in coco)
    assert coco.items[0].path.name == f"COCO_val2014_{int(coco.items[0].id):012d}.jpg"
    assert coco.annotation_files == (minidata_root / "coco" / "dataset_coco.json",)
    assert len(read_karpathy(minidata_root / "coco", "coco", split="val")) == 5

    flickr = read_karpathy(minidata_root / "flickr30k", "flickr30k")
    assert len(flickr) == 20
    assert all(item.path.parent.name == "flickr30k-images" and item.path.is_file() for item in flickr)
    assert all(item.id == item.path.stem for item in flickr)

    with pytest.raises(ValueError, match=r"no images in split 'testing'.*'test'"):
        read_karpathy(minidata_root / "coco", "coco", split="testing")


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda p: p["images"][3].pop("sentences"), ("images[3] has no key 'sentences'", "Karpathy split format")),
        (lambda p: p["images"][0].__setitem__("filename", 5), ("images[0].filename is an integer",)),
        (lambda p: p["images"][2]["sentences"][1].pop("raw"), ("images[2].sentences[1] has no key 'raw'",)),
        (lambda p: p.pop("images"), ("the top level has no key 'images'",)),
    ],
)
def test_malformed_karpathy_file_names_file_and_key(minidata_root: Path, tmp_path: Path, edit, fragments) -> None:
    target = _copy_json(minidata_root / "coco" / "dataset_coco.json", tmp_path / "dataset_coco.json", edit)
    with pytest.raises(AnnotationFormatError) as excinfo:
        read_karpathy(tmp_path, "coco")
    _error_names(excinfo, target, *fragments)


def test_invalid_json_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "dataset_flickr30k.json").write_text('{"images": [')
    with pytest.raises(AnnotationFormatError) as excinfo:
        read_karpathy(tmp_path, "flickr30k")
    _error_names(excinfo, tmp_path / "dataset_flickr30k.json", "not valid JSON")


def test_missing_annotation_file_says_which_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as excinfo:
        read_karpathy(tmp_path, "coco")
    _error_names(excinfo, tmp_path / "dataset_coco.json")


def test_coco_caption_annotations_match_the_karpathy_captions(minidata_root: Path) -> None:
    karpathy = read_karpathy(minidata_root / "coco", "coco")
    everything = read_coco_val_captions(minidata_root / "coco")
    assert len(everything) == 30  # Karpathy test + val: both come from val2014
    test_only = read_coco_val_captions(minidata_root / "coco", image_ids=[int(item.id) for item in karpathy])
    assert [(i.id, i.path, i.captions) for i in test_only] == [(i.id, i.path, i.captions) for i in karpathy]
    with pytest.raises(ValueError, match="no images with id"):
        read_coco_val_captions(minidata_root / "coco", image_ids=[123456789])


def test_coco_caption_for_an_unknown_image_is_a_format_error(minidata_root: Path, tmp_path: Path) -> None:
    target = _copy_json(
        minidata_root / "coco" / "annotations" / "captions_val2014.json",
        tmp_path / "captions.json",
        lambda p: p["annotations"][4].__setitem__("image_id", -1),
    )
    with pytest.raises(AnnotationFormatError) as excinfo:
        read_coco_captions(target, tmp_path)
    _error_names(excinfo, target, "annotations[4].image_id -1")


def test_nocaps_domains_and_captions(minidata_root: Path, tmp_path: Path) -> None:
    records = read_nocaps(minidata_root / "nocaps")
    assert len(records) == 18
    assert sorted({item.domain for item in records}) == ["in-domain", "near-domain", "out-domain"]
    assert all(len(item.captions) == 7 and item.path.is_file() for item in records)

    target = _copy_json(
        minidata_root / "nocaps" / "nocaps_val_4500_captions.json",
        tmp_path / "nocaps_val_4500_captions.json",
        lambda p: p["images"][2].__setitem__("domain", "elsewhere"),
    )
    with pytest.raises(AnnotationFormatError) as excinfo:
        read_nocaps(tmp_path)
    _error_names(excinfo, target, "images[2].domain", "elsewhere")


# ---------------------------------------------------------------------------------------------
# VQA v2


def test_vqa_questions_join_their_answers(minidata_root: Path) -> None:
    records = read_vqa(minidata_root / "vqav2")
    assert len(records) == 48 and records.has_answers
    assert len(records.annotation_files) == 2
    for question in records:
        assert len(question.answers) == 10
        assert question.answer_type in {"yes/no", "number", "other"}
        assert question.multiple_choice_answer in question.answers
        assert question.image_path.is_file()
        assert question.question_id // 1000 == question.image_id


def test_vqa_test_split_has_no_answers_and_uses_test2015_images(minidata_root: Path, tmp_path: Path) -> None:
    _copy_json(
        minidata_root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json",
        tmp_path / "v2_OpenEnded_mscoco_test-dev2015_questions.json",
        lambda p: None,
    )
    records = read_vqa(tmp_path, split="test-dev2015")
    assert not records.has_answers and len(records) == 48
    assert all(q.answers == () and q.answer_type is None for q in records)
    assert records.items[0].image_path.parent == tmp_path / "test2015"
    assert records.items[0].image_path.name.startswith("COCO_test2015_")

    with pytest.raises(DatasetNotFoundError, match="v2_mscoco_val2014_annotations.json"):
        _copy_json(
            minidata_root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json",
            tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json",
            lambda p: None,
        )
        read_vqa(tmp_path, split="val2014")


def test_malformed_vqa_annotations_name_file_and_key(minidata_root: Path, tmp_path: Path) -> None:
    shutil.copy(minidata_root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json", tmp_path)
    target = _copy_json(
        minidata_root / "vqav2" / "v2_mscoco_val2014_annotations.json",
        tmp_path / "v2_mscoco_val2014_annotations.json",
        lambda p: p["annotations"][5].pop("answers"),
    )
    with pytest.raises(AnnotationFormatError) as excinfo:
        read_vqa(tmp_path)
    _error_names(excinfo, target, "annotations[5] has no key 'answers'", "VQA v2 annotations format")

    _copy_json(minidata_root / "vqav2" / "v2_mscoco_val2014_annotations.json", target, lambda p: p["annotations"].pop())
    with pytest.raises(AnnotationFormatError, match="has no annotation for question_id"):
        read_vqa(tmp_path)


# ---------------------------------------------------------------------------------------------
# MSR-VTT and Kinetics


def test_msrvtt_1k_a_and_full_splits(minidata_root: Path) -> None:
    one_k = read_msrvtt(minidata_root / "msrvtt", "1k-A")
    full = read_msrvtt(minidata_root / "msrvtt", "full")
    assert len(one_k) == len(full) == 10
    assert all(len(item.captions) == 1 for item in one_k)
    assert all(len(item.captions) == 5 and item.path.is_file() for item in full)
    assert {item.id for item in full} == {item.id for item in one_k}  # the train videos are left out
    full_captions = {item.id: item.captions for item in full}
    assert all(item.captions[0] in full_captions[item.id] for item in one_k)
    with pytest.raises(ValueError, match="Unknown MSR-VTT split"):
        read_msrvtt(minidata_root / "msrvtt", "7k")


def test_msrvtt_csv_without_a_column_names_the_column(tmp_path: Path) -> None:
    (tmp_path / "MSRVTT_JSFUSION_test.csv").write_text("key,vid_key,video\nret0,msr7010,video7010\n")
    with pytest.raises(AnnotationFormatError) as excinfo:
        read_msrvtt(tmp_path)
    _error_names(excinfo, tmp_path / "MSRVTT_JSFUSION_test.csv", "'video_id'", "'sentence'")


def test_kinetics_splits_share_the_label_space(minidata_root: Path) -> None:
    val = read_kinetics(minidata_root / "kinetics", "val")
    assert len(val) == 36
    assert val.class_ids == (
        "circle growing", "circle moving left", "circle moving up", "square growing", "square moving left",
        "square moving up",
    )  # fmt: skip
    assert val.present_labels == tuple(range(6))
    for clip in val:
        assert clip.path.is_file()
        assert clip.path.parent.name == val.class_names[clip.label]
        assert clip.path.name == f"{clip.youtube_id}_{clip.time_start:06d}_{clip.time_end:06d}.mp4"
    train = read_kinetics(minidata_root / "kinetics", "train", classes=val.class_ids)
    assert len(train) == 36 and train.class_ids == val.class_ids


def test_kinetics_flat_layout_and_bad_rows(minidata_root: Path, tmp_path: Path) -> None:
    (tmp_path / "annotations").mkdir()
    shutil.copy(minidata_root / "kinetics" / "annotations" / "val.csv", tmp_path / "annotations")
    (tmp_path / "val").mkdir()
    for clip in (minidata_root / "kinetics" / "val").glob("*/*.mp4"):
        shutil.copy(clip, tmp_path / "val" / clip.name)
    flat = read_kinetics(tmp_path, "val")
    assert all(clip.path.parent == tmp_path / "val" and clip.path.is_file() for clip in flat)

    with pytest.raises(AnnotationFormatError, match="line 2 has label .* not one of the given classes"):
        read_kinetics(tmp_path, "val", classes=["growing"])
    csv_path = tmp_path / "annotations" / "val.csv"
    lines = csv_path.read_text().splitlines()
    label, youtube_id, _, end, split = lines[3].split(",")
    lines[3] = ",".join([label, youtube_id, "soon", end, split])
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationFormatError) as excinfo:
        read_kinetics(tmp_path, "val")
    _error_names(excinfo, csv_path, "line 4 time_start is 'soon'")


def test_head_keeps_metadata(minidata_root: Path) -> None:
    records = read_kinetics(minidata_root / "kinetics", "val")
    head = records.head(3)
    assert len(head) == 3 and head.items == records.items[:3]
    assert head.class_ids == records.class_ids and head.annotation_files == records.annotation_files
    assert records.head(None) is records


def test_importing_the_data_layer_does_not_import_torch_or_decoders() -> None:
    import subprocess
    import sys

    code = "import sys, coca_bench.data; print(sorted(m for m in ('torch', 'open_clip', 'av', 'decord') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_imagenet_class_folders_named_by_index_take_the_index_as_the_label(tmp_path):
    """ImageNet-V2 ships folders 0..999: folder "10" is label 10, never the third name in alphabetical order."""
    from coca_bench.data import DatasetLayoutError, read_imagenet
    from coca_bench.data.imagenet import imagenet_wnids

    for index in ("0", "2", "10"):
        (tmp_path / "v2" / index).mkdir(parents=True)
        (tmp_path / "v2" / index / f"img{index}.jpeg").write_bytes(b"x")
    records = read_imagenet(tmp_path, "v2")
    assert sorted((s.id, s.label) for s in records.items) == [("0/img0", 0), ("10/img10", 10), ("2/img2", 2)]
    assert records.present_labels == (0, 2, 10) and len(records.class_names) == 1000
    assert [s.label for s in read_imagenet(tmp_path, "v2", classes=[imagenet_wnids()[10]]).items] == [10]
    (tmp_path / "v2" / "1000").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"\['1000'\].*0\.\.999"):
        read_imagenet(tmp_path, "v2")


def test_image_files_are_the_visible_image_files_of_a_folder_sorted_by_name(tmp_path):
    """The one rule every folder-scanning reader applies (ImageNet, ImageFolder, ObjectNet)."""
    from coca_bench.data.files import image_files

    for name in ("b.JPEG", "a.png", "c.Jpg", "._a.png", ".hidden.jpg", "notes.txt", "d.webp"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()  # a folder named like an image is not one
    assert [p.name for p in image_files(tmp_path)] == ["a.png", "b.JPEG", "c.Jpg", "d.webp"]
