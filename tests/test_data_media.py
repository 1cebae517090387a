"""Media loading: frame sampling, decord/PyAV agreement, and UnreadableMediaError for bad files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coca_bench.data import (
    UnreadableMediaError,
    count_frames,
    load_image,
    read_frames,
    read_sampled_frames,
    sample_frame_indices,
)

BACKENDS = ("decord", "pyav")


@pytest.fixture(scope="session")
def videos(minidata_root: Path) -> dict[Path, int]:
    """Every generated mp4 with its true frame count."""
    truth = json.loads((minidata_root / "ground_truth.json").read_text())
    return {minidata_root / name: entry["num_frames"] for name, entry in truth.items() if name.endswith(".mp4")}


# ---------------------------------------------------------------------------------------------
# Frame sampling


@pytest.mark.parametrize(
    ("length", "count", "mode", "expected"),
    [
        (16, 4, "uniform", [2, 6, 10, 14]),
        (10, 4, "uniform", [1, 3, 6, 8]),
        (16, 16, "uniform", list(range(16))),
        (3, 5, "uniform", [0, 0, 1, 2, 2]),
        (1, 3, "uniform", [0, 0, 0]),
        (20, 4, "head", [0, 1, 2, 3]),
        (5, 8, "head", [0, 1, 2, 3, 4, 4, 4, 4]),
    ],
)
def test_sample_frame_indices(length: int, count: int, mode: str, expected: list[int]) -> None:
    assert sample_frame_indices(length, count, mode) == expected


def test_uniform_indices_are_segment_centres_for_many_lengths() -> None:
    for length in range(1, 60):
        for count in (1, 4, 8, 16):
            indices = sample_frame_indices(length, count)
            assert len(indices) == count and indices == sorted(indices)
            assert all(0 <= i < length for i in indices)
            for i, index in enumerate(indices):  # index is in the i-th of `count` equal segments, at its centre
                centre = (i + 0.5) * length / count
                assert index <= centre < index + 1


def test_sample_frame_indices_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        sample_frame_indices(0, 4)
    with pytest.raises(ValueError, match="num_frames"):
        sample_frame_indices(10, 0)
    with pytest.raises(ValueError, match="Unknown frame sampling mode 'random'"):
        sample_frame_indices(10, 4, "random")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Decoding


def test_decord_and_pyav_return_identical_frames(videos: dict[Path, int]) -> None:
    assert len(videos) >= 40
    for path, num_frames in videos.items():
        assert count_frames(path, "decord") == count_frames(path, "pyav") == num_frames
        a = read_sampled_frames(path, 8, backend="decord")
        b = read_sampled_frames(path, 8, backend="pyav")
        assert a.shape == (8, 128, 128, 3) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b, err_msg=str(path))


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_frames_keeps_the_requested_order_and_repeats(videos: dict[Path, int], backend: str) -> None:
    path = next(iter(videos))
    frames = read_frames(path, [5, 1, 5], backend=backend)
    assert frames.shape[0] == 3
    np.testing.assert_array_equal(frames[0], frames[2])
    np.testing.assert_array_equal(frames[1], read_frames(path, [1], backend=backend)[0])
    assert not np.array_equal(frames[0], frames[1])  # the shape moves between frames 1 and 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_past_the_end_is_unreadable(videos: dict[Path, int], backend: str) -> None:
    path, num_frames = next(iter(videos.items()))
    with pytest.raises(UnreadableMediaError, match=f"has {num_frames} frames, but frame {num_frames} was requested"):
        read_frames(path, [0, num_frames], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "truncated-data", "empty"])
def test_corrupt_video_raises_unreadable_media_error(
    videos: dict[Path, int], tmp_path: Path, backend: str, damage: str
) -> None:
    source = next(iter(videos))
    path = tmp_path / "clip.mp4"
    if damage == "garbage":
        path.write_bytes(b"this is not a video" * 100)
    elif damage == "truncated":
        path.write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    elif damage == "truncated-data":  # intact index (moov first), frames cut off
        _remux_faststart(source, tmp_path / "faststart.mp4")
        data = (tmp_path / "faststart.mp4").read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "empty":
        path.write_bytes(b"")
    with pytest.raises(UnreadableMediaError) as excinfo:
        read_sampled_frames(path, 16, backend=backend)
    assert excinfo.value.path == path
    assert str(path) in str(excinfo.value)


def _remux_faststart(source: Path, target: Path) -> None:
    import av

    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    with av.open(str(target)) as check:  # the remuxed copy itself is fine
        assert check.streams.video[0].frames > 0


def test_pyav_is_used_when_decord_is_not_installed(videos: dict[Path, int], monkeypatch: pytest.MonkeyPatch) -> None:
    path = next(iter(videos))
    expected = read_frames(path, [0, 3], backend="pyav")
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` raise ImportError
    np.testing.assert_array_equal(read_frames(path, [0, 3], backend="decord"), expected)


def test_unknown_backend_is_a_clear_error(videos: dict[Path, int]) -> None:
    with pytest.raises(ValueError, match="Unknown video backend 'opencv'"):
        read_frames(next(iter(videos)), [0], backend="opencv")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Images


def test_load_image_converts_to_rgb(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.new("L", (8, 6), 77).save(grey)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (4, 4), (10, 20, 30, 40)).save(rgba)
    loaded = load_image(grey)
    assert loaded.mode == "RGB" and loaded.size == (8, 6) and loaded.getpixel((0, 0)) == (77, 77, 77)
    assert load_image(rgba).getpixel((1, 1)) == (10, 20, 30)


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated"])
def test_unreadable_image_raises_unreadable_media_error(minidata_root: Path, tmp_path: Path, damage: str) -> None:
    path = tmp_path / "image.jpg"
    if damage == "garbage":
        path.write_bytes(b"\x00\x01 not an image")
    elif damage == "truncated":
        source = next((minidata_root / "coco" / "val2014").glob("*.jpg"))
        path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(UnreadableMediaError) as excinfo:
        load_image(path)
    assert excinfo.value.path == path
    assert ("file not found" in excinfo.value.reason) == (damage == "missing")
