"""Deterministic mini datasets, one per task, each in its dataset's official layout.

They let the whole suite run end to end in seconds with no download, and they
exercise the same readers as the real data. Images and videos are rendered scenes
(:mod:`coca_bench.data.scenes`) whose content is known, so every label, caption and
answer is true of the pixels; a ``ground_truth.json`` at the root records each
file's scene for tests and debugging.

The same seed and generator version give the same bytes (JPEG via Pillow, H.264 via
PyAV with one thread and fixed options), so results on the mini data are
reproducible and cacheable. Generation writes into a temporary sibling folder and
renames it into place, so a crash never leaves half a dataset and two racing
processes both end up with one complete copy.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
import string
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from coca_bench.cache import cache_root
from coca_bench.data import scenes
from coca_bench.data.scenes import COLOURS, MOTIONS, NOVEL_SHAPES, POSITIONS, SHAPES, Scene

GENERATOR_VERSION = 4
IMAGE_SIZE = 128
VIDEO_SIZE = 128
VIDEO_FPS = 8
JPEG_QUALITY = 92

# Colours and shapes of the "common" (COCO-like) world; NoCaps near/out-domain add the others.
COMMON_COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow")
EXTRA_COLOURS: tuple[str, ...] = tuple(c for c in COLOURS if c not in COMMON_COLOURS)
IMAGENET_CLASSES: tuple[tuple[str, str], ...] = (
    ("red", "circle"),
    ("green", "square"),
    ("blue", "triangle"),
    ("yellow", "star"),
    ("blue", "circle"),
    ("red", "square"),
    ("green", "triangle"),
    ("purple", "star"),
)
# Kinetics classes name an object and an action, like the real ones ("juggling balls"). Each pairs a shape with a
# motion, and no class is another's reverse: a frame-wise encoder without temporal order (the paper's video protocol)
# can tell every class apart only by recognising the shape as well as the direction of the motion.
KINETICS_CLASSES: tuple[tuple[str, str], ...] = (
    ("circle", "moving left"),
    ("square", "moving left"),
    ("circle", "moving up"),
    ("square", "moving up"),
    ("circle", "growing"),
    ("square", "growing"),
)
IMAGENET_SUBSET_CLASSES: tuple[int, ...] = (1, 4, 6)  # an ImageNet-A/-R style val folder with 3 of the 8 classes
MINI_DATASETS: tuple[str, ...] = (
    "imagenet",
    "imagenet_subset",
    "coco",
    "flickr30k",
    "nocaps",
    "vqav2",
    "msrvtt",
    "kinetics",
)
# The mini datasets of the paper's other evaluations, one module per family; each module's ``WRITERS`` maps a
# dataset name to ``write(writer, rng)``, appended to MINI_DATASETS in this order.
EXTRA_WRITER_MODULES: tuple[str, ...] = (
    "coca_bench.data.mini_robustness",
    "coca_bench.data.mini_video",
    "coca_bench.data.mini_multimodal",
)


def extra_writers() -> dict[str, Callable[[_MiniDataWriter, np.random.Generator], None]]:
    """The other families' writers by dataset name."""
    import importlib

    writers: dict[str, Callable[[_MiniDataWriter, np.random.Generator], None]] = {}
    for module_name in EXTRA_WRITER_MODULES:
        writers.update(importlib.import_module(module_name).WRITERS)
    return writers


def all_mini_datasets() -> tuple[str, ...]:
    """Every mini dataset's folder name, in generation order."""
    return (*MINI_DATASETS, *extra_writers())


def default_data_root(seed: int = 0) -> Path:
    """The cached mini data root for ``seed``, generated on first use (safe when processes race)."""
    root = cache_root() / "minidata" / f"v{GENERATOR_VERSION}-seed{seed}"
    if not root.is_dir():
        try:
            generate_minidata(root, seed)
        except FileExistsError:
            pass  # another process finished first; its copy is identical
    return root


def generate_minidata(root: Path, seed: int = 0) -> Path:
    """Write every mini dataset under ``root`` (which must not exist yet, or be empty); returns ``root``."""
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists and is not empty; remove it or generate into a new folder.")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        _MiniDataWriter(staging, seed).write_all()
        os.chmod(staging, 0o755)
        if root.is_dir():
            root.rmdir()  # empty, checked above
        os.rename(staging, root)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise FileExistsError(f"{root} was created by another process while generating.") from exc
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def _rng(seed: int, dataset: str) -> np.random.Generator:
    """One independent stream per dataset, so changing one dataset never changes another."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(dataset.encode())]))


def karpathy_tokens(raw: str) -> list[str]:
    """Tokens as in Karpathy's split files: lower case, punctuation dropped."""
    return re.findall(r"[a-z0-9]+", raw.lower())


class _MiniDataWriter:
    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.seed = seed
        self.ground_truth: dict[str, Any] = {}

    # -- file helpers -------------------------------------------------------------------------
    def _path(self, relative: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_image(self, relative: str, scene: Scene) -> None:
        scenes.render_scene(scene, IMAGE_SIZE).save(
            self._path(relative), format="JPEG", quality=JPEG_QUALITY, subsampling=0
        )
        self.ground_truth[relative] = {
            "background": list(scene.background),
            "shapes": [asdict(s) for s in scene.shapes],
        }

    def write_clip(self, relative: str, clip: scenes.MovingShape, num_frames: int) -> None:
        _write_mp4(self._path(relative), scenes.render_clip(clip, num_frames, VIDEO_SIZE), VIDEO_FPS)
        self.ground_truth[relative] = {**asdict(clip), "num_frames": num_frames}

    def write_json(self, relative: str, payload: Any) -> None:
        with open(self._path(relative), "w", encoding="utf-8") as handle:
            json.dump(payload, handle)

    def write_text(self, relative: str, content: str) -> None:
        self._path(relative).write_text(content, encoding="utf-8")

    def write_csv(self, relative: str, header: list[str], rows: list[list[Any]]) -> None:
        with open(self._path(relative), "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    # -- datasets -----------------------------------------------------------------------------
    def write_all(self) -> None:
        writers: dict[str, Callable[[np.random.Generator], None]] = {
            "imagenet": self.imagenet,
            "imagenet_subset": self.imagenet_subset,
            "coco": self.coco,
            "flickr30k": self.flickr30k,
            "nocaps": self.nocaps,
            "vqav2": self.vqav2,
            "msrvtt": self.msrvtt,
            "kinetics": self.kinetics,
        }
        assert tuple(writers) == MINI_DATASETS
        for name, write in writers.items():
            write(_rng(self.seed, name))
        for name, write_extra in extra_writers().items():
            write_extra(self, _rng(self.seed, name))
        self.write_json("ground_truth.json", self.ground_truth)
        self.write_text("README.md", _readme(self.seed))

    def imagenet(self, rng: np.random.Generator, per_class_val: int = 5, per_class_train: int = 4) -> None:
        self.write_text("imagenet/LOC_synset_mapping.txt", _synset_mapping())
        # Official val names (ILSVRC2012_val_<n>) interleave the classes, so a --limit prefix covers them all.
        numbers = rng.permutation(len(IMAGENET_CLASSES) * per_class_val) + 1
        for label, (colour, kind) in enumerate(IMAGENET_CLASSES):
            for j in range(per_class_val):
                number = int(numbers[label * per_class_val + j])
                self.write_image(
                    f"imagenet/val/{_wnid(label)}/ILSVRC2012_val_{number:08d}.JPEG", _single(rng, colour, kind)
                )
            for j in range(per_class_train):
                self.write_image(
                    f"imagenet/train/{_wnid(label)}/{_wnid(label)}_{j + 1}.JPEG", _single(rng, colour, kind)
                )

    def imagenet_subset(self, rng: np.random.Generator, per_class: int = 3) -> None:
        self.write_text("imagenet_subset/LOC_synset_mapping.txt", _synset_mapping())
        for label in IMAGENET_SUBSET_CLASSES:
            colour, kind = IMAGENET_CLASSES[label]
            for j in range(per_class):
                self.write_image(
                    f"imagenet_subset/val/{_wnid(label)}/{_wnid(label)}_{j + 1}.JPEG", _single(rng, colour, kind)
                )

    def coco(self, rng: np.random.Generator) -> None:
        splits = ["test"] * 25 + ["val"] * 5 + ["train"] * 5
        cocoids = _distinct_ints(rng, 1, 581_930, len(splits))
        images, coco_images, coco_annotations = [], [], []
        for imgid, (split, scene) in enumerate(zip(splits, _caption_scenes(rng, len(splits)))):
            folder = "train2014" if split == "train" else "val2014"
            cocoid = cocoids[imgid]
            filename = f"COCO_{folder}_{cocoid:012d}.jpg"
            self.write_image(f"coco/{folder}/{filename}", scene)
            captions = scenes.describe_scene(scene, rng, 5)
            images.append(
                {
                    "filepath": folder,
                    "sentids": [],
                    "filename": filename,
                    "imgid": imgid,
                    "split": split,
                    "sentences": [],
                    "cocoid": cocoid,
                    "_captions": captions,
                }
            )
            if folder == "val2014":
                coco_images.append(
                    {
                        "license": 1,
                        "file_name": filename,
                        "coco_url": f"http://images.cocodataset.org/val2014/{filename}",
                        "height": IMAGE_SIZE,
                        "width": IMAGE_SIZE,
                        "date_captured": "2013-11-14 16:28:13",
                        "id": cocoid,
                    }
                )
                coco_annotations.extend({"image_id": cocoid, "caption": c} for c in captions)
        self.write_json("coco/dataset_coco.json", {"images": _karpathy_sentences(images), "dataset": "coco"})
        for index, annotation in enumerate(coco_annotations):
            annotation["id"] = 100_000 + 7 * index
        self.write_json(
            "coco/annotations/captions_val2014.json",
            {
                "info": _info("COCO 2014 captions, val (coca-bench mini)"),
                "images": coco_images,
                "licenses": [
                    {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 1, "name": "Attribution License"}
                ],
                "type": "captions",
                "annotations": coco_annotations,
            },
        )

    def flickr30k(self, rng: np.random.Generator) -> None:
        splits = ["test"] * 20 + ["val"] * 4 + ["train"] * 4
        names = _distinct_ints(rng, 1_000_000_000, 9_000_000_000, len(splits))
        images = []
        for imgid, (split, scene) in enumerate(zip(splits, _caption_scenes(rng, len(splits)))):
            filename = f"{names[imgid]}.jpg"
            self.write_image(f"flickr30k/flickr30k-images/{filename}", scene)
            images.append(
                {
                    "sentids": [],
                    "imgid": imgid,
                    "sentences": [],
                    "split": split,
                    "filename": filename,
                    "_captions": scenes.describe_scene(scene, rng, 5),
                }
            )
        self.write_json(
            "flickr30k/dataset_flickr30k.json", {"images": _karpathy_sentences(images), "dataset": "flickr30k"}
        )

    def nocaps(self, rng: np.random.Generator, per_domain: int = 6) -> None:
        # in-domain: COCO's shapes and colours; near-domain: COCO shapes in new colours; out-domain: new shapes.
        domains = {
            "in-domain": (SHAPES, COMMON_COLOURS),
            "near-domain": (SHAPES, EXTRA_COLOURS),
            "out-domain": (NOVEL_SHAPES, COMMON_COLOURS + EXTRA_COLOURS),
        }
        images, annotations = [], []
        image_id = 0
        for domain, (kinds, colours) in domains.items():
            combos = [(c, k, p) for k in kinds for c in colours for p in POSITIONS]
            for pick in rng.choice(len(combos), size=per_domain, replace=False):
                colour, kind, position = combos[int(pick)]
                scene = Scene(
                    (scenes.place_shape(rng, kind, colour, position, str(rng.choice(["small", "large"]))),),
                    scenes.random_background(rng),
                )
                open_images_id = "".join(rng.choice(list("0123456789abcdef"), size=16))
                file_name = f"{open_images_id}.jpg"
                self.write_image(f"nocaps/validation/{file_name}", scene)
                images.append(
                    {
                        "id": image_id,
                        "file_name": file_name,
                        "height": IMAGE_SIZE,
                        "width": IMAGE_SIZE,
                        "domain": domain,
                        "open_images_id": open_images_id,
                        "coco_url": f"https://s3.amazonaws.com/nocaps/val/{file_name}",
                        "license": 0,
                        "date_captured": "",
                    }
                )
                annotations.extend({"image_id": image_id, "caption": c} for c in scenes.describe_scene(scene, rng, 7))
                image_id += 1
        for index, annotation in enumerate(annotations):
            annotation["id"] = index
        self.write_json(
            "nocaps/nocaps_val_4500_captions.json",
            {
                "licenses": [],
                "info": _info("nocaps validation (coca-bench mini)"),
                "images": images,
                "annotations": annotations,
            },
        )

    def vqav2(self, rng: np.random.Generator) -> None:
        """val2014 (evaluated) and train2014 (answer candidates and the probe's training data), on distinct images."""
        val_ids = self._vqa_split(rng, "val2014", num_images=12, questions_per_image=4)
        self._vqa_split(rng, "train2014", num_images=24, questions_per_image=4, exclude=val_ids)

    def _vqa_split(
        self,
        rng: np.random.Generator,
        split: str,
        num_images: int,
        questions_per_image: int,
        exclude: set[int] = frozenset(),
    ) -> set[int]:
        image_ids = sorted(i for i in _distinct_ints(rng, 1, 581_930, num_images + len(exclude)) if i not in exclude)
        image_ids = image_ids[:num_images]
        questions, annotations = [], []
        for image_index, image_id in enumerate(image_ids):
            count = 1 + image_index % 4  # 1..4 shapes, every count represented
            slots = [str(p) for p in rng.choice(["left", "right", "top", "bottom"], size=count, replace=False)]
            kinds = [str(k) for k in rng.choice(SHAPES, size=count, replace=False)]
            colours = [str(c) for c in rng.choice(COMMON_COLOURS, size=count, replace=True)]
            scene = Scene(
                tuple(scenes.place_shape(rng, k, c, p, None, jitter=0.01) for k, c, p in zip(kinds, colours, slots)),
                scenes.random_background(rng),
            )
            self.write_image(f"vqav2/{split}/COCO_{split}_{image_id:012d}.jpg", scene)
            asked = _vqa_questions(scene, rng)
            picks = rng.choice(len(asked), size=min(questions_per_image, len(asked)), replace=False)
            for number, pick in enumerate(picks):
                question, question_type, answer_type, answer, variants = asked[int(pick)]
                question_id = image_id * 1000 + number  # the official scheme
                questions.append({"image_id": image_id, "question": question, "question_id": question_id})
                answers = _annotator_answers(rng, answer, variants)
                annotations.append(
                    {
                        "question_type": question_type,
                        "multiple_choice_answer": _most_common(answers),
                        "answers": [
                            {"answer": a, "answer_confidence": conf, "answer_id": i + 1}
                            for i, (a, conf) in enumerate(answers)
                        ],
                        "image_id": image_id,
                        "answer_type": answer_type,
                        "question_id": question_id,
                    }
                )
        common = {
            "info": _info("VQA v2 (coca-bench mini)"),
            "license": {"url": "", "name": "CC BY 4.0"},
            "data_subtype": split,
        }
        self.write_json(
            f"vqav2/v2_OpenEnded_mscoco_{split}_questions.json",
            {**common, "task_type": "Open-Ended", "data_type": "mscoco", "questions": questions},
        )
        self.write_json(
            f"vqav2/v2_mscoco_{split}_annotations.json", {**common, "data_type": "mscoco", "annotations": annotations}
        )
        return set(image_ids)

    def msrvtt(self, rng: np.random.Generator) -> None:
        test_ids = list(range(7010, 7020))
        train_ids = [0, 1]
        combos = [(c, k, m) for m in MOTIONS for c in COMMON_COLOURS for k in SHAPES]
        picks = rng.choice(len(combos), size=len(test_ids) + len(train_ids), replace=False)
        videos, sentences, jsfusion_rows = [], [], []
        for number, pick in zip(test_ids + train_ids, picks):
            colour, kind, motion = combos[int(pick)]
            video_id = f"video{number}"
            clip = scenes.moving_shape(rng, kind, colour, motion)
            self.write_clip(f"msrvtt/videos/all/{video_id}.mp4", clip, int(rng.integers(16, 25)))
            start = round(float(rng.uniform(0, 300)), 2)
            split = "test" if number >= 7010 else "train"
            videos.append(
                {
                    "category": int(rng.integers(0, 20)),
                    "url": f"https://www.youtube.com/watch?v={_youtube_id(rng)}",
                    "video_id": video_id,
                    "start time": start,
                    "end time": round(start + 2.0, 2),
                    "split": split,
                    "id": number,
                }
            )
            captions = scenes.describe_motion(clip, rng, 5)
            sentences.extend({"caption": c, "video_id": video_id, "sen_id": 0} for c in captions)
            if split == "test":
                jsfusion_rows.append(
                    [f"ret{len(jsfusion_rows)}", f"msr{number}", video_id, captions[int(rng.integers(0, 5))]]
                )
        for index, sentence in enumerate(sentences):
            sentence["sen_id"] = index
        self.write_json(
            "msrvtt/MSRVTT_data.json",
            {"info": _info("MSR-VTT (coca-bench mini)"), "videos": videos, "sentences": sentences},
        )
        self.write_csv("msrvtt/MSRVTT_JSFUSION_test.csv", ["key", "vid_key", "video_id", "sentence"], jsfusion_rows)

    def kinetics(self, rng: np.random.Generator, per_class: dict[str, int] | None = None) -> None:
        per_class = per_class or {"train": 6, "val": 6}
        for split, count in per_class.items():
            rows = []
            for kind, motion in KINETICS_CLASSES:
                label = f"{kind} {motion}"
                for _ in range(count):
                    clip = scenes.moving_shape(rng, kind, str(rng.choice(COMMON_COLOURS)), motion)
                    youtube_id = _youtube_id(rng)
                    start = int(rng.integers(0, 300))
                    end = start + 10
                    self.write_clip(
                        f"kinetics/{split}/{label}/{youtube_id}_{start:06d}_{end:06d}.mp4",
                        clip,
                        int(rng.integers(16, 25)),
                    )
                    rows.append([label, youtube_id, start, end, split])
            order = rng.permutation(len(rows))
            self.write_csv(
                f"kinetics/annotations/{split}.csv",
                ["label", "youtube_id", "time_start", "time_end", "split"],
                [rows[int(i)] for i in order],
            )


# ----------------------------------------------------------------------------------------------
# Scene choices


# Real ImageNet-1k wnids (sorted, as in the real LOC_synset_mapping.txt), chosen by their membership of the official
# ImageNet-A / ImageNet-R 200-class lists (imagenet_a_wnids.txt, imagenet_r_wnids.txt), so that those masks select a
# known, different part of the mini label space: A = labels {0, 1, 4, 6}, R = labels {0, 2, 5, 6}, neither {3, 7}.
_MINI_WNIDS: tuple[str, ...] = (
    "n01498041",  # A and R
    "n01558993",  # A only
    "n01630670",  # R only
    "n01632458",  # neither
    "n01641577",  # A only
    "n01644373",  # R only
    "n01677366",  # A and R
    "n01682714",  # neither
)


def _wnid(label: int) -> str:
    """The mini class's wnid: a real ImageNet-1k wnid, named "<colour> <shape>" by the mini synset mapping."""
    return _MINI_WNIDS[label]


def _synset_mapping() -> str:
    return "".join(f"{_wnid(i)} {colour} {kind}\n" for i, (colour, kind) in enumerate(IMAGENET_CLASSES))


def _single(rng: np.random.Generator, colour: str, kind: str) -> Scene:
    position = str(rng.choice(list(POSITIONS)))
    size = str(rng.choice(["small", "large"]))
    return Scene((scenes.place_shape(rng, kind, colour, position, size),), scenes.random_background(rng))


def _caption_scenes(rng: np.random.Generator, count: int) -> list[Scene]:
    """Distinct scenes for retrieval: mostly one shape, every fourth two shapes side by side."""
    singles = [(c, k, p) for c in COMMON_COLOURS for k in SHAPES for p in POSITIONS]
    order = rng.permutation(len(singles))
    result = []
    for index in range(count):
        if index % 4 == 3:
            kinds = [str(k) for k in rng.choice(SHAPES, size=2, replace=False)]
            colours = [str(c) for c in rng.choice(COMMON_COLOURS, size=2, replace=False)]
            slots = ["left", "right"] if rng.random() < 0.5 else ["top", "bottom"]
            shapes = tuple(scenes.place_shape(rng, k, c, p, None) for k, c, p in zip(kinds, colours, slots))
            result.append(Scene(shapes, scenes.random_background(rng)))
        else:
            colour, kind, position = singles[int(order[index])]
            size = str(rng.choice(["small", "large"]))
            result.append(
                Scene((scenes.place_shape(rng, kind, colour, position, size),), scenes.random_background(rng))
            )
    return result


def _karpathy_sentences(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sentid = 0
    for image in images:
        for raw in image.pop("_captions"):
            image["sentences"].append(
                {"tokens": karpathy_tokens(raw), "raw": raw, "imgid": image["imgid"], "sentid": sentid}
            )
            image["sentids"].append(sentid)
            sentid += 1
    return images


_NUMBER_WORDS = {0: "zero", 1: "one", 2: "two", 3: "three", 4: "four"}


def _vqa_questions(scene: Scene, rng: np.random.Generator) -> list[tuple[str, str, str, str, list[str]]]:
    """(question, question_type, answer_type, answer, plausible annotator variants), all true of ``scene``."""
    shapes = scene.shapes
    count = len(shapes)
    asked: list[tuple[str, str, str, str, list[str]]] = [
        ("How many shapes are there?", "how many", "number", str(count), [_NUMBER_WORDS[count]]),
    ]
    colour = str(rng.choice(COMMON_COLOURS))
    same_colour = sum(s.colour == colour for s in shapes)
    asked.append(
        (
            f"How many {colour} shapes are in the picture?",
            "how many",
            "number",
            str(same_colour),
            [_NUMBER_WORDS[same_colour]] + (["none"] if same_colour == 0 else []),
        )
    )
    target = shapes[int(rng.integers(0, count))]
    asked.append(
        (f"What color is the {target.kind}?", "what color is the", "other", target.colour, [f"{target.colour} color"])
    )
    asked.append(
        (
            f"What shape is {scenes.POSITION_PHRASES[target.position]}?",
            "what",
            "other",
            target.kind,
            [f"{target.kind} shape"],
        )
    )
    # One yes and one no question: a present shape, and a colour-shape pair absent from the scene.
    asked.append(
        (f"Is there {scenes.article(target.colour)} {target.colour} {target.kind}?", "is there a", "yes/no", "yes", [])
    )
    absent = [(c, k) for c in COMMON_COLOURS for k in SHAPES if not any(s.colour == c and s.kind == k for s in shapes)]
    colour, kind = absent[int(rng.integers(0, len(absent)))]
    asked.append((f"Is there {scenes.article(colour)} {colour} {kind}?", "is there a", "yes/no", "no", []))
    return asked


def _annotator_answers(rng: np.random.Generator, answer: str, variants: list[str]) -> list[tuple[str, str]]:
    """Ten answers, mostly the canonical one, some phrased differently (as real annotators do)."""
    answers = []
    for _ in range(10):
        if variants and rng.random() < 0.25:
            answers.append((str(rng.choice(variants)), "yes"))
        else:
            answers.append((answer, "yes" if rng.random() < 0.85 else "maybe"))
    return answers


def _most_common(answers: list[tuple[str, str]]) -> str:
    texts = [a for a, _ in answers]
    return max(texts, key=lambda t: (texts.count(t), -texts.index(t)))


def _distinct_ints(rng: np.random.Generator, low: int, high: int, count: int) -> list[int]:
    """``count`` distinct integers in [low, high), in draw order (ids must not repeat)."""
    chosen: dict[int, None] = {}
    while len(chosen) < count:
        chosen.setdefault(int(rng.integers(low, high)), None)
    return list(chosen)


def _youtube_id(rng: np.random.Generator) -> str:
    alphabet = list(string.ascii_letters + string.digits + "-_")
    return "".join(rng.choice(alphabet, size=11))


def _info(description: str) -> dict[str, Any]:
    # Fixed values, not the generation time: the bytes must depend on the seed only.
    return {
        "description": description,
        "version": str(GENERATOR_VERSION),
        "year": 2024,
        "contributor": "coca-bench generator",
        "date_created": "2024-01-01",
    }


def _write_mp4(path: Path, frames: list[Image.Image], fps: int) -> None:
    """H.264 in mp4, one encoder thread and fixed options: same frames, same bytes."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"crf": "18", "preset": "medium", "threads": "1"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _readme(seed: int) -> str:
    import importlib

    # Each family module's README_ROWS: one "| `folder/` | layout |" line per dataset it writes.
    extra_rows = "\n".join(row for name in EXTRA_WRITER_MODULES for row in importlib.import_module(name).README_ROWS)
    return f"""# coca-bench mini datasets (generator v{GENERATOR_VERSION}, seed {seed})

Synthetic stand-ins for the benchmark datasets, generated by `coca_bench.data.minidata`.
Each folder follows its dataset's **official layout**, so the same readers load it and the real data:

| folder | layout |
|---|---|
| `imagenet/` | `LOC_synset_mapping.txt`, `val/<wnid>/*.JPEG`, `train/<wnid>/*.JPEG` (8 classes under real ImageNet wnids, 4 of them in the ImageNet-A list and 4 in the ImageNet-R list) |
| `imagenet_subset/` | the same label space, `val/` holds only 3 of the 8 classes (ImageNet-A/-R style) |
| `coco/` | Karpathy `dataset_coco.json`, `val2014/`, `train2014/`, `annotations/captions_val2014.json` |
| `flickr30k/` | Karpathy `dataset_flickr30k.json`, `flickr30k-images/` |
| `nocaps/` | `nocaps_val_4500_captions.json` (in-/near-/out-domain), `validation/` |
| `vqav2/` | `v2_OpenEnded_mscoco_<split>_questions.json`, `v2_mscoco_<split>_annotations.json` and `<split>/` images, for val2014 and train2014 (train: answer candidates and the VQA probe) |
| `msrvtt/` | `MSRVTT_JSFUSION_test.csv` (1k-A style), `MSRVTT_data.json` (full split), `videos/all/*.mp4` |
| `kinetics/` | `annotations/{{train,val}}.csv`, `{{train,val}}/<label>/<youtube_id>_<start>_<end>.mp4` |
{extra_rows}

Images and videos are rendered scenes: coloured shapes (circle, square, triangle, star; NoCaps out-domain adds
hexagon, diamond, cross) at known positions, and in videos with a known motion (moving left/right/up/down,
growing, shrinking). Every label, caption and answer is derived from the scene, so it is true of the pixels;
`ground_truth.json` records each file's scene.

Numbers on this data check that the pipeline works; they say nothing about a model's quality on the real benchmarks.
Same seed and generator version give byte-identical files.
"""


__all__ = [
    "GENERATOR_VERSION",
    "IMAGENET_CLASSES",
    "MINI_DATASETS",
    "all_mini_datasets",
    "default_data_root",
    "generate_minidata",
    "karpathy_tokens",
]
