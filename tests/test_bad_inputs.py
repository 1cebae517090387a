"""Bad inputs through the real CLI (issue 11 §1).

An unreadable image or video is a recorded skip with its reason, counted in the printed table, and fatal with
``--strict``; a malformed annotation, or an annotation path that leaves the dataset, is always fatal: one line naming
the file and the key or line, exit code 2, no traceback. A bug still prints its traceback. Each broken dataset is a
copy of one bundled mini dataset with some files damaged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from coca_bench.cli import main
from coca_bench.data import read_karpathy, read_kinetics, sample_frame_indices
from coca_bench.data.minidata import VIDEO_FPS, _write_mp4

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = "tiny-random-s0"


# ---------------------------------------------------------------------------------------------
# Running the CLI


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One private cache for every run here: the bundled checkpoint is built once, features are shared."""
    return tmp_path_factory.mktemp("bad_inputs_cache")


def cli_args(task: str, data_root: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "--tasks", task, "--data-root", str(data_root), "--checkpoint", CHECKPOINT, "--output", str(out),
        "--cache-dir", str(cache / "features"), "--no-progress", "--num-workers", "0", "--no-compare", *extra,
    ]  # fmt: skip


def run_cli(cache: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COCA_BENCH_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "run_suite.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_one_line_user_error(returncode: int, stderr: str, *fragments: str) -> None:
    """Exit 2, no traceback, and exactly one ``error:`` line holding every fragment (the log lines may precede it)."""
    assert returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    (line,) = error_lines(stderr)
    for fragment in fragments:
        assert fragment in line, line


def table_row(stdout: str, task: str) -> dict[str, str]:
    """The printed results table's row of ``task``: checkpoint, task, samples, skipped."""
    (row,) = [line.split() for line in stdout.splitlines() if line.startswith(CHECKPOINT) and f" {task} " in line]
    return dict(zip(("checkpoint", "task", "samples", "skipped"), row))


def stored(out: Path, task: str) -> tuple[dict, list[dict]]:
    folder = out / CHECKPOINT
    record = json.loads((folder / f"{task}.json").read_text())
    samples = [json.loads(line) for line in (folder / f"{task}.samples.jsonl").read_text().splitlines()]
    return record, samples


# ---------------------------------------------------------------------------------------------
# Unreadable and unusual images (coco_retrieval, one run covers every damaged file)


def _decompression_bomb(path: Path, side: int = 20000) -> None:
    """A valid 1-bit PNG of ``side`` x ``side`` pixels (400M for 20000): 50 kB on disk, 1.2 GB once RGB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)  # filter byte + one bit per pixel
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _exif_rotated(image: Image.Image, path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    image.crop((0, 0, image.width, image.height // 2)).save(path, format="JPEG", exif=exif)  # not square


# Every damage keeps the file name the annotation uses (``.jpg``); the format comes from the content.
SKIPPED_IMAGES: dict[str, Callable[[Image.Image, Path], None]] = {
    "truncated JPEG": lambda image, path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "zero-byte file": lambda image, path: path.write_bytes(b""),
    "decompression bomb": lambda image, path: _decompression_bomb(path),
    "missing file": lambda image, path: path.unlink(),
}
SKIP_REASONS = {
    "truncated JPEG": "truncated",
    "zero-byte file": "cannot identify image file",
    "decompression bomb": "DecompressionBombError",
    "missing file": "file not found",
}
READABLE_IMAGES: dict[str, Callable[[Image.Image, Path], None]] = {
    "PNG bytes named .jpg": lambda image, path: image.save(path, format="PNG"),
    "CMYK JPEG": lambda image, path: image.convert("CMYK").save(path, format="JPEG"),
    "greyscale JPEG": lambda image, path: image.convert("L").save(path, format="JPEG"),
    "16-bit greyscale PNG": lambda image, path: Image.fromarray(
        np.asarray(image.convert("L"), dtype=np.uint16) * 257
    ).save(path, format="PNG"),
    "RGBA PNG": lambda image, path: image.convert("RGBA").save(path, format="PNG"),
    "palette PNG": lambda image, path: image.convert("P").save(path, format="PNG"),
    "EXIF-rotated JPEG": _exif_rotated,
}


@pytest.fixture(scope="module")
def image_data(minidata_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of the mini COCO with one damaged or unusual image per case; returns (data root, case -> sample id).

    The first test image stays intact: the layout search finds the image folder from it.
    """
    root = tmp_path_factory.mktemp("bad_images")
    shutil.copytree(minidata_root / "coco", root / "coco")
    items = read_karpathy(root / "coco", "coco").items[1:]
    cases = {**SKIPPED_IMAGES, **READABLE_IMAGES}
    ids = {}
    for (case, damage), item in zip(cases.items(), items):
        with Image.open(item.path) as original:
            image = original.convert("RGB")
        damage(image, item.path)
        ids[case] = item.id
    return root, ids


def test_unreadable_images_are_recorded_skips_and_unusual_ones_are_read(
    image_data: tuple[Path, dict[str, str]], tmp_path: Path, cache: Path
) -> None:
    root, ids = image_data
    done = run_cli(cache, *cli_args("coco_retrieval", root, tmp_path / "out", cache))
    assert done.returncode == 0, done.stderr
    record, samples = stored(tmp_path / "out", "coco_retrieval")

    reasons = {skip["id"]: skip["reason"] for skip in record["skipped"]}
    assert set(reasons) == {ids[case] for case in SKIPPED_IMAGES}
    for case, fragment in SKIP_REASONS.items():
        assert reasons[ids[case]].startswith("unreadable image: ") and fragment in reasons[ids[case]], case
    kept = {sample["id"] for sample in samples}
    assert {ids[case] for case in READABLE_IMAGES} <= kept and not kept & set(reasons)
    assert record["num_samples"] == len(kept) == 25 - len(SKIPPED_IMAGES)

    row = table_row(done.stdout, "coco_retrieval")
    assert (row["samples"], row["skipped"]) == (str(len(kept)), str(len(SKIPPED_IMAGES)))


def test_strict_makes_an_unreadable_image_fatal(image_data: tuple[Path, dict[str, str]], tmp_path: Path, cache: Path):
    root, ids = image_data
    done = run_cli(cache, *cli_args("coco_retrieval", root, tmp_path / "out", cache, "--strict"))
    first_bad = next(item for item in read_karpathy(root / "coco", "coco").items if item.id == ids["truncated JPEG"])
    assert_one_line_user_error(done.returncode, done.stderr, str(first_bad.path), "truncated", "without --strict")
    assert not (tmp_path / "out" / CHECKPOINT / "coco_retrieval.json").exists()


def test_images_decode_exactly_as_the_reference_pipelines(image_data: tuple[Path, dict[str, str]]) -> None:
    """``Image.open(path).convert("RGB")``, as open_clip and CLIP_benchmark load images: in particular the EXIF
    orientation is NOT applied (the image is encoded as stored)."""
    from coca_bench.data import load_image

    root, ids = image_data
    path_of = {item.id: item.path for item in read_karpathy(root / "coco", "coco").items}
    for case in READABLE_IMAGES:
        path = path_of[ids[case]]
        with Image.open(path) as reference:
            expected = np.asarray(reference.convert("RGB"))
        assert np.array_equal(np.asarray(load_image(path)), expected), case

    rotated = path_of[ids["EXIF-rotated JPEG"]]
    with Image.open(rotated) as image:
        stored_size, displayed_size = image.size, ImageOps.exif_transpose(image).size
    assert stored_size != displayed_size and load_image(rotated).size == stored_size


# ---------------------------------------------------------------------------------------------
# Videos (kinetics_zeroshot on the first clips)

SHORT_CLIP_FRAMES = 3
BROKEN_VIDEOS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated mp4": (lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]), "unreadable video"),
    "zero-byte mp4": (lambda path: path.write_bytes(b""), "unreadable video"),
    "text named .mp4": (lambda path: path.write_text("not a video\n"), "unreadable video"),
    "missing clip": (lambda path: path.unlink(), "file not found"),
}


def test_unreadable_videos_are_skips_and_a_short_clip_repeats_frames(
    minidata_root: Path, tmp_path: Path, cache: Path
) -> None:
    """A clip with fewer frames than ``num_frames`` is encoded from repeated frames, and its record says which."""
    root = tmp_path / "data"
    shutil.copytree(minidata_root / "kinetics", root / "kinetics")
    clips = read_kinetics(root / "kinetics", "val").items
    for (damage, _), clip in zip(BROKEN_VIDEOS.values(), clips):
        damage(clip.path)
    short = clips[len(BROKEN_VIDEOS)]
    _write_mp4(short.path, [Image.new("RGB", (32, 32), (60 * i, 0, 0)) for i in range(SHORT_CLIP_FRAMES)], VIDEO_FPS)
    limit = len(BROKEN_VIDEOS) + 2

    done = run_cli(cache, *cli_args("kinetics_zeroshot", root, tmp_path / "out", cache, "--limit", str(limit)))
    assert done.returncode == 0, done.stderr
    record, samples = stored(tmp_path / "out", "kinetics_zeroshot")
    reasons = {skip["id"]: skip["reason"] for skip in record["skipped"]}
    assert list(reasons) == [clip.id for clip in clips[: len(BROKEN_VIDEOS)]]
    for (_, fragment), reason in zip(BROKEN_VIDEOS.values(), reasons.values()):
        assert reason.startswith("unreadable video: ") and fragment in reason, reason
    frames = {sample["id"]: sample["frame_indices"] for sample in samples}
    assert list(frames) == [short.id, clips[limit - 1].id]
    assert frames[short.id] == sample_frame_indices(SHORT_CLIP_FRAMES, 16) == [0] * 5 + [1] * 6 + [2] * 5
    row = table_row(done.stdout, "kinetics_zeroshot")
    assert (row["samples"], row["skipped"]) == ("2", str(len(BROKEN_VIDEOS)))


# ---------------------------------------------------------------------------------------------
# Malformed annotations: always fatal, one line naming the file and the key or line


def _edit_json(relative: str, edit: Callable[[dict], object]) -> Callable[[Path], Path]:
    def damage(dataset: Path) -> Path:
        path = dataset / relative
        payload = json.loads(path.read_text())
        edit(payload)
        path.write_text(json.dumps(payload, indent=1))
        return path

    return damage


def _edit_bytes(relative: str, edit: Callable[[bytes], bytes]) -> Callable[[Path], Path]:
    def damage(dataset: Path) -> Path:
        path = dataset / relative
        path.write_bytes(edit(path.read_bytes()))
        return path

    return damage


def _cut_csv_mid_row(data: bytes) -> bytes:
    """The first half of the rows, then the first two fields of the next one: a download cut short."""
    lines = data.decode().splitlines()
    half = len(lines) // 2
    return "\n".join([*lines[:half], ",".join(lines[half].split(",")[:2])]).encode()


def _set_csv_field(line: int, column: str, value: str) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        lines = data.decode().splitlines()
        header = lines[0].split(",")
        fields = lines[line - 1].split(",")
        fields[header.index(column)] = value
        lines[line - 1] = ",".join(fields)
        return ("\n".join(lines) + "\n").encode()

    return edit


def _set(path: list, value: object) -> Callable[[dict], None]:
    def edit(payload: dict) -> None:
        target = payload
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


KARPATHY = "dataset_coco.json"
VQA_ANSWERS = "v2_mscoco_val2014_annotations.json"
VQA_QUESTIONS = "v2_OpenEnded_mscoco_val2014_questions.json"
KINETICS_CSV = "annotations/val.csv"
JSFUSION = "MSRVTT_JSFUSION_test.csv"
_json_cut = _edit_bytes(KARPATHY, lambda data: data[: len(data) // 2])


def _duplicate_cocoid(payload: dict) -> None:
    payload["images"][3]["cocoid"] = payload["images"][1]["cocoid"]


def _duplicate_question(payload: dict) -> None:
    payload["questions"][1]["question_id"] = payload["questions"][0]["question_id"]


ANNOTATION_CASES = {
    "JSON cut in half": ("coco_retrieval", "coco", _json_cut, ["not valid JSON", "at line"]),
    "CSV cut in half": ("kinetics_zeroshot", "kinetics", _edit_bytes(KINETICS_CSV, _cut_csv_mid_row), ["does not have 5 fields"]),
    "VQA annotation without answers": (
        "vqav2", "vqav2", _edit_json(VQA_ANSWERS, lambda p: p["annotations"][0].pop("answers")),
        ["annotations[0] has no key 'answers'"],
    ),
    "wrong type": (
        "coco_retrieval", "coco", _edit_json(KARPATHY, _set(["images", 2, "sentences"], "a cat")),
        ["images[2].sentences is a string ('a cat'), not a list"],
    ),
    "duplicate image ids": ("coco_retrieval", "coco", _edit_json(KARPATHY, _duplicate_cocoid), ["images[3] repeats the image id"]),
    "duplicate question ids": (
        "vqav2", "vqav2", _edit_json(VQA_QUESTIONS, _duplicate_question), ["questions[1] repeats the question_id"],
    ),
    "duplicate clips": (
        "kinetics_zeroshot", "kinetics", _edit_bytes(KINETICS_CSV, lambda d: d + d.splitlines(keepends=True)[1]),
        ["repeats the clip", "of line 2"],
    ),
    "non-UTF-8 JSON": (
        "coco_retrieval", "coco", _edit_bytes(KARPATHY, lambda d: d.replace(b'"raw": "', b'"raw": "\xff', 1)),
        ["is not UTF-8 text (byte 0xff at line"],
    ),
    "non-UTF-8 CSV": (
        "kinetics_zeroshot", "kinetics", _edit_bytes(KINETICS_CSV, lambda d: d.replace(b"\n", b"\n\xe9", 1)),
        ["is not UTF-8 text (byte 0xe9 at line 2)"],
    ),
    "empty caption": (
        "coco_retrieval", "coco", _edit_json(KARPATHY, _set(["images", 0, "sentences", 2, "raw"], "  ")),
        ["images[0].sentences[2].raw is empty"],
    ),
    "empty sentence": (
        "msrvtt_retrieval", "msrvtt", _edit_bytes(JSFUSION, _set_csv_field(3, "sentence", "")),
        ["line 3 has an empty sentence"],
    ),
    "image path outside the dataset": (
        "coco_retrieval", "coco", _edit_json(KARPATHY, _set(["images", 1, "filename"], "../../etc/passwd")),
        ["images[1].filename '../../etc/passwd' leads outside"],
    ),
    "absolute image folder": (
        "coco_retrieval", "coco", _edit_json(KARPATHY, _set(["images", 1, "filepath"], "/etc")),
        ["images[1].filepath '/etc' leads outside"],
    ),
    "clip path outside the dataset": (
        "kinetics_zeroshot", "kinetics", _edit_bytes(KINETICS_CSV, _set_csv_field(3, "youtube_id", "../../../etc/x")),
        ["line 3 youtube_id '../../../etc/x_", "leads outside"],
    ),
    "video path outside the dataset": (
        "msrvtt_retrieval", "msrvtt", _edit_bytes(JSFUSION, _set_csv_field(2, "video_id", "../../../x")),
        ["line 2 video_id '../../../x.mp4' leads outside"],
    ),
}  # fmt: skip


def _damaged_copy(minidata_root: Path, tmp_path: Path, dataset: str, damage: Callable[[Path], Path]) -> Path:
    root = tmp_path / "data"
    shutil.copytree(minidata_root / dataset, root / dataset)
    return damage(root / dataset)


@pytest.mark.parametrize("case", list(ANNOTATION_CASES))
def test_malformed_annotation_is_one_fatal_line(
    case: str, minidata_root: Path, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture, monkeypatch
) -> None:
    """In-process (each case costs milliseconds); the subprocess test below checks exit code and traceback."""
    task, dataset, damage, fragments = ANNOTATION_CASES[case]
    damaged = _damaged_copy(minidata_root, tmp_path, dataset, damage)
    monkeypatch.setenv("COCA_BENCH_CACHE", str(cache))
    code = main(cli_args(task, tmp_path / "data", tmp_path / "out", cache))
    assert_one_line_user_error(code, capsys.readouterr().err, str(damaged), *fragments)
    assert not (tmp_path / "out" / CHECKPOINT / f"{task}.json").exists()


def test_an_annotation_error_exits_2_without_traceback(minidata_root: Path, tmp_path: Path, cache: Path) -> None:
    """Every case above leaves through the same exit: one subprocess proves the exit code and the missing traceback."""
    task, dataset, damage, fragments = ANNOTATION_CASES["JSON cut in half"]
    damaged = _damaged_copy(minidata_root, tmp_path, dataset, damage)
    done = run_cli(cache, *cli_args(task, tmp_path / "data", tmp_path / "out", cache))
    assert_one_line_user_error(done.returncode, done.stderr, str(damaged), *fragments)


def test_a_bug_still_prints_its_traceback(image_data: tuple[Path, dict[str, str]], tmp_path: Path, cache: Path):
    """User errors are recognised by type: a plain ValueError from a task is a bug, with its traceback and exit 1."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "buggy.py").write_text(
        "from coca_bench.registry import MetricSpec, register_task\n\n\n"
        '@register_task("buggy_task", groups=("test",), dataset="coco", metrics=(MetricSpec("x"),))\n'
        "def run(ctx, params):\n"
        '    raise ValueError("a bug in a task")\n'
    )
    done = run_cli(cache, *cli_args("buggy_task", image_data[0], tmp_path / "out", cache, "--plugins", str(plugins)))
    assert done.returncode == 1, done.stderr
    assert "Traceback" in done.stderr and "ValueError: a bug in a task" in done.stderr
    assert not error_lines(done.stderr)
