"""What the report shows next to a sample: its image or video, references, question, class names.

Per-sample records hold ids, not media, so the report reads the same dataset files the task read, through the same
readers, from the dataset root and parameters recorded in the result. Media is embedded (base64 JPEG), so the report
is one file that opens anywhere. Anything missing (a dataset moved since the run, an unreadable file, a plugin task
this module does not know) becomes a placeholder, never an error: a report is for looking, and must always build.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("coca_bench.report")

THUMBNAIL_SIZE = 160  # px, the longer side
FRAME_HEIGHT = 72  # px, each frame of a video strip
STRIP_FRAMES = 4
VQA_IMAGE_ROOTS = (".", "images", "../coco", "../coco/images")  # as tasks/vqav2.py looks for the COCO images


@dataclass
class MediaIndex:
    """What the dataset says about the samples of one result; empty fields where the task has none."""

    paths: dict[str, Path] = field(default_factory=dict)  # sample id -> image or video file
    captions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sample id -> reference captions
    questions: dict[str, Any] = field(default_factory=dict)  # question id -> VqaQuestion
    class_names: tuple[str, ...] = ()
    video: bool = False
    problem: str = ""  # why the dataset could not be read (shown once in the report)


def _captioned(records: Any, video: bool = False) -> MediaIndex:
    return MediaIndex(
        paths={item.id: Path(item.path) for item in records.items},
        captions={item.id: tuple(item.captions) for item in records.items},
        video=video,
    )


def _classified(records: Any, video: bool = False) -> MediaIndex:
    return MediaIndex(
        paths={item.id: Path(item.path) for item in records.items}, class_names=tuple(records.class_names), video=video
    )


def _karpathy(name: str) -> Callable[[Path, Mapping[str, Any]], MediaIndex]:
    def read(root: Path, params: Mapping[str, Any]) -> MediaIndex:
        from coca_bench.data import find_karpathy

        split = params.get("split", "test")
        return _captioned(find_karpathy(root, name, split, params.get("annotation_file"), params.get("image_root")))

    return read


def _nocaps(root: Path, params: Mapping[str, Any]) -> MediaIndex:
    from coca_bench.data import read_nocaps

    return _captioned(read_nocaps(root, params.get("split", "val")))


def _msrvtt(root: Path, params: Mapping[str, Any]) -> MediaIndex:
    from coca_bench.data import read_msrvtt

    return _captioned(read_msrvtt(root, params.get("split", "1k-A")), video=True)


def _vqa(root: Path, params: Mapping[str, Any]) -> MediaIndex:
    from coca_bench.data import read_vqa
    from coca_bench.data.layout import relocate_media

    questions = read_vqa(root, params.get("split", "val2014"))
    located = relocate_media(
        questions, root, VQA_IMAGE_ROOTS, "VQA (COCO) images", params.get("image_root"), field="image_path"
    )
    return MediaIndex(
        paths={str(q.question_id): Path(q.image_path) for q in located.items},
        questions={str(q.question_id): q for q in located.items},
    )


def _imagenet(root: Path, params: Mapping[str, Any]) -> MediaIndex:
    from coca_bench.data import read_imagenet

    return _classified(read_imagenet(root, params.get("split", "val")))


def _probe(layout: str) -> Callable[[Path, Mapping[str, Any]], MediaIndex]:
    def read(root: Path, params: Mapping[str, Any]) -> MediaIndex:
        from coca_bench.data import read_train_eval_splits

        train, evaluation = read_train_eval_splits(
            root, params.get("train_split", "train"), params.get("eval_split", "val"), layout
        )
        return MediaIndex(
            paths={item.id: Path(item.path) for item in evaluation.items}, class_names=tuple(train.class_names)
        )

    return read


def _kinetics(probe: bool) -> Callable[[Path, Mapping[str, Any]], MediaIndex]:
    def read(root: Path, params: Mapping[str, Any]) -> MediaIndex:
        from coca_bench.data import read_kinetics

        classes = read_kinetics(root, params.get("train_split", "train")).class_ids if probe else None
        return _classified(read_kinetics(root, params.get("split", "val"), classes=classes), video=True)

    return read


READERS: dict[str, Callable[[Path, Mapping[str, Any]], MediaIndex]] = {
    "coco_captioning": _karpathy("coco"),
    "coco_retrieval": _karpathy("coco"),
    "flickr30k_retrieval": _karpathy("flickr30k"),
    "nocaps_captioning": _nocaps,
    "msrvtt_captioning": _msrvtt,
    "msrvtt_retrieval": _msrvtt,
    "vqav2": _vqa,
    "imagenet_zeroshot": _imagenet,
    "imagenet_subset_zeroshot": _imagenet,
    "imagenet_linear_probe": _probe("imagenet"),
    "imagenet_attentive_probe": _probe("imagenet"),
    "linear_probe": _probe("folder"),
    "kinetics_zeroshot": _kinetics(probe=False),
    "kinetics_attentive_probe": _kinetics(probe=True),
}
"""Built-in task -> how to read its dataset for display; another task gets placeholders."""


def media_index(record: Mapping[str, Any]) -> MediaIndex:
    """The dataset side of one stored result, read from its recorded root and parameters; never raises."""
    task = record["task"]["name"]
    reader = READERS.get(task)
    if reader is None:
        return MediaIndex(problem=f"the report does not know where {task}'s media lives")
    root = Path((record.get("dataset") or {}).get("root") or "")
    params = (record.get("config") or {}).get("params") or {}
    try:
        return reader(root, params)
    except Exception as exc:  # a moved or partial dataset must not stop the report: show placeholders instead
        log.info("report: cannot read the dataset of %s at %s: %s", task, root, exc)
        return MediaIndex(problem=f"dataset not readable at {root}: {exc}")


# --------------------------------------------------------------------------- embedded pictures


def _jpeg_data_uri(image: Any) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail(path: Path | None) -> str | None:
    """A base64 JPEG data URI of the image, at most :data:`THUMBNAIL_SIZE` px; ``None`` when it cannot be read."""
    if path is None:
        return None
    from coca_bench.data import UnreadableMediaError, load_image

    try:
        image = load_image(path)
    except UnreadableMediaError:
        return None
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return _jpeg_data_uri(image)


def frame_strip(path: Path | None, frame_indices: Sequence[int], count: int = STRIP_FRAMES) -> str | None:
    """A data URI of ``count`` of the recorded frames side by side (evenly spread over them); ``None`` on failure."""
    if path is None or not frame_indices:
        return None
    import numpy as np
    from PIL import Image

    from coca_bench.data import UnreadableMediaError, read_frames

    picks = np.linspace(0, len(frame_indices) - 1, num=min(count, len(frame_indices))).round().astype(int)
    try:
        frames = read_frames(path, [int(frame_indices[i]) for i in picks])
    except (UnreadableMediaError, ValueError, OSError, ImportError):
        return None
    tiles = []
    for frame in frames:
        tile = Image.fromarray(frame)
        tiles.append(tile.resize((max(1, round(tile.width * FRAME_HEIGHT / tile.height)), FRAME_HEIGHT)))
    strip = Image.new("RGB", (sum(t.width for t in tiles) + 2 * (len(tiles) - 1), FRAME_HEIGHT), "white")
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + 2
    return _jpeg_data_uri(strip)


__all__ = ["READERS", "MediaIndex", "frame_strip", "media_index", "thumbnail"]
