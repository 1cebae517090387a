"""What the report shows next to a sample: its image or video, references, question, class names.

Per-sample records hold ids, not media, so the report reads the same dataset files the task read, through the same
readers, from the dataset root and parameters recorded in the result. Media is embedded (base64 JPEG), so the report
is one file that opens anywhere. Which records a task evaluated comes from the task itself (its read pass), and how to
show them from its declared :class:`~coca_bench.registry.SampleView`, so a plugin task gets pictures exactly as a
built-in one. Anything missing (a dataset moved since the run, an unreadable file, a task without a view) becomes a
placeholder, never an error: a report is for looking, and must always build.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coca_bench.registry import TaskSpec

log = logging.getLogger("coca_bench.report")

THUMBNAIL_SIZE = 160  # px, the longer side
FRAME_HEIGHT = 72  # px, each frame of a video strip
STRIP_FRAMES = 4


@dataclass
class MediaIndex:
    """What the dataset says about the samples of one result; empty fields where the task has none."""

    paths: dict[str, Path] = field(default_factory=dict)  # sample id -> image or video file
    captions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sample id -> reference captions
    items: dict[str, Any] = field(default_factory=dict)  # sample id -> the evaluated record (a VQA question...)
    class_names: tuple[str, ...] = ()
    video: bool = False
    problem: str = ""  # why the dataset could not be read (shown once in the report)


def media_index(record: Mapping[str, Any], spec: TaskSpec | None) -> MediaIndex:
    """The dataset side of one stored result, read by the task's own read pass at the recorded data root and
    parameters, shown as the task's :class:`~coca_bench.registry.SampleView` declares; never raises."""
    task = record["task"]["name"]
    if spec is None or spec.view is None:
        why = "its plugin is not loaded" if spec is None else "it declares no sample view"
        return MediaIndex(problem=f"the report cannot show {task}'s media: {why}")
    from coca_bench.registry import read_records
    from coca_bench.settings import RunSettings

    view = spec.view
    dataset = record.get("dataset") or {}
    root = Path(dataset.get("root") or "")  # the dataset folder the run read: data root / the task's folder
    params = (record.get("config") or {}).get("params") or {}
    try:
        resolved = spec.resolve_params(params)
        folder = spec.dataset_folder(resolved)
        data_root = Path(str(root)[: -len(folder)]) if root.as_posix().endswith("/" + folder) else root.parent
        evaluated = read_records(spec, data_root, resolved, RunSettings()).evaluated_sets
    except Exception as exc:  # a moved or partial dataset must not stop the report: show placeholders instead
        log.info("report: cannot read the dataset of %s at %s: %s", task, root, exc)
        return MediaIndex(problem=f"dataset not readable at {root}: {exc}")
    index = MediaIndex(video=view.video)
    for records in evaluated:
        for item in records.items:
            key = str(getattr(item, view.id_field, ""))
            index.items[key] = item
            media = getattr(item, view.media_field, None)
            if media is not None:
                index.paths[key] = Path(media)
            if getattr(item, "captions", None) is not None:
                index.captions[key] = tuple(item.captions)
        index.class_names = index.class_names or tuple(getattr(records, "class_names", ()) or ())
    return index


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


__all__ = ["MediaIndex", "frame_strip", "media_index", "thumbnail"]
