"""``coca-bench cache``: the size report, and pruning by last use, by kind or all, never touching foreign files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import PixelStatsModel
from PIL import Image

from coca_bench.cache import CACHE_MARKER
from coca_bench.cli import main
from coca_bench.features import FeatureExtractor
from coca_bench.settings import RunSettings

DAY = 86400


def _fill(cache: Path, tmp_path: Path) -> FeatureExtractor:
    """Image and text chunks (three items a chunk) in ``cache``, through the real extractor."""
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    samples = []
    for i in range(5):
        Image.new("RGB", (8, 8), color=(40 * i, 200 - 30 * i, 9 * i)).save(folder / f"{i}.png")
        samples.append({"id": str(i), "path": folder / f"{i}.png"})
    settings = RunSettings(device="cpu", num_workers=0, progress=False, batch_size=3)
    extractor = FeatureExtractor(PixelStatsModel(), cache, settings, chunk_size=3)
    extractor.embed_images(samples)
    extractor.embed_texts(["a", "b", "c", "d"])
    return extractor


def _info(capsys, *args: str) -> dict:
    assert main(["cache", "--info", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _age(paths, days: float) -> None:
    for path in paths:
        moment = time.time() - days * DAY
        os.utime(path, (moment, moment))


def test_info_reports_bytes_chunks_kinds_namespaces_and_last_use(tmp_path, capsys):
    cache = tmp_path / "cache"
    _fill(cache, tmp_path)
    chunks = sorted(cache.rglob("*.npz"))
    _age(chunks[:1], 3)
    info = _info(capsys, "--cache-dir", str(cache))
    assert info["cache_dir"] == str(cache) and info["chunks"] == len(chunks) == 4
    assert info["bytes"] == sum(p.stat().st_size for p in chunks)
    assert {k: (v["chunks"], len(v["namespaces"])) for k, v in info["kinds"].items()} == {
        "image": (2, 1),
        "text": (2, 1),
    }
    assert info["oldest"] < info["newest"]

    assert main(["cache", "--cache-dir", str(cache)]) == 0  # the human-readable form, the default action
    text = capsys.readouterr().out
    assert f"feature cache {cache}: " in text and f"({info['bytes']} bytes) in 4 chunks" in text


def test_info_and_prune_follow_coca_bench_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COCA_BENCH_CACHE", str(tmp_path / "root"))
    _fill(tmp_path / "root" / "features", tmp_path)
    assert _info(capsys)["cache_dir"] == str(tmp_path / "root" / "features")
    assert _info(capsys)["chunks"] == 4
    assert main(["cache", "prune", "--all"]) == 0
    assert not list((tmp_path / "root").rglob("*.npz"))


def test_prune_older_than_removes_only_chunks_no_run_has_used(tmp_path, capsys):
    cache = tmp_path / "cache"
    extractor = _fill(cache, tmp_path)
    images, texts = sorted((cache / "image").rglob("*.npz")), sorted((cache / "text").rglob("*.npz"))
    _age(images + texts, 10)
    extractor.embed_texts(["a", "b", "c", "d"])  # a cache hit marks the text chunks as used now
    assert extractor.stats.chunks_from_cache == 2

    assert main(["cache", "prune", "--older-than", "5", "--dry-run", "--cache-dir", str(cache)]) == 0
    assert "would remove 2 files" in capsys.readouterr().out and all(p.exists() for p in images)

    assert main(["cache", "prune", "--older-than", "5", "--cache-dir", str(cache)]) == 0
    assert "removed 2 files" in capsys.readouterr().out
    assert not any(p.exists() for p in images) and all(p.exists() for p in texts)
    assert not (cache / "image").exists()  # the folders it emptied go too


def test_prune_all_and_kind_touch_only_cache_files(tmp_path):
    cache = tmp_path / "cache"
    _fill(cache, tmp_path)
    foreign = [cache / "notes.txt", cache / "image" / "README", cache / "text" / "x" / "keep.me"]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not a chunk")
    namespace = next(p for p in sorted((cache / "image").iterdir()) if p.is_dir())  # not the foreign README
    old_temp, new_temp = namespace / ".abc.npz.1.tmp", namespace / ".abc.npz.2.tmp"  # left by killed writers
    old_temp.write_bytes(b"x")
    new_temp.write_bytes(b"x")
    _age([old_temp], 1)

    assert main(["cache", "prune", "--all", "--kind", "image", "--cache-dir", str(cache)]) == 0
    assert not list((cache / "image").rglob("*.npz")) and len(list((cache / "text").rglob("*.npz"))) == 2
    assert not old_temp.exists() and new_temp.exists()  # a fresh temp file may belong to a live run

    assert main(["cache", "prune", "--all", "--cache-dir", str(cache)]) == 0
    assert not list(cache.rglob("*.npz"))
    assert all(p.read_text() == "not a chunk" for p in foreign)


@pytest.mark.parametrize(
    "args, message",
    [
        (["prune"], "cache prune needs exactly one of --older-than DAYS or --all."),
        (["prune", "--all", "--older-than", "3"], "cache prune needs exactly one of --older-than DAYS or --all."),
        (["prune", "--older-than", "-1"], "--older-than must be 0 or more days; got -1.0."),
        (["--info", "--all"], "cache --info reports only; run `cache prune --older-than DAYS` or `cache prune --all`."),
    ],
)
def test_bad_cache_commands_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(["cache", *args, "--cache-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder): what a refused prune must leave as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def test_prune_refuses_a_folder_that_is_not_the_feature_cache(tmp_path, capsys):
    """The wrong --cache-dir of issue 16: a project folder whose ``<a>/<b>/<c>.npz`` looks like the chunk layout."""
    project = tmp_path / "project"
    embeddings = project / "experiments" / "run1" / "embeddings.npz"
    embeddings.parent.mkdir(parents=True)
    np.savez(embeddings, vectors=np.ones((2, 3), dtype=np.float32))
    (project / "notes.txt").write_text("mine")
    before = _tree(project)
    for extra in ([], ["--kind", "experiments"], ["--dry-run"]):
        assert main(["cache", "prune", "--all", "--cache-dir", str(project), *extra]) == 2
        assert capsys.readouterr().err == (
            f"error: {project} is not a coca-bench feature cache (it has no {CACHE_MARKER} file), so cache prune "
            "removed nothing; pass the feature cache's folder as --cache-dir, or, if this is a cache written before "
            f"the marker existed, create {project / CACHE_MARKER} first.\n"
        )
        assert _tree(project) == before


def test_the_extractor_marks_its_cache_and_a_marked_cache_prunes(tmp_path, capsys):
    cache = tmp_path / "cache"
    _fill(cache, tmp_path)
    assert (cache / CACHE_MARKER).is_file()
    assert main(["cache", "prune", "--all", "--cache-dir", str(cache)]) == 0
    assert "removed 4 files" in capsys.readouterr().out and not list(cache.rglob("*.npz"))
    assert sorted(p.name for p in cache.iterdir()) == [CACHE_MARKER]  # still a cache, ready for the next run


def test_an_unmarked_cache_from_before_the_marker_is_recognised_only_by_its_exact_layout(tmp_path, capsys):
    """A cache written before the marker existed holds only ``<kind>/<16 hex>/<64 hex>.npz`` (and their temp files):
    prune adopts it and marks it. One foreign file anywhere and it is refused like any other folder."""
    cache = tmp_path / "cache"
    _fill(cache, tmp_path)
    (cache / CACHE_MARKER).unlink()
    namespace = next(p for p in sorted((cache / "image").iterdir()) if p.is_dir())  # not the foreign README
    (namespace / f".{'a' * 64}.npz.x1y2.tmp").write_bytes(b"x")  # a killed writer's leftover is part of the layout
    foreign = cache / "text" / "notes.npz"
    foreign.write_bytes(b"not a chunk")
    before = _tree(cache)
    assert main(["cache", "prune", "--all", "--cache-dir", str(cache)]) == 2
    assert f"{cache} is not a coca-bench feature cache" in capsys.readouterr().err
    assert _tree(cache) == before

    foreign.unlink()
    assert main(["cache", "prune", "--all", "--dry-run", "--cache-dir", str(cache)]) == 0
    assert "would remove 4 files" in capsys.readouterr().out and not (cache / CACHE_MARKER).exists()
    assert main(["cache", "prune", "--all", "--cache-dir", str(cache)]) == 0
    assert "removed 4 files" in capsys.readouterr().out and not list(cache.rglob("*.npz"))
    assert (cache / CACHE_MARKER).is_file()  # adopted: from now on it is recognised by its marker
