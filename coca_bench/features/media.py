"""Reading the media behind feature items: content keys, and images or video frames loaded in DataLoader workers.

Why a failure is a value: a file that cannot be read is returned as a reason string, never raised, so that one bad file
in a worker process cannot kill the whole loader; the extractor records it as a skip, or raises it under ``--strict``.
The reason names what went wrong, not the path: a cached skip may stand for a copy of the bytes elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from coca_bench.data import UnreadableMediaError, load_image
from coca_bench.data.video import FrameSampling, clip_frame_indices, read_frames, video_metadata
from coca_bench.features.store import EncodedItem
from coca_bench.fileio import sha256_file, sha256_text

# What a kind computes from a batch of preprocessed media: (inputs [B, ...], the batch's item positions) -> [B, ...].
BatchEncoder = Callable[[torch.Tensor, list[int]], np.ndarray]
FramePlan = list[int] | str  # the frame indices of a clip, or why its header cannot be read


def file_content_key(path: str | Path) -> str:
    """sha256 of the file's bytes; a file that cannot be opened gets a key naming its path,
    so its skip is cached yet a file that later appears there is encoded afresh."""
    try:
        return sha256_file(path)
    except OSError as exc:
        return "unopenable:" + sha256_text(f"{Path(path).resolve()}|{type(exc).__name__}")


def field(sample: Any, name: str) -> Any:
    """A sample's field, from a mapping or an object (tasks pass records of either form)."""
    return sample[name] if isinstance(sample, Mapping) else getattr(sample, name)


def content_keys(paths: Sequence[str], extras: Sequence[Any] | None = None) -> list[str]:
    """Each file's content key, joined with its ``extras`` item (a prompt, a frame plan) where given."""
    with ThreadPoolExecutor(max_workers=4) as pool:  # hashing releases the GIL; IO overlaps
        keys = list(pool.map(file_content_key, paths))
    if extras is None:
        return keys
    return [sha256_text(f"{key}|{extra}") for key, extra in zip(keys, extras)]


class MediaReader(Protocol):
    """Reads and preprocesses the item at ``position``; raises :class:`UnreadableMediaError` for a bad file."""

    what: str  # "image" or "video", as skip reasons and errors name it

    def __call__(self, path: str, position: int) -> torch.Tensor: ...


class ImageReader:
    """One preprocessed image ``[C, H, W]``."""

    what = "image"

    def __init__(self, preprocess: Callable[[Any], torch.Tensor]) -> None:
        self.preprocess = preprocess

    def __call__(self, path: str, position: int) -> torch.Tensor:
        return self.preprocess(load_image(path))


class FrameReader:
    """The planned frames of a clip, decoded and preprocessed exactly like images: ``[T, C, H, W]``."""

    what = "video"

    def __init__(self, preprocess: Callable[[Any], torch.Tensor], plans: Sequence[FramePlan], backend: str) -> None:
        self.preprocess, self.plans, self.backend = preprocess, plans, backend

    def __call__(self, path: str, position: int) -> torch.Tensor:
        frames = read_frames(path, self.plans[position], backend=self.backend)  # type: ignore[arg-type]
        return torch.stack([self.preprocess(Image.fromarray(frame)) for frame in frames])


def frame_plans(clips: Sequence[Any], sampling: FrameSampling) -> list[FramePlan]:
    """The frame indices of each clip from its container header (no decoding), or why it cannot be read."""

    def plan(clip: Any) -> FramePlan:
        start, end = getattr(clip, "time_start", 0), getattr(clip, "time_end", 0)
        try:
            length, fps = video_metadata(field(clip, "path"), sampling.backend)  # type: ignore[arg-type]
        except UnreadableMediaError as exc:
            return f"unreadable video: {exc.reason}"
        window = (float(start), float(end)) if end > start else None
        return clip_frame_indices(length, fps, sampling.num_frames, sampling.mode, window)  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(plan, clips))


class _MediaFiles(Dataset):
    """``(position, path)`` items read by ``reader`` in workers: ``(position, tensor, "")`` or ``(position, None,
    reason)``."""

    def __init__(self, items: Sequence[tuple[int, str]], reader: MediaReader) -> None:
        self.items, self.reader = list(items), reader

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        position, path = self.items[index]
        try:
            return position, self.reader(path, position), ""
        except UnreadableMediaError as exc:
            return position, None, f"unreadable {self.reader.what}: {exc.reason}"


def _collate(batch: list[tuple[int, torch.Tensor | None, str]]):
    ok = [(p, x) for p, x, _ in batch if x is not None]
    failed = [(p, reason) for p, x, reason in batch if x is None]
    return [p for p, _ in ok], (torch.stack([x for _, x in ok]) if ok else None), failed


def read_and_encode(
    items: Sequence[tuple[int, str]], reader: MediaReader, encode: BatchEncoder, batch_size: int, num_workers: int
) -> Iterator[EncodedItem]:
    """Every ``(position, path)`` item once: read in ``num_workers`` workers, encoded ``batch_size`` at a time in
    input order; an unreadable one comes back as its reason."""
    loader = DataLoader(
        _MediaFiles(items, reader), batch_size=batch_size, num_workers=num_workers, collate_fn=_collate, shuffle=False
    )
    for positions, inputs, failed in loader:
        yield from failed
        if inputs is not None:
            yield from zip(positions, encode(inputs, positions))


__all__ = [
    "BatchEncoder",
    "FrameReader",
    "ImageReader",
    "MediaReader",
    "content_keys",
    "field",
    "file_content_key",
    "frame_plans",
    "read_and_encode",
]
