"""The ImageNet robustness tasks (CoCa Table 4): the official class lists and mappings, the readers on their shipped
layouts and on malformed input, the label spaces the tasks score over, and parity with open_clip's own pipeline."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from test_runner_imagenet_zeroshot import ColourModel, builtin_tasks  # noqa: F401 (the fixture loads the tasks)

from coca_bench.data import AnnotationFormatError, DatasetLayoutError, DatasetNotFoundError, read_imagenet
from coca_bench.data.imagenet import OFFICIAL_SUBSET_FILES, imagenet_wnids, official_subset_wnids, read_synset_mapping
from coca_bench.data.objectnet import read_objectnet, read_objectnet_mapping
from coca_bench.registry import get_task
from coca_bench.results import ResultStore
from coca_bench.runner import RunConfig, run_suite
from coca_bench.settings import RunSettings

V2_FOLDER = "imagenetv2-matched-frequency-format-val"
ROBUSTNESS_TASKS = ("imagenet_zeroshot", "imagenet_v2_zeroshot", "imagenet_a_zeroshot", "imagenet_r_zeroshot",
                    "imagenet_sketch_zeroshot", "objectnet_zeroshot")  # fmt: skip


def _sha256(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _run(data_root: Path, task: str, *params: str) -> tuple[dict, list[dict]]:
    """``task`` through the real runner with the colour model (images embed as their mean colour, a class name as the
    colour it names: crimson, emerald, azure, amber); returns (record, samples)."""
    settings = RunSettings(device="cpu", num_workers=0, batch_size=4, progress=False, cache_dir=data_root / "cache")
    config = RunConfig(tasks=task, checkpoints=["colour"], data_root=data_root, output=data_root / "out",
                       params=["templates=simple", *params], settings=settings)  # fmt: skip
    (record,) = run_suite(config, load_model=lambda spec, device: ColourModel())
    return record, ResultStore(data_root / "out").samples("colour", task)


def _write_png(path: Path, colour: tuple[int, int, int]) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), colour).save(path)


# ---------------------------------------------------------------------------------------------
# The official 200-class lists


def test_official_200_class_lists_hold_hand_checked_wnids() -> None:
    a, r = official_subset_wnids("imagenet_a"), official_subset_wnids("imagenet_r")
    assert len(a) == len(r) == 200 and a != r
    assert a <= set(imagenet_wnids()) and r <= set(imagenet_wnids())
    assert len(a & r) == 86  # both sources (CLIP_benchmark's lists, Hendrycks' index maps) agree on the overlap
    # ImageNet-A: stingray, American robin, bullfrog, acorn; not tench, common newt, goldfish
    assert {"n01498041", "n01558993", "n01641577", "n12267677"} <= a
    assert not {"n01440764", "n01630670", "n01443537"} & a
    # ImageNet-R: goldfish, common newt, tree frog, acorn; not tench, American robin, bullfrog
    assert {"n01443537", "n01630670", "n01644373", "n12267677"} <= r
    assert not {"n01440764", "n01558993", "n01641577"} & r
    for path in OFFICIAL_SUBSET_FILES.values():
        assert "Source: LAION-AI/CLIP_benchmark" in path.read_text().splitlines()[1]


def test_mini_label_space_uses_real_wnids_split_differently_by_the_two_lists(minidata_root: Path) -> None:
    wnids, names = read_synset_mapping(minidata_root / "imagenet" / "LOC_synset_mapping.txt")
    assert set(wnids) <= set(imagenet_wnids()) and names[0] == "red circle"
    in_a = [label for label, wnid in enumerate(wnids) if wnid in official_subset_wnids("imagenet_a")]
    in_r = [label for label, wnid in enumerate(wnids) if wnid in official_subset_wnids("imagenet_r")]
    assert in_a == [0, 1, 4, 6] and in_r == [0, 2, 5, 6]


def _dominant_colour(path: Path) -> str:
    """The scene colour nearest to most of the image's saturated pixels (ObjectNet's red border left out)."""
    import numpy as np
    from PIL import Image

    from coca_bench.data.scenes import COLOURS

    pixels = np.asarray(Image.open(path).convert("RGB"))[1:-1, 1:-1].reshape(-1, 3).astype(int)
    saturated = pixels[(pixels.max(axis=1) - pixels.min(axis=1)) > 100]
    nearest = [min(COLOURS, key=lambda name: np.abs(p - COLOURS[name]).max()) for p in saturated[::7]]
    return max(set(nearest), key=nearest.count)


def test_styled_mini_images_show_their_class_colour(minidata_root: Path) -> None:
    """The restyled renderings (framing, renditions, sketches, ObjectNet backdrops) keep the class true of the pixels."""
    from coca_bench.data.mini_robustness import OBJECTNET_CLASSES

    checked = 0
    for dataset, pattern in (("imagenet_a", "imagenet-a/*/*.jpg"), ("imagenet_r", "imagenet-r/*/*.jpg"),
                             ("imagenet_sketch", "sketch/*/*.JPEG")):  # fmt: skip
        wnids, names = read_synset_mapping(minidata_root / dataset / "LOC_synset_mapping.txt")
        colour_of = {wnid: name.split()[0] for wnid, name in zip(wnids, names)}
        for path in sorted((minidata_root / dataset).glob(pattern)):
            assert _dominant_colour(path) == colour_of[path.parent.name], path
            checked += 1
    objectnet = read_objectnet_mapping(minidata_root / "objectnet" / "objectnet-1.0")
    imagenet_classes = {objectnet.folder_of[label]: names for label, names in objectnet.imagenet_names.items()}
    for path in sorted((minidata_root / "objectnet" / "objectnet-1.0" / "images").glob("*/*.png")):
        folder = path.parent.name  # a mapped folder shows one of its ImageNet classes; the others, their own
        names = imagenet_classes.get(folder) or [" ".join(shape) for shape in OBJECTNET_CLASSES[folder][1]]
        assert _dominant_colour(path) in {name.split()[0] for name in names}, path
        checked += 1
    assert checked == 24 + 24 + 24 + 14  # A and R: 6 images for each of 4 classes; Sketch 3 for each of 8


# ---------------------------------------------------------------------------------------------
# Readers on the shipped layouts: the archive folder, or its contents placed directly


def _placed_directly(source: Path, archive_folder: str, target: Path) -> Path:
    """A copy of a mini dataset with the archive folder's contents moved up into the dataset folder."""
    shutil.copytree(source, target)
    for entry in (target / archive_folder).iterdir():
        entry.rename(target / entry.name)
    (target / archive_folder).rmdir()
    return target


@pytest.mark.parametrize(
    ("dataset", "archive_folder", "labels"),
    [("imagenet_v2", V2_FOLDER, set(range(8))), ("imagenet_a", "imagenet-a", {0, 1, 4, 6}),
     ("imagenet_r", "imagenet-r", {0, 2, 5, 6}), ("imagenet_sketch", "sketch", set(range(8)))],
)  # fmt: skip
def test_imagenet_style_readers_find_the_archive_folder_or_its_contents(
    minidata_root: Path, tmp_path: Path, dataset: str, archive_folder: str, labels: set[int]
) -> None:
    records = read_imagenet(minidata_root / dataset, archive_folder)
    per_class = 6 if dataset in ("imagenet_a", "imagenet_r") else 3
    assert {s.label for s in records} == labels and len(records) == per_class * len(labels)
    assert len(records.class_names) == 8
    if dataset == "imagenet_v2":  # folders named by label index: the label is the index itself
        assert all(s.label == int(s.path.parent.name) for s in records)
    direct = read_imagenet(
        _placed_directly(minidata_root / dataset, archive_folder, tmp_path / dataset), archive_folder
    )
    assert [(s.id, s.label) for s in direct] == [(s.id, s.label) for s in records]


def test_imagenet_style_reader_names_every_path_it_searched(tmp_path: Path) -> None:
    (tmp_path / "imagenet_a" / "README.txt").parent.mkdir()
    (tmp_path / "imagenet_a" / "README.txt").write_text("not a class folder")
    with pytest.raises(DatasetNotFoundError) as excinfo:
        read_imagenet(tmp_path / "imagenet_a", "imagenet-a")
    message = str(excinfo.value)
    assert str(tmp_path / "imagenet_a" / "imagenet-a") in message and f"and {tmp_path / 'imagenet_a'} (" in message


def test_objectnet_reader_on_the_mini_archive_and_its_contents(minidata_root: Path, tmp_path: Path) -> None:
    records = read_objectnet(minidata_root / "objectnet")
    assert records.class_ids == ("blue_shape", "green_shape", "red_shape", "yellow_star")  # sorted folder names
    assert records.class_names == ("blue shape", "green shape", "red shape", "yellow star")  # ObjectNet labels
    assert len(records) == 12 and records.present_labels == (0, 1, 2, 3)
    assert not {s.path.parent.name for s in records} & {"orange_hexagon", "plus_sign"}  # mapped to no ImageNet class
    assert all(s.path.suffix == ".png" for s in records)
    assert [p.name for p in records.annotation_files] == ["folder_to_objectnet_label.json",
                                                          "objectnet_to_imagenet_1k.json"]  # fmt: skip
    direct = read_objectnet(_placed_directly(minidata_root / "objectnet", "objectnet-1.0", tmp_path / "objectnet"))
    assert [(s.id, s.label) for s in direct] == [(s.id, s.label) for s in records]


def _objectnet(root: Path, folders: dict, mapping: object, images: tuple[str, ...] = ()) -> Path:
    base = root / "objectnet-1.0"
    (base / "mappings").mkdir(parents=True)
    (base / "mappings" / "folder_to_objectnet_label.json").write_text(json.dumps(folders))
    (base / "mappings" / "objectnet_to_imagenet_1k.json").write_text(json.dumps(mapping))
    for folder in images:
        _write_png(base / "images" / folder / "0a1b2c.png", (200, 0, 0))
    (base / "images").mkdir(exist_ok=True)
    return root


def test_objectnet_malformed_input_names_the_file_and_the_key(tmp_path: Path) -> None:
    folders = {"alarm_clock": "Alarm clock", "squeegee": "Squeegee"}
    with pytest.raises(AnnotationFormatError, match=r"objectnet_to_imagenet_1k\.json: the top level is a JSON list"):
        read_objectnet(_objectnet(tmp_path / "a", folders, ["Alarm clock"]))
    with pytest.raises(AnnotationFormatError, match=r"objectnet_to_imagenet_1k\.json: key 'Alarm clock' maps to 3"):
        read_objectnet(_objectnet(tmp_path / "b", folders, {"Alarm clock": 3}))
    with pytest.raises(AnnotationFormatError, match=r"imagenet_1k\.json: key 'Wok' is not a label of folder_to_obj"):
        read_objectnet(_objectnet(tmp_path / "c", folders, {"Wok": "wok"}))
    with pytest.raises(AnnotationFormatError, match=r"folder_to_objectnet_label\.json: key 'clock' repeats label"):
        read_objectnet(_objectnet(tmp_path / "d", {**folders, "clock": "Alarm clock"}, {}))
    with pytest.raises(DatasetLayoutError) as excinfo:
        read_objectnet(_objectnet(tmp_path / "e", folders, {"Alarm clock": "analog clock"}, images=("mop",)))
    assert "['mop']" in str(excinfo.value) and "folder_to_objectnet_label.json" in str(excinfo.value)
    with pytest.raises(DatasetNotFoundError) as excinfo:
        read_objectnet(tmp_path / "a" / "objectnet-1.0" / "images")
    assert str(tmp_path / "a" / "objectnet-1.0" / "images" / "objectnet-1.0") in str(excinfo.value)


def test_the_real_objectnet_mapping_gives_113_classes_named_by_their_objectnet_labels(tmp_path: Path) -> None:
    root = _objectnet(tmp_path / "objectnet", REAL_FOLDER_TO_OBJECTNET_LABEL, REAL_OBJECTNET_TO_IMAGENET_1K,
                      images=("alarm_clock", "drying_rack_for_dishes", "squeegee"))  # fmt: skip
    mapping = read_objectnet_mapping(root / "objectnet-1.0")
    assert len(mapping.folder_of) == 313 and len(mapping.imagenet_names) == 113
    assert mapping.imagenet_names["Alarm clock"] == ("analog clock", "digital clock")
    assert mapping.imagenet_names["Bicycle"] == ("mountain bike, all-terrain bike, off-roader",
                                                 "bicycle-built-for-two, tandem bicycle, tandem")  # fmt: skip
    assert mapping.imagenet_names["Still Camera"] == ("Polaroid camera, Polaroid Land camera", "reflex camera")
    assert mapping.folder_of["Drying rack for plates"] == "drying_rack_for_dishes"
    assert "Squeegee" not in mapping.imagenet_names
    records = read_objectnet(root)
    assert len(records.class_ids) == 113 and list(records.class_ids) == sorted(records.class_ids)
    names = dict(zip(records.class_ids, records.class_names))
    assert names["alarm_clock"] == "alarm clock" and names["drying_rack_for_dishes"] == "drying rack for plates"
    assert names["coffee_french_press"] == "coffee/french press" and "squeegee" not in names
    assert sorted(s.id for s in records) == ["alarm_clock/0a1b2c", "drying_rack_for_dishes/0a1b2c"]


# ---------------------------------------------------------------------------------------------
# The label spaces the tasks score over

# Real wnids: crimson and emerald and amber are in the ImageNet-A list, azure only in the ImageNet-R list.
COLOUR_WNIDS = {"crimson": "n01498041", "emerald": "n01558993", "azure": "n01630670", "amber": "n01641577"}
ORANGE = (255, 150, 0)  # closer to amber than to crimson


def _colour_dataset(root: Path, folders: dict[str, list[tuple[int, int, int]]]) -> None:
    """A LOC_synset_mapping.txt of the four colour classes and ``imagenet-a/<wnid>/`` images of the given colours."""
    root.mkdir(parents=True)
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} {n}\n" for n, w in COLOUR_WNIDS.items()))
    for name, colours in folders.items():
        for i, colour in enumerate(colours):
            _write_png(root / "imagenet-a" / COLOUR_WNIDS[name] / f"{i}.png", colour)


def test_imagenet_a_scores_over_the_official_list_within_the_label_space_even_with_a_folder_missing(tmp_path: Path):
    # No amber folder: amber is still a candidate (the orange image is predicted amber), azure never is.
    _colour_dataset(tmp_path / "imagenet_a", {"crimson": [(255, 0, 0), ORANGE], "emerald": [(0, 255, 0)]})
    record, samples = _run(tmp_path, "imagenet_a_zeroshot")
    assert record["config"]["extra"]["num_classes"] == 3 and record["config"]["extra"]["num_classes_present"] == 2
    scored = [COLOUR_WNIDS[n] for n in ("crimson", "emerald", "amber")]
    assert record["config"]["extra"]["class_ids_sha256"] == _sha256(scored)
    assert record["config"]["extra"]["classnames_sha256"] == _sha256(["crimson", "emerald", "amber"])
    assert sorted((s["id"].split("/")[0], s["pred"]) for s in samples) == sorted(
        [(COLOUR_WNIDS["crimson"], 0), (COLOUR_WNIDS["crimson"], 3), (COLOUR_WNIDS["emerald"], 1)]
    )
    assert record["metrics"]["acc1"] == pytest.approx(2 / 3)

    shutil.rmtree(tmp_path / "out")
    record, samples = _run(tmp_path, "imagenet_a_zeroshot", "label_space=present")
    assert record["config"]["extra"]["num_classes"] == 2 and record["metrics"]["acc1"] == 1.0


def test_the_official_class_list_is_part_of_the_result_key(tmp_path: Path, monkeypatch):
    """The 200-class list decides which classes are scored: an edit to it (a new release of the package data) must
    not be served from a result computed with the old list."""
    from coca_bench.data import imagenet

    _colour_dataset(tmp_path / "imagenet_a", {"crimson": [(255, 0, 0), ORANGE], "emerald": [(0, 255, 0)]})
    wnids = tmp_path / "imagenet_a_wnids.txt"
    wnids.write_text(imagenet.OFFICIAL_SUBSET_FILES["imagenet_a"].read_text())
    monkeypatch.setitem(imagenet.OFFICIAL_SUBSET_FILES, "imagenet_a", wnids)
    imagenet.official_subset_wnids.cache_clear()
    first, _ = _run(tmp_path, "imagenet_a_zeroshot")
    assert first["metrics"]["acc1"] == pytest.approx(2 / 3)  # the orange image goes to amber
    wnids.write_text(wnids.read_text().replace(COLOUR_WNIDS["amber"] + "\n", ""))  # amber leaves the list
    imagenet.official_subset_wnids.cache_clear()
    rerun, _ = _run(tmp_path, "imagenet_a_zeroshot")
    imagenet.official_subset_wnids.cache_clear()
    assert rerun["key"] != first["key"] and rerun["dataset"]["fingerprint"] != first["dataset"]["fingerprint"]
    assert rerun["config"]["extra"]["num_classes"] == 2 and rerun["metrics"]["acc1"] == 1.0


def test_an_image_of_a_class_outside_the_official_list_is_an_error(tmp_path: Path):
    _colour_dataset(tmp_path / "imagenet_a", {"crimson": [(255, 0, 0)], "azure": [(0, 0, 255)]})
    with pytest.raises(DatasetLayoutError) as excinfo:
        _run(tmp_path, "imagenet_a_zeroshot")
    assert f"['{COLOUR_WNIDS['azure']}']" in str(excinfo.value) and "imagenet_a_wnids.txt" in str(excinfo.value)


def test_mini_imagenet_a_keeps_its_four_list_classes_when_a_folder_is_missing(minidata_root: Path, tmp_path: Path):
    shutil.copytree(minidata_root / "imagenet_a", tmp_path / "imagenet_a")
    wnids, _ = read_synset_mapping(tmp_path / "imagenet_a" / "LOC_synset_mapping.txt")
    shutil.rmtree(tmp_path / "imagenet_a" / "imagenet-a" / wnids[6])
    record, _ = _run(tmp_path, "imagenet_a_zeroshot")
    assert record["config"]["extra"]["num_classes"] == 4 and record["config"]["extra"]["num_classes_present"] == 3
    assert record["config"]["extra"]["class_ids_sha256"] == _sha256([wnids[i] for i in (0, 1, 4, 6)])


def test_imagenet_v2_release_picks_the_folder_and_labels_are_folder_indices(tmp_path: Path):
    root = tmp_path / "imagenet_v2"
    root.mkdir()
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} {n}\n" for n, w in COLOUR_WNIDS.items()))
    for index, colour in (("3", (255, 255, 0)), ("0", (255, 0, 0)), ("2", (0, 0, 255))):
        _write_png(root / "imagenetv2-threshold0.7-format-val" / index / "a.jpeg", colour)
    with pytest.raises(DatasetNotFoundError, match="imagenetv2-matched-frequency-format-val"):
        _run(tmp_path, "imagenet_v2_zeroshot")
    record, samples = _run(tmp_path, "imagenet_v2_zeroshot", "release=threshold0.7")
    assert sorted((s["id"], s["label"], s["pred"]) for s in samples) == [("0/a", 0, 0), ("2/a", 2, 2), ("3/a", 3, 3)]
    assert record["config"]["extra"]["num_classes"] == 4 and record["metrics"]["acc1"] == 1.0


def test_objectnet_task_scores_over_the_mapped_classes_by_their_objectnet_names(tmp_path: Path):
    folders = {"red_thing": "Crimson", "leaf": "Emerald", "sky": "Azure", "squeegee": "Squeegee"}
    mapping = {"Crimson": "red circle; red square", "Emerald": "green square", "Azure": "blue triangle"}
    _objectnet(tmp_path / "objectnet", folders, mapping, images=("red_thing", "leaf", "squeegee"))
    _write_png(tmp_path / "objectnet" / "objectnet-1.0" / "images" / "sky" / "9f.png", (0, 0, 255))
    record, samples = _run(tmp_path, "objectnet_zeroshot")
    extra = record["config"]["extra"]
    assert extra["num_classes"] == 3 and extra["class_ids_sha256"] == _sha256(["leaf", "red_thing", "sky"])
    assert extra["classnames_sha256"] == _sha256(["emerald", "crimson", "azure"])
    assert sorted((s["id"], s["label"], s["pred"]) for s in samples) == [
        ("leaf/0a1b2c", 0, 1), ("red_thing/0a1b2c", 1, 1), ("sky/9f", 2, 2)]  # fmt: skip


def test_the_robustness_tasks_form_one_group():
    for name in ROBUSTNESS_TASKS:
        assert "imagenet_robustness" in get_task(name).groups, name
    assert "imagenet_robustness" not in get_task("imagenet_subset_zeroshot").groups


# ---------------------------------------------------------------------------------------------
# Parity with open_clip


def test_imagenet_v2_task_matches_open_clip_pipeline(tiny_open_clip, minidata_root: Path, tmp_path: Path) -> None:
    """imagenet_v2_zeroshot on the mini ImageNet-V2 with an open_clip checkpoint file, against open_clip's classifier
    builder and image encoder, each image labelled int(folder name) as ImageNetV2 defines it."""
    open_clip = pytest.importorskip("open_clip")
    import torch
    from open_clip.zero_shot_classifier import build_zero_shot_classifier
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
    from test_zeroshot_reference import clip_benchmark_accuracy

    from coca_bench.data import load_image
    from coca_bench.model.config import PreprocessConfig
    from coca_bench.model.preprocess import build_preprocess

    reference, weights = tiny_open_clip
    out = tmp_path / "results"
    settings = RunSettings(num_workers=0, device="cpu", progress=False, cache_dir=tmp_path / "features")
    run_suite(RunConfig(tasks="imagenet_v2_zeroshot", checkpoints=[f"ref=open_clip:coca_tiny_test:{weights}"],
                        data_root=minidata_root, output=out, settings=settings))  # fmt: skip
    samples = {s["id"]: s for s in ResultStore(out).samples("ref", "imagenet_v2_zeroshot")}
    record = json.loads((out / "ref" / "imagenet_v2_zeroshot.json").read_text())

    paths = sorted((minidata_root / "imagenet_v2" / V2_FOLDER).glob("*/*.jpeg"))
    labels = torch.tensor([int(path.parent.name) for path in paths])
    _, names = read_synset_mapping(minidata_root / "imagenet_v2" / "LOC_synset_mapping.txt")
    with torch.no_grad():
        classifier = build_zero_shot_classifier(reference, open_clip.get_tokenizer("coca_tiny_test"), list(names),
                                                OPENAI_IMAGENET_TEMPLATES, num_classes_per_batch=4)  # fmt: skip
        preprocess = build_preprocess(PreprocessConfig(image_size=64))
        pixels = torch.stack([preprocess(load_image(path)) for path in paths])
        logits = 100.0 * reference.encode_image(pixels, normalize=True) @ classifier
    assert len(samples) == len(paths) == 24
    for path, label, pred in zip(paths, labels.tolist(), logits.argmax(dim=1).tolist()):
        sample = samples[f"{path.parent.name}/{path.stem}"]
        assert (sample["label"], sample["pred"]) == (label, pred)
    acc1, acc5 = clip_benchmark_accuracy(logits, labels, topk=(1, 5))
    assert record["metrics"]["acc1"] == pytest.approx(acc1) and record["metrics"]["acc5"] == pytest.approx(acc5)
    assert 0 < acc5 < 1, "a degenerate case (all or nothing) would not test the ranking"
    assert len(set(logits.argmax(dim=1).tolist())) > 1, "one class winning everywhere would not test the ranking"


# ---------------------------------------------------------------------------------------------
# The real ObjectNet mapping files

# mlfoundations/wise-ft src/datasets/objectnet_metadata/folder_to_objectnet_label.json (commit 4639a391): the
# archive's objectnet-1.0/mappings file that CLIP_benchmark reads, entries in the file's order.
# fmt: off
REAL_FOLDER_TO_OBJECTNET_LABEL = {
    "squeegee": "Squeegee", "umbrella": "Umbrella", "eyeglasses": "Eyeglasses", "coaster": "Coaster",
    "winter_glove": "Winter glove", "pet_food_container": "Pet food container", "scissors": "Scissors",
    "computer_mouse": "Computer mouse", "still_camera": "Still Camera", "weight_scale": "Weight scale",
    "cutting_board": "Cutting board", "spatula": "Spatula", "plunger": "Plunger", "paper": "Paper",
    "paper_bag": "Paper bag", "microwave": "Microwave", "keyboard": "Keyboard", "standing_lamp": "Standing lamp",
    "chair": "Chair", "mixing_salad_bowl": "Mixing / Salad Bowl", "milk": "Milk", "blender": "Blender",
    "flashlight": "Flashlight", "floss_container": "Floss container", "rake": "Rake", "sandal": "Sandal",
    "book_closed": "Book (closed)", "extension_cable": "Extension cable", "drawer_open": "Drawer (open)", "tv": "TV",
    "backpack": "Backpack", "playing_cards": "Playing cards", "jar": "Jar", "frying_pan": "Frying pan",
    "bench": "Bench", "coffee_grinder": "Coffee grinder", "jam": "Jam", "tape": "Tape / duct tape",
    "dog_bed": "Dog bed", "throw_pillow": "Throw pillow", "orange": "Orange", "speaker": "Speaker",
    "paint_can": "Paint can", "hand_towel_or_rag": "Dishrag or hand towel", "hat": "Hat", "toaster": "Toaster",
    "match": "Match", "plate": "Plate", "ironing_board": "Ironing board", "alarm_clock": "Alarm clock",
    "sunglasses": "Sunglasses", "power_bar": "Power bar", "wine_glass": "Wine glass", "ladle": "Ladle",
    "ruler": "Ruler", "blanket": "Blanket", "contact_lens_case": "Contact lens case", "watch": "Watch",
    "trash_bin": "Trash bin", "vase": "Vase", "oven_mitts": "Oven mitts", "spoon": "Spoon", "thermos": "Thermos",
    "fan": "Fan", "egg_carton": "Egg carton", "lighter": "Lighter", "glue_container": "Glue container",
    "bottle_cap": "Bottle cap", "wallet": "Wallet", "coffee_table": "Coffee table", "nail_clippers": "Nail clippers",
    "cellphone_case": "Cellphone case", "canned_food": "Canned food", "letter_opener": "Letter opener",
    "stapler": "Stapler", "whisk": "Whisk", "tongs": "Tongs", "lettuce": "Lettuce", "shoelace": "Shoelace",
    "button": "Button", "hair_dryer": "Hair dryer", "bracelet": "Bracelet", "spray_bottle": "Spray bottle",
    "laptop_charger": "Laptop charger", "portable_heater": "Portable heater", "suit_jacket": "Suit jacket",
    "dress_shoe_men": "Dress shoe (men)", "rock": "Rock", "water_filter": "Water filter", "earbuds": "Earbuds",
    "biscuits": "Biscuits", "mouthwash": "Mouthwash", "slipper": "Slipper",
    "eraser_white_board": "Eraser (white board)", "bicycle": "Bicycle", "ziploc_bag": "Ziploc bag",
    "dish_soap": "Dish soap", "travel_case": "Travel case", "receipt": "Receipt", "boots": "Boots",
    "sponge": "Sponge", "full_sized_towel": "Bath towel", "flour_container": "Flour container",
    "pill_bottle": "Pill bottle", "candle": "Candle", "calendar": "Calendar", "tweezers": "Tweezers",
    "dvd_player": "DVD player", "plastic_wrap": "Plastic wrap", "ribbon": "Ribbon", "blouse": "Blouse",
    "walking_cane": "Walking cane", "leaf": "Leaf", "lipstick": "Lipstick", "hair_brush": "Hair brush",
    "night_light": "Night light", "kettle": "Kettle", "honey_container": "Honey container", "tarp": "Tarp",
    "ice": "Ice", "drinking_straw": "Drinking straw", "detergent": "Detergent", "mug": "Mug",
    "toilet_paper_roll": "Toilet paper roll", "wok": "Wok", "swimming_trunks": "Swimming trunks",
    "clothes_hamper": "Clothes hamper", "removable_blade": "Removable blade", "shampoo_bottle": "Shampoo bottle",
    "skirt": "Skirt", "loofah": "Loofah", "broom": "Broom", "photograph_printed": "Photograph (printed)",
    "multitool": "Multitool", "makeup": "Makeup", "nail_file": "Nail file", "brooch": "Brooch", "cork": "Cork",
    "coffee_french_press": "Coffee/French press", "toy": "Toy", "thermometer": "Thermometer", "hairclip": "Hairclip",
    "document_folder_closed": "Document folder (closed)", "pliers": "Pliers", "strainer": "Strainer", "comb": "Comb",
    "water_bottle": "Water bottle", "peeler": "Peeler", "monitor": "Monitor", "box": "Box",
    "pill_organizer": "Pill organizer", "stopper_sink_tub": "Stopper (sink/tub)", "walker": "Walker",
    "step_stool": "Step stool", "bills_money": "Bills (money)", "skateboard": "Skateboard",
    "running_shoe": "Running shoe", "coin_money": "Coin (money)", "magazine": "Magazine",
    "drying_rack_for_clothes": "Drying rack for clothes", "toothpaste": "Toothpaste", "paper_towel": "Paper towel",
    "remote_control": "Remote control", "sugar_container": "Sugar container", "dress_pants": "Dress pants",
    "scarf": "Scarf", "dress_shirt": "Dress shirt", "cheese": "Cheese", "can_opener": "Can opener",
    "shovel": "Shovel", "paintbrush": "Paintbrush", "tennis_racket": "Tennis racket", "battery": "Battery",
    "stuffed_animal": "Stuffed animal", "jeans": "Jeans", "tanktop": "Tanktop", "dust_pan": "Dust pan",
    "earring": "Earring", "tomato": "Tomato", "marker": "Marker", "makeup_brush": "Makeup brush", "ring": "Ring",
    "air_freshener": "Air freshener", "tablecloth": "Tablecloth", "teabag": "Teabag", "belt": "Belt",
    "razor": "Razor", "clothes_hanger": "Clothes hanger", "bookend": "Bookend", "sweater": "Sweater", "sock": "Sock",
    "usb_flash_drive": "Usb flash drive", "cellphone_charger": "Cellphone charger", "pepper_shaker": "Pepper shaker",
    "phone_landline": "Phone (landline)", "banana": "Banana", "printer": "Printer", "paperclip": "Paperclip",
    "fork": "Fork", "headphones_over_ear": "Headphones (over ear)", "cooking_oil_bottle": "Cooking oil bottle",
    "deodorant": "Deodorant", "usb_cable": "Usb cable", "shorts": "Shorts", "bread_loaf": "Bread loaf",
    "pillow": "Pillow", "drinking_cup": "Drinking Cup", "envelope": "Envelope", "mouse_pad": "Mouse pad",
    "chopstick": "Chopstick", "t-shirt": "T-shirt", "padlock": "Padlock", "ice_cube_tray": "Ice cube tray",
    "chess_piece": "Chess piece", "cereal": "Cereal", "hairtie": "Hairtie", "teapot": "Teapot",
    "board_game": "Board game", "butchers_knife": "Butcher's knife", "soup_bowl": "Soup Bowl",
    "beer_bottle": "Beer bottle", "nail_polish": "Nail polish", "hand_mirror": "Hand mirror",
    "combination_lock": "Combination lock", "nut_for_screw": "Nut for a screw", "nail_fastener": "Nail (fastener)",
    "figurine_or_statue": "Figurine or statue", "soap_bar": "Soap bar", "bucket": "Bucket",
    "binder_closed": "Binder (closed)", "video_camera": "Video Camera", "baseball_glove": "Baseball glove",
    "tape_measure": "Tape measure", "tissue": "Tissue", "coffee_beans": "Coffee beans", "scrub_brush": "Scrub brush",
    "drill": "Drill", "suitcase": "Suitcase", "newspaper": "Newspaper", "sleeping_bag": "Sleeping bag",
    "dress_shoe_women": "Dress shoe (women)", "trophy": "Trophy", "plastic_bag": "Plastic bag", "doormat": "Doormat",
    "webcam": "Webcam", "rolling_pin": "Rolling pin", "pencil": "Pencil", "table_knife": "Table knife",
    "bread_knife": "Bread knife", "toothbrush": "Toothbrush", "bathrobe": "Bathrobe", "paper_plates": "Paper plates",
    "placemat": "Placemat", "light_bulb": "Light bulb", "soap_dispenser": "Soap dispenser",
    "nightstand": "Nightstand", "pen": "Pen", "squeeze_bottle": "Squeeze bottle", "wheel": "Wheel", "dress": "Dress",
    "helmet": "Helmet", "lemon": "Lemon", "hammer": "Hammer", "lampshade": "Lampshade", "salt_shaker": "Salt shaker",
    "power_cable": "Power cable", "vacuum_cleaner": "Vacuum cleaner", "iron_for_clothes": "Iron (for clothes)",
    "laptop_open": "Laptop (open)", "poster": "Poster", "coffee_machine": "Coffee machine", "tie": "Tie",
    "cd_case": "CD case", "baseball_bat": "Baseball bat", "tablet_ipad": "Tablet / iPad",
    "bottle_opener": "Bottle opener", "briefcase": "Briefcase", "baking_sheet": "Baking sheet", "screw": "Screw",
    "pitcher": "Pitcher", "notepad": "Notepad", "tote_bag": "Tote bag", "raincoat": "Raincoat",
    "necklace": "Necklace", "band_aid": "Band Aid", "notebook": "Notebook", "measuring_cup": "Measuring cup",
    "weight_exercise": "Weight (exercise)", "handbag": "Handbag", "bike_pump": "Bike pump",
    "bottle_stopper": "Bottle stopper", "chocolate": "Chocolate", "safety_pin": "Safety pin",
    "plastic_cup": "Plastic cup", "butter": "Butter", "cellphone": "Cellphone",
    "drying_rack_for_dishes": "Drying rack for plates", "trash_bag": "Trash bag", "tray": "Tray",
    "wine_bottle": "Wine bottle", "whistle": "Whistle", "key_chain": "Key chain", "napkin": "Napkin",
    "desk_lamp": "Desk lamp", "first_aid_kit": "First aid kit", "bed_sheet": "Bed sheet", "beer_can": "Beer can",
    "wrench": "Wrench", "pop_can": "Pop can", "basket": "Basket", "leggings": "Leggings", "egg": "Egg",
    "sewing_kit": "Sewing kit",
}
# fmt: on

# The same folder's objectnet_to_imagenet_1k.json.
# fmt: off
REAL_OBJECTNET_TO_IMAGENET_1K = {
    "Alarm clock": "analog clock; digital clock",
    "Backpack": "backpack, back pack, knapsack, packsack, rucksack, haversack", "Banana": "banana",
    "Band Aid": "Band Aid", "Basket": "shopping basket", "Bath towel": "bath towel", "Beer bottle": "beer bottle",
    "Bench": "park bench",
    "Bicycle": "mountain bike, all-terrain bike, off-roader; bicycle-built-for-two, tandem bicycle, tandem",
    "Binder (closed)": "binder, ring-binder", "Bottle cap": "bottlecap", "Bread loaf": "French loaf",
    "Broom": "broom", "Bucket": "bucket, pail", "Butcher's knife": "cleaver, meat cleaver, chopper",
    "Can opener": "can opener, tin opener", "Candle": "candle, taper, wax light",
    "Cellphone": "cellular telephone, cellular phone, cellphone, cell, mobile phone",
    "Chair": "barber chair; folding chair; rocking chair, rocker", "Clothes hamper": "hamper",
    "Coffee/French press": "espresso maker", "Combination lock": "combination lock",
    "Computer mouse": "mouse, computer mouse", "Desk lamp": "table lamp",
    "Dishrag or hand towel": "dishrag, dishcloth", "Doormat": "doormat, welcome mat", "Dress shoe (men)": "Loafer",
    "Drill": "power drill", "Drinking Cup": "cup", "Drying rack for plates": "plate rack", "Envelope": "envelope",
    "Fan": "electric fan, blower", "Frying pan": "frying pan, frypan, skillet", "Dress": "gown",
    "Hair dryer": "hand blower, blow dryer, blow drier, hair dryer, hair drier", "Hammer": "hammer",
    "Helmet": "football helmet; crash helmet", "Iron (for clothes)": "iron, smoothing iron",
    "Jeans": "jean, blue jean, denim", "Keyboard": "computer keyboard, keypad", "Ladle": "ladle",
    "Lampshade": "lampshade, lamp shade", "Laptop (open)": "laptop, laptop computer", "Lemon": "lemon",
    "Letter opener": "letter opener, paper knife, paperknife", "Lighter": "lighter, light, igniter, ignitor",
    "Lipstick": "lipstick, lip rouge", "Match": "matchstick", "Measuring cup": "measuring cup",
    "Microwave": "microwave, microwave oven", "Mixing / Salad Bowl": "mixing bowl", "Monitor": "monitor",
    "Mug": "coffee mug", "Nail (fastener)": "nail", "Necklace": "necklace", "Orange": "orange", "Padlock": "padlock",
    "Paintbrush": "paintbrush", "Paper towel": "paper towel",
    "Pen": "ballpoint, ballpoint pen, ballpen, Biro; quill, quill pen; fountain pen", "Pill bottle": "pill bottle",
    "Pillow": "pillow", "Pitcher": "pitcher, ewer", "Plastic bag": "plastic bag", "Plate": "plate",
    "Plunger": "plunger, plumber's helper", "Pop can": "pop bottle, soda bottle", "Portable heater": "space heater",
    "Printer": "printer", "Remote control": "remote control, remote", "Ruler": "rule, ruler",
    "Running shoe": "running shoe", "Safety pin": "safety pin", "Salt shaker": "saltshaker, salt shaker",
    "Sandal": "sandal", "Screw": "screw", "Shovel": "shovel",
    "Skirt": "hoopskirt, crinoline; miniskirt, mini; overskirt", "Sleeping bag": "sleeping bag",
    "Soap dispenser": "soap dispenser", "Sock": "sock", "Soup Bowl": "soup bowl", "Spatula": "spatula",
    "Speaker": "loudspeaker, speaker, speaker unit, loudspeaker system, speaker system",
    "Still Camera": "Polaroid camera, Polaroid Land camera; reflex camera", "Strainer": "strainer",
    "Stuffed animal": "teddy, teddy bear", "Suit jacket": "suit, suit of clothes",
    "Sunglasses": "sunglasses, dark glasses, shades", "Sweater": "sweatshirt",
    "Swimming trunks": "swimming trunks, bathing trunks", "T-shirt": "jersey, T-shirt, tee shirt",
    "TV": "television, television system", "Teapot": "teapot", "Tennis racket": "racket, racquet",
    "Tie": "bow tie, bow-tie, bowtie; Windsor tie", "Toaster": "toaster",
    "Toilet paper roll": "toilet tissue, toilet paper, bathroom tissue",
    "Trash bin": "ashcan, trash can, garbage can, wastebin, ash bin, ash-bin, ashbin, dustbin, trash barrel, trash bin",
    "Tray": "tray", "Umbrella": "umbrella", "Vacuum cleaner": "vacuum, vacuum cleaner", "Vase": "vase",
    "Wallet": "wallet, billfold, notecase, pocketbook", "Watch": "digital watch", "Water bottle": "water bottle",
    "Weight (exercise)": "dumbbell", "Weight scale": "scale, weighing machine",
    "Wheel": "car wheel; paddlewheel, paddle wheel", "Whistle": "whistle", "Wine bottle": "wine bottle",
    "Winter glove": "mitten", "Wok": "wok",
}
# fmt: on
