"""A damaged cache chunk or result file is never read back: it is recomputed, and the numbers come out the same."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_task

TASK = "imagenet_zeroshot"  # image and text chunks, fast with the pixel-statistics stand-in model


def _chunks(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.npz"))


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for offset in range(middle, middle + 8):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _half_written(path: Path) -> None:
    path.write_bytes(b"")  # what a non-atomic writer leaves when killed before its first flush


def _features_changed_checksum_kept(path: Path) -> None:
    """A well-formed zip whose features changed after the checksum was taken: only the checksum can tell."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["features"] = arrays["features"] + np.float32(1e-3)
    np.savez(path, **arrays)


def _no_checksum(path: Path) -> None:
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files if name != "checksum"}
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "damage", [_flip_bytes, _truncate, _half_written, _features_changed_checksum_kept, _no_checksum]
)
def test_a_damaged_chunk_is_recomputed_with_identical_numbers(tmp_path, minidata_root, caplog, damage):
    record, samples = run_task(tmp_path, TASK, minidata_root)
    chunks = _chunks(tmp_path / "cache")
    assert record["run"]["feature_cache"]["chunks_encoded"] == len(chunks) >= 2
    for chunk in chunks:
        damage(chunk)
    shutil.rmtree(tmp_path / "out")  # the task itself must run again, through the cache

    with caplog.at_level(logging.WARNING, logger="coca_bench.features"):
        again, again_samples = run_task(tmp_path, TASK, minidata_root)
    cache_stats = again["run"]["feature_cache"]
    assert cache_stats["chunks_invalid"] == len(chunks) and cache_stats["chunks_from_cache"] == 0
    assert cache_stats["chunks_encoded"] == len(chunks)
    assert sum("unusable" in r.getMessage() and "recomputing" in r.getMessage() for r in caplog.records) == len(chunks)
    assert again["metrics"] == record["metrics"] and again_samples == samples

    shutil.rmtree(tmp_path / "out")  # the rewritten chunks are whole again and served from the cache
    third, _ = run_task(tmp_path, TASK, minidata_root)
    assert third["run"]["feature_cache"]["chunks_from_cache"] == len(chunks)
    assert third["run"]["feature_cache"]["chunks_invalid"] == 0


def _truncate_text(path: Path) -> None:
    path.write_text(path.read_text()[: len(path.read_text()) // 2])


def _not_a_record(path: Path) -> None:
    path.write_text("[]\n")


def _flip_a_character(path: Path) -> None:
    text = path.read_text()
    position = text.index('"', 10) + 1  # inside the second string value: still parseable JSON, other bytes
    path.write_text(text[:position] + ("X" if text[position] != "X" else "Y") + text[position + 1 :])


@pytest.mark.parametrize(
    "suffix, damage",
    [
        (".json", _truncate_text),
        (".json", _not_a_record),
        (".samples.jsonl", _truncate_text),
        (".samples.jsonl", _flip_a_character),
    ],
)
def test_a_damaged_result_file_is_rerun_not_reused(tmp_path, minidata_root, caplog, suffix, damage):
    record, samples = run_task(tmp_path, TASK, minidata_root)
    assert record["run"]["feature_cache"]["chunks_from_cache"] == 0  # computed: every chunk encoded
    reused, _ = run_task(tmp_path, TASK, minidata_root)
    assert reused["run"] == record["run"]  # intact: the stored record is reused as it is

    damage(tmp_path / "out" / "m" / f"{TASK}{suffix}")
    with pytest.warns(UserWarning) if suffix == ".samples.jsonl" else caplog.at_level(logging.WARNING):
        again, again_samples = run_task(tmp_path, TASK, minidata_root)
    if suffix == ".json":
        assert any("It will be recomputed" in r.getMessage() for r in caplog.records)
    assert again["run"]["feature_cache"]["chunks_encoded"] == 0  # it ran again, from the cached features
    assert again["run"]["feature_cache"]["chunks_from_cache"] >= 2
    assert again["metrics"] == record["metrics"] and again_samples == samples
