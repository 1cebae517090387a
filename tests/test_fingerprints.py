"""Content fingerprints: datasets, annotation files, source code, and the file-hash memo."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from coca_bench import fileio
from coca_bench.fingerprints import annotation_fingerprint, content_fingerprint, source_fingerprint


def test_annotation_fingerprint_depends_on_names_and_content_not_order_or_location(tmp_path: Path) -> None:
    first = tmp_path / "a" / "ds"
    first.mkdir(parents=True)
    (first / "labels.json").write_text("[0, 1]")
    (first / "classes.txt").write_text("cat\ndog\n")
    files = [first / "labels.json", first / "classes.txt"]
    fingerprint = annotation_fingerprint(files)
    assert fingerprint == annotation_fingerprint(files[::-1])
    moved = shutil.copytree(first, tmp_path / "b" / "ds")
    assert fingerprint == annotation_fingerprint([moved / "labels.json", moved / "classes.txt"])
    (moved / "labels.json").write_text("[1, 0]")
    assert fingerprint != annotation_fingerprint([moved / "labels.json", moved / "classes.txt"])
    with pytest.raises(ValueError, match="folder"):
        annotation_fingerprint([first])
    with pytest.raises(FileNotFoundError, match="missing.json"):
        annotation_fingerprint([first / "missing.json"])


def _dataset(root: Path) -> Path:
    for wnid, payload in (("n01", b"\x01" * 100), ("n02", b"\x02" * 100)):
        (root / "val" / wnid).mkdir(parents=True)
        (root / "val" / wnid / "img.JPEG").write_bytes(payload)
    return root


def test_dataset_content_change_of_equal_size_changes_the_fingerprint(tmp_path: Path) -> None:
    """An image re-encoded to the same number of bytes used to keep its path+size fingerprint."""
    root = _dataset(tmp_path / "imagenet")
    before = content_fingerprint([root / "val"], root)
    image = root / "val" / "n01" / "img.JPEG"
    image.write_bytes(b"\x03" * 100)  # same size; the memo sees the new mtime and reads the bytes again
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 1_000_000))  # coarse-mtime filesystems
    after = content_fingerprint([root / "val"], root)
    assert before != after


def test_dataset_fingerprint_sees_added_moved_and_missing_files_but_not_the_root(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "imagenet")
    base = content_fingerprint([root / "val"], root)
    assert base == content_fingerprint([shutil.copytree(root, tmp_path / "copy") / "val"], tmp_path / "copy")
    shutil.move(root / "val" / "n01" / "img.JPEG", root / "val" / "n02" / "img2.JPEG")  # relabelled image
    assert content_fingerprint([root / "val"], root) != base
    assert content_fingerprint([root / "absent"], root) != content_fingerprint([root / "other_absent"], root)
    (root / "val" / ".DS_Store").write_bytes(b"x")  # hidden files are not data
    moved = content_fingerprint([root / "val"], root)
    (root / "val" / ".DS_Store").unlink()
    assert moved == content_fingerprint([root / "val"], root)


def test_file_hashes_are_remembered_by_path_size_and_mtime(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COCA_BENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "big.bin"
    path.write_bytes(b"a" * 1000)
    reads: list[Path] = []
    original = fileio._hash_file_bytes
    monkeypatch.setattr(fileio, "_hash_file_bytes", lambda p: reads.append(p) or original(p))
    first = fileio.sha256_file(path)
    assert fileio.sha256_file(path) == first and len(reads) == 1  # the second call only stats the file
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert fileio.sha256_file(path) != first and len(reads) == 2


def test_source_fingerprint_changes_with_any_source_edit(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    files = [tmp_path / "a.py", tmp_path / "b.py"]
    before = source_fingerprint(files, tmp_path)
    (tmp_path / "b.py").write_text("y = 3\n")
    assert source_fingerprint(files, tmp_path) != before
