"""Never a stale number: each case edits data or weights that a stored result depends on, in a way the suite once
missed, and checks that the rerun computes afresh (a new dataset fingerprint and key) instead of serving the old one.

The invariant behind every case: a result reused from the store equals what a fresh run computes now.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import PixelStatsModel, run_task

from coca_bench.runner import RunError


@pytest.fixture()
def data_root(tmp_path: Path, minidata_root: Path) -> Path:
    """A private copy of the mini datasets this module edits (links would edit the session's shared copy)."""
    root = tmp_path / "data"
    for name in ("imagenet", "coco", "vqav2"):
        shutil.copytree(minidata_root / name, root / name)
    return root


def _overwrite_with(targets: list[Path], sources: list[Path]) -> None:
    """Give each target another image's bytes (a same-layout, different-content dataset)."""
    for target, source in zip(targets, sources):
        target.write_bytes(source.read_bytes())


def _rerun_and_fresh(tmp_path: Path, task: str, data_root: Path, **kwargs) -> tuple[dict, dict]:
    rerun, _ = run_task(tmp_path, task, data_root, **kwargs)  # the same output folder: may reuse
    fresh, _ = run_task(tmp_path / "fresh", task, data_root, **kwargs)  # an empty one: computes
    return rerun, fresh


def _assert_not_stale(first: dict, rerun: dict, fresh: dict) -> None:
    assert rerun["dataset"]["fingerprint"] != first["dataset"]["fingerprint"]
    assert rerun["key"] != first["key"]
    assert rerun["key"] == fresh["key"] and rerun["metrics"] == fresh["metrics"]


def test_a_probe_on_a_param_chosen_training_split_sees_that_split_change(tmp_path: Path, data_root: Path) -> None:
    probe = data_root / "imagenet"
    shutil.copytree(probe / "train", probe / "train2")
    params = ["linear_probe.train_split=train2", "linear_probe.dataset=imagenet"]
    first, _ = run_task(tmp_path, "linear_probe", data_root, params=params)
    classes = sorted(p for p in (probe / "train2").iterdir() if p.is_dir())
    a, b = classes[0], classes[1]  # swap two class folders: every one of their images changes label
    a.rename(probe / "train2" / "swap")
    b.rename(a)
    (probe / "train2" / "swap").rename(b)
    rerun, fresh = _rerun_and_fresh(tmp_path, "linear_probe", data_root, params=params)
    _assert_not_stale(first, rerun, fresh)


def test_vqa_images_in_the_sibling_coco_folder_are_fingerprinted(tmp_path: Path, data_root: Path) -> None:
    from coca_bench.model import load_model

    for split in ("val2014", "train2014"):  # the layout the task documents: images beside, in coco/
        for image in (data_root / "vqav2" / split).iterdir():
            (data_root / "coco" / split).mkdir(exist_ok=True)
            image.rename(data_root / "coco" / split / image.name)
        (data_root / "vqav2" / split).rmdir()
    model = load_model("tiny-random-s0")
    first, _ = run_task(tmp_path, "vqav2", data_root, model=model, limit=4)
    val = sorted((data_root / "coco" / "val2014").glob("COCO_val2014_*.jpg"))
    _overwrite_with(val, val[1:] + val[:1])
    rerun, fresh = _rerun_and_fresh(tmp_path, "vqav2", data_root, model=model, limit=4)
    _assert_not_stale(first, rerun, fresh)


def test_karpathy_images_placed_flat_in_the_dataset_folder_are_fingerprinted(tmp_path: Path, data_root: Path) -> None:
    coco = data_root / "coco"
    for folder in ("val2014", "train2014"):
        for image in (coco / folder).iterdir():
            image.rename(coco / image.name)
        (coco / folder).rmdir()
    first, _ = run_task(tmp_path, "coco_retrieval", data_root)
    images = sorted(coco.glob("COCO_*.jpg"))
    _overwrite_with(images, images[3:] + images[:3])
    rerun, fresh = _rerun_and_fresh(tmp_path, "coco_retrieval", data_root)
    _assert_not_stale(first, rerun, fresh)


def test_hidden_files_are_not_scored_and_so_cannot_go_stale(tmp_path: Path, data_root: Path) -> None:
    """AppleDouble ``._*.JPEG`` files and other dot-files: the readers skip them, and the fingerprint follows."""
    val = data_root / "imagenet" / "val"
    first_class = sorted(p for p in val.iterdir() if p.is_dir())[0]
    images = sorted(val.rglob("*.JPEG"))
    shutil.copy(images[-1], first_class / ".extra.JPEG")
    (first_class / f"._{images[0].name}").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    first, _ = run_task(tmp_path, "imagenet_zeroshot", data_root)
    assert first["num_samples"] == len(images)
    shutil.copy(images[0], first_class / ".extra.JPEG")
    rerun, fresh = _rerun_and_fresh(tmp_path, "imagenet_zeroshot", data_root)
    assert rerun["key"] == first["key"] == fresh["key"] and rerun["metrics"] == fresh["metrics"]
    images[1].write_bytes(images[2].read_bytes())  # a visible image still counts, of course
    rerun, fresh = _rerun_and_fresh(tmp_path / "2", "imagenet_zeroshot", data_root)
    assert rerun["key"] == fresh["key"] != first["key"]


class _FileBackedModel(PixelStatsModel):
    """The stand-in model, its weights' checksum read from a file the way real checkpoints are."""

    def __init__(self, weights: Path) -> None:
        from coca_bench.fileio import sha256_file

        super().__init__()
        self.weights_sha256 = sha256_file(weights)
        self.fingerprint = f"file-backed-{self.weights_sha256}"  # as a real model's: its features' cache namespace


def _flip_a_byte_keeping_the_mtime(path: Path) -> None:
    before = path.stat()
    with open(path, "r+b") as handle:
        original = handle.read(1)
        handle.seek(0)
        handle.write(bytes([original[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_weights_edited_in_place_with_the_mtime_restored_are_rehashed(tmp_path: Path, minidata_root: Path) -> None:
    from coca_bench import fileio

    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(4096))
    model = lambda: _FileBackedModel(weights)  # noqa: E731
    first, _ = run_task(tmp_path, "imagenet_zeroshot", minidata_root, model=model())
    _flip_a_byte_keeping_the_mtime(weights)
    edited = model()
    assert edited.weights_sha256 == fileio._hash_file_bytes(weights) != first["checkpoint"]["sha256"]
    with pytest.raises(RunError, match="another checkpoint"):  # other weights under the same name: never reused
        run_task(tmp_path, "imagenet_zeroshot", minidata_root, model=edited)


def test_force_hashes_every_file_afresh_and_records_only_what_it_computed(
    tmp_path: Path, minidata_root: Path, monkeypatch
) -> None:
    """A poisoned memo row (any way it got there) cannot survive ``--force``: neither in the record nor as the
    namespace the forced run's features are written under."""
    import sqlite3

    from coca_bench import fileio
    from coca_bench.cache import cache_root

    monkeypatch.setattr(fileio, "_MEMO", fileio._HashMemo())
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(4096))
    truth = fileio._hash_file_bytes(weights)
    fileio.sha256_file(weights)
    with sqlite3.connect(cache_root() / "file_hashes.sqlite3") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            db.execute(f"UPDATE {table} SET sha256 = ? WHERE path = ?", ("0" * 64, str(weights.resolve())))
    assert _FileBackedModel(weights).weights_sha256 == "0" * 64  # the memo is trusted without --force

    seen: list[str] = []

    def load(spec: str, device: str) -> _FileBackedModel:
        loaded = _FileBackedModel(weights)  # built after the runner took --force: hashes from the bytes
        seen.append(loaded.weights_sha256)
        return loaded

    from coca_bench.results import ResultStore
    from coca_bench.runner import RunConfig, run_suite
    from coca_bench.settings import RunSettings

    settings = RunSettings(device="cpu", num_workers=0, progress=False, cache_dir=tmp_path / "cache", force=True)
    config = RunConfig(tasks="imagenet_zeroshot", checkpoints=["m=x"], data_root=minidata_root,
                       output=tmp_path / "out", settings=settings)  # fmt: skip
    (record,) = run_suite(config, load_model=load)
    assert seen == [truth] and record["checkpoint"]["sha256"] == truth
    assert ResultStore(tmp_path / "out").load("m", "imagenet_zeroshot")["checkpoint"]["sha256"] == truth
    assert record["run"]["feature_cache"]["items_encoded"] > 0
    # The forced run's features went under the namespace of the checksum it computed: a later run that knows the
    # true checksum encodes nothing, and no namespace was written under the poisoned one.
    settings = settings.replace(force=False)
    config = RunConfig(tasks="imagenet_zeroshot", checkpoints=["m=x"], data_root=minidata_root,
                       output=tmp_path / "out2", settings=settings)  # fmt: skip
    (again,) = run_suite(config, load_model=load)
    assert seen[-1] == truth and again["run"]["feature_cache"]["items_encoded"] == 0
    assert len({chunk.parent for chunk in (tmp_path / "cache" / "image").rglob("*.npz")}) == 1
