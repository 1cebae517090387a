"""Frame sampling and decoding for video tasks.

The sampled indices are the protocol (CoCa encodes 16 uniformly sampled frames and
averages their embeddings), so they are computed here, once, for every backend.
Decoding touches only the requested frames: decord seeks to them, PyAV streams and
stops after the last one, converting to RGB only the frames it keeps.

decord is the default backend; where it is not installed (it has no wheels for some
platforms) PyAV is used instead. Both return identical frames on H.264 mp4 files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from coca_bench.data.media import UnreadableMediaError
from coca_bench.errors import SettingValueError

FrameSamplingMode = Literal["uniform", "head"]
VideoBackend = Literal["decord", "pyav"]
FRAME_SAMPLING_MODES: tuple[str, ...] = ("uniform", "head")
VIDEO_BACKENDS: tuple[str, ...] = ("decord", "pyav")


@dataclass(frozen=True)
class FrameSampling:
    """Which frames of a clip are encoded: ``num_frames`` by ``mode`` (uniform centres of equal segments, or the
    first frames), read with ``backend``. Part of every video key and recorded by the tasks."""

    num_frames: int = 16
    mode: str = "uniform"
    backend: str = "decord"

    def as_dict(self) -> dict[str, Any]:
        return {"num_frames": self.num_frames, "mode": self.mode, "backend": self.backend}


def sample_frame_indices(num_frames_in_video: int, num_frames: int, mode: FrameSamplingMode = "uniform") -> list[int]:
    """Which ``num_frames`` frames of a video to use.

    ``uniform``: the centre frame of each of ``num_frames`` equal segments (the
    CoCa / CLIP4Clip-style protocol); ``head``: the first ``num_frames`` frames.
    A video shorter than ``num_frames`` repeats frames, so every clip yields the same
    count.
    """
    if num_frames_in_video < 1:
        raise ValueError(f"A video must have at least one frame to sample from, got {num_frames_in_video}.")
    if num_frames < 1:
        raise SettingValueError(f"num_frames must be at least 1, got {num_frames}.")
    if mode == "uniform":
        # Integer form of floor((i + 0.5) * N / T): exact, no float rounding.
        return [((2 * i + 1) * num_frames_in_video) // (2 * num_frames) for i in range(num_frames)]
    if mode == "head":
        return [min(i, num_frames_in_video - 1) for i in range(num_frames)]
    raise SettingValueError(f"Unknown frame sampling mode {mode!r}; use one of {FRAME_SAMPLING_MODES}.")


def read_frames(path: Path | str, indices: Sequence[int], backend: VideoBackend = "decord") -> np.ndarray:
    """Frames ``indices`` (in the order given, repeats allowed) as a ``[T, H, W, 3]`` uint8 RGB array.

    Raises :class:`UnreadableMediaError` when the file is missing or corrupt, or has
    fewer frames than an index asks for.
    """
    wanted = [int(i) for i in indices]
    if not wanted:
        raise ValueError("read_frames needs at least one frame index.")
    if min(wanted) < 0:
        raise ValueError(f"Frame indices must be non-negative, got {min(wanted)}.")
    return _decode(Path(path), lambda _length: wanted, backend)


def read_sampled_frames(
    path: Path | str,
    num_frames: int,
    mode: FrameSamplingMode = "uniform",
    backend: VideoBackend = "decord",
) -> np.ndarray:
    """``num_frames`` frames chosen by :func:`sample_frame_indices`, opening the file once."""
    return _decode(Path(path), lambda length: sample_frame_indices(length, num_frames, mode), backend)


def count_frames(path: Path | str, backend: VideoBackend = "decord") -> int:
    """Number of frames in the video, from the container index where it has one."""
    return video_metadata(path, backend)[0]


def video_metadata(path: Path | str, backend: VideoBackend = "decord") -> tuple[int, float]:
    """(frame count, average frames per second; 0.0 when unknown), from the container, without decoding frames."""
    path = Path(path)
    if _resolve_backend(backend) == "decord":
        with _opened_decord(path) as reader:
            return len(reader), float(reader.get_avg_fps() or 0.0)
    import av

    if not path.is_file():
        raise UnreadableMediaError(path, "file not found")
    try:
        with av.open(str(path)) as container:
            length = _pyav_frame_count(path, container)
            rate = container.streams.video[0].average_rate
            return length, float(rate) if rate else 0.0
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None


# A file longer than its Kinetics window by more than this is taken for the untrimmed YouTube video.
UNTRIMMED_TOLERANCE_S = 1.0


def clip_frame_indices(
    num_frames_in_video: int,
    fps: float,
    num_frames: int,
    mode: FrameSamplingMode = "uniform",
    window: tuple[float, float] | None = None,
) -> list[int]:
    """The frames to encode for a clip: :func:`sample_frame_indices` over the whole file, as files on disk are
    already trimmed (Kinetics downloads are cut to ``time_start``-``time_end``). Only a file whose duration shows it
    is the untrimmed video (longer than the window by more than ``UNTRIMMED_TOLERANCE_S``) is sampled inside the
    window ``(start_s, end_s)``."""
    if window is not None and fps > 0:
        start_s, end_s = window
        duration = num_frames_in_video / fps
        if duration > (end_s - start_s) + UNTRIMMED_TOLERANCE_S and start_s * fps < num_frames_in_video:
            first = int(start_s * fps)
            last = min(num_frames_in_video, max(first + 1, int(round(end_s * fps))))
            return [first + i for i in sample_frame_indices(last - first, num_frames, mode)]
    return sample_frame_indices(num_frames_in_video, num_frames, mode)


IndexChooser = Callable[[int], Sequence[int]]


def _decode(path: Path, choose: IndexChooser, backend: VideoBackend) -> np.ndarray:
    if _resolve_backend(backend) == "decord":
        return _decode_decord(path, choose)
    return _decode_pyav(path, choose)


def _resolve_backend(backend: str) -> str:
    if backend not in VIDEO_BACKENDS:
        raise SettingValueError(f"Unknown video backend {backend!r}; use one of {VIDEO_BACKENDS}.")
    if backend == "decord":
        try:
            import decord  # noqa: F401
        except ImportError:
            return "pyav"
    return backend


@contextmanager
def _opened_decord(path: Path) -> Iterator[Any]:  # decord.VideoReader, imported lazily
    """``decord.VideoReader`` with its errors mapped to UnreadableMediaError."""
    import decord

    if not path.is_file():
        raise UnreadableMediaError(path, "file not found")
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except (RuntimeError, decord.DECORDError) as exc:
        raise _unreadable(path, exc) from None
    if len(reader) < 1:
        raise UnreadableMediaError(path, "the video has no frames")
    try:
        yield reader
    finally:
        del reader


def _decode_decord(path: Path, choose: IndexChooser) -> np.ndarray:
    import decord

    with _opened_decord(path) as reader:
        length = len(reader)
        wanted = list(choose(length))
        _check_in_range(path, wanted, length)
        unique = sorted(set(wanted))
        try:
            frames = reader.get_batch(unique).asnumpy()
        except (RuntimeError, IndexError, decord.DECORDError) as exc:
            raise _unreadable(path, exc) from None
    position = {index: row for row, index in enumerate(unique)}
    return np.ascontiguousarray(frames[[position[i] for i in wanted]], dtype=np.uint8)


def _decode_pyav(path: Path, choose: IndexChooser) -> np.ndarray:
    import av

    if not path.is_file():
        raise UnreadableMediaError(path, "file not found")
    try:
        with av.open(str(path)) as container:
            length = _pyav_frame_count(path, container)
        wanted = list(choose(length))
        _check_in_range(path, wanted, length)
        needed = set(wanted)
        last = max(needed)
        kept: dict[int, np.ndarray] = {}
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for index, frame in enumerate(container.decode(stream)):
                if index in needed:
                    kept[index] = frame.to_ndarray(format="rgb24")
                if index >= last:
                    break
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    if len(kept) < len(needed):
        raise UnreadableMediaError(
            path, f"decoding stopped after {max(kept, default=-1) + 1} frames, but frame {last} was requested"
        )
    return np.stack([kept[i] for i in wanted]).astype(np.uint8, copy=False)


def _pyav_frame_count(path: Path, container) -> int:
    if not container.streams.video:
        raise UnreadableMediaError(path, "the file has no video stream")
    stream = container.streams.video[0]
    if stream.frames:
        return int(stream.frames)
    # Containers without a frame index (e.g. some mkv/webm): count packets, no decoding.
    count = sum(1 for packet in container.demux(stream) if packet.size)
    if count < 1:
        raise UnreadableMediaError(path, "the video has no frames")
    return count


def _check_in_range(path: Path, wanted: Sequence[int], length: int) -> None:
    if max(wanted) >= length:
        raise UnreadableMediaError(path, f"the video has {length} frames, but frame {max(wanted)} was requested")


def _unreadable(path: Path, exc: BaseException) -> UnreadableMediaError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return UnreadableMediaError(path, f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


__all__ = [
    "FrameSampling",
    "FRAME_SAMPLING_MODES",
    "UNTRIMMED_TOLERANCE_S",
    "clip_frame_indices",
    "video_metadata",
    "VIDEO_BACKENDS",
    "count_frames",
    "read_frames",
    "read_sampled_frames",
    "sample_frame_indices",
]
