"""Distributed evaluation: ``torchrun`` on 2 CPU processes (gloo) gives exactly a single process's results.

The end-to-end test launches the suite as a user does, once with ``torch.distributed.run --nproc-per-node 2`` and
once as one process, and compares every metric and every per-sample record. The small tests run the distributed
extractor in two spawned processes with a fake model: the same vectors and skips as one process, an error on a
worker raised on rank 0, the ranks staying in step across calls, and a feature kind registered here (outside the
package) served on both ranks without the distributed extractor knowing it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from coca_bench import distributed
from coca_bench.features import feature_kind
from coca_bench.settings import RunSettings

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("imagenet_zeroshot", "coco_retrieval", "coco_captioning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _suite(tmp_path: Path, name: str, *launcher: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "COCA_BENCH_CACHE": str(tmp_path / "shared_cache"),  # bundled checkpoints and mini data, generated once
        "COCA_BENCH_CHUNK_SIZE": "4",  # several chunks per feature kind at --limit 12, so both ranks get work
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    args = [
        *("--tasks", ",".join(TASKS), "--limit", "12", "--checkpoint", "tiny-random-s0", "--batch-size", "4"),
        *("--no-progress", "--num-workers", "0", "--no-compare"),
        *("--output", str(tmp_path / name), "--cache-dir", str(tmp_path / f"features_{name}")),
    ]
    proc = subprocess.run(
        [sys.executable, *launcher, str(ROOT / "run_suite.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, f"{name} run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_torchrun_two_ranks_equal_a_single_process(tmp_path):
    single = _suite(tmp_path, "single")
    port = str(_free_port())
    launcher = ("-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", port)
    multi = _suite(tmp_path, "multi", *launcher)

    assert multi.stdout.count("tiny-random-s0  ") == len(TASKS)  # one results table, printed by rank 0 only
    assert "[rank 1]" not in multi.stderr
    for task in TASKS:
        one = json.loads((tmp_path / "single" / "tiny-random-s0" / f"{task}.json").read_text())
        two = json.loads((tmp_path / "multi" / "tiny-random-s0" / f"{task}.json").read_text())
        assert two["metrics"] == one["metrics"], task
        assert two["key"] == one["key"], task  # world size is provenance, not part of the result key
        same_samples = (tmp_path / "multi" / "tiny-random-s0" / f"{task}.samples.jsonl").read_bytes()
        assert same_samples == (tmp_path / "single" / "tiny-random-s0" / f"{task}.samples.jsonl").read_bytes(), task

        assert one["run"]["distributed"]["world_size"] == 1
        split = two["run"]["distributed"]
        assert split["world_size"] == 2 and "round-robin by chunk" in split["sharding"]
        by_rank = split["items_encoded_by_rank"]
        assert len(by_rank) == 2 and all(n > 0 for n in by_rank), (task, by_rank)  # both ranks did part of it
        assert (
            sum(by_rank) == two["run"]["feature_cache"]["items_encoded"] == one["run"]["feature_cache"]["items_encoded"]
        )
    assert single.stdout.count("tiny-random-s0  ") == len(TASKS)


# --------------------------------------------------------------------------- the extractor in two processes


@feature_kind
def token_counts(features, texts: list[str]) -> np.ndarray:
    """A toy kind, registered by this test module as a plugin would: each text's count of non-pad tokens."""
    count = lambda ids: (ids != 0).sum(dim=1, keepdim=True).float().numpy()
    return features.from_texts("token_count", {}, texts, count)


@feature_kind
def pixel_means(features, samples: list) -> np.ndarray:
    """A toy image kind whose batches of 3 straddle chunks of 2: a failed item may come before its chunk's turn."""
    means = lambda pixels, _: pixels.mean(dim=(2, 3)).numpy()
    return features.from_images("pixel_mean", {}, samples, means, batch_size=3)


def _worker(rank: int, port: int, cache: str, result_file: str, nan_on_worker: bool) -> None:
    env = {"RANK": rank, "WORLD_SIZE": 2, "LOCAL_RANK": rank, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    os.environ.update({key: str(value) for key, value in env.items()})
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "tests"))
    from test_features import FakeModel, make_images

    from coca_bench.distributed_features import DistributedFeatureExtractor, release_workers, serve
    from coca_bench.features import FeatureExtractionError

    class NanOnRank1(FakeModel):
        def encode_text(self, ids, normalize=True):
            out = super().encode_text(ids, normalize)
            return out * float("nan") if nan_on_worker and distributed.rank() == 1 else out

    distributed.init("cpu")
    settings = RunSettings(batch_size=2, num_workers=0, progress=False, device="cpu")
    features = DistributedFeatureExtractor(NanOnRank1(), Path(cache), settings, chunk_size=2)
    try:
        if not distributed.is_main():  # the calls' arguments come from rank 0
            serve(features)
            return
        samples = make_images(Path(cache).parent / "images", 9)
        texts = [f"caption {i}" for i in range(11)]
        try:
            out: dict = {}
            try:
                out["texts"] = features.embed_texts(texts)
            except FeatureExtractionError as exc:
                out["error"] = str(exc)
            images = features.embed_images(samples)
            out |= {"images": images.vectors, "ids": images.ids, "by_rank": list(features.items_encoded_by_rank)}
            again = features.embed_images(samples)  # all from rank 0's cache: no rank encodes
            out |= {"again": again.vectors, "by_rank_after": list(features.items_encoded_by_rank)}
            out["token_counts"] = token_counts(features, texts)
            out["toy_by_rank"] = [n - m for n, m in zip(features.items_encoded_by_rank, out["by_rank_after"])]
            broken = make_images(Path(cache).parent / "broken", 9)
            broken[4].path.write_bytes(b"not an image")  # rank 0's batch [0, 1, 4] yields item 4's skip first
            means = pixel_means(features, broken)
            out |= {"means": means.vectors, "means_skipped": [s.sample_id for s in means.skipped]}
            try:  # a shared path called outside any kind is never announced: refused on rank 0, before any collective
                features.from_texts("token_count", {"unannounced": True}, texts, lambda ids: ids.float().numpy())
            except RuntimeError as exc:
                out["unannounced"] = str(exc)
        finally:
            release_workers()
        np.save(result_file, out, allow_pickle=True)
    finally:
        distributed.shutdown()


def _spawn(tmp_path: Path, nan_on_worker: bool) -> dict:
    result = tmp_path / "result.npy"
    mp.start_processes(
        _worker,
        args=(_free_port(), str(tmp_path / "cache"), str(result), nan_on_worker),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    return np.load(result, allow_pickle=True).item()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """One run of the worker above on two ranks, shared by the tests that read its results."""
    tmp_path = tmp_path_factory.mktemp("two_ranks")
    return _spawn(tmp_path, nan_on_worker=False), tmp_path


def test_two_ranks_give_one_process_vectors_and_share_the_work(two_ranks):
    sys.path.insert(0, str(ROOT / "tests"))
    from test_features import FakeModel, extractor, make_images

    out, tmp_path = two_ranks
    single = extractor(FakeModel(), None, chunk_size=2)
    np.testing.assert_array_equal(out["texts"], single.embed_texts([f"caption {i}" for i in range(11)]))
    expected = single.embed_images(make_images(tmp_path / "images", 9))
    np.testing.assert_array_equal(out["images"], expected.vectors)
    assert out["ids"] == expected.ids
    assert out["by_rank"] == [6 + 5, 5 + 4]  # texts: chunks 0,2,4 (6) | 1,3,5 (5); images: 0,2,4 (5) | 1,3 (4)
    assert out["by_rank_after"] == out["by_rank"]  # the second call was served from the cache
    np.testing.assert_array_equal(out["again"], out["images"])


def test_a_kind_registered_outside_the_package_is_served_on_every_rank(two_ranks):
    """No list of kinds to keep: a kind left off one would reach the cache on rank 0 alone and hang the ranks."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_features import FakeModel, extractor, make_images

    out, tmp_path = two_ranks
    single = token_counts(extractor(FakeModel(), None, chunk_size=2), [f"caption {i}" for i in range(11)])
    np.testing.assert_array_equal(out["token_counts"], single)
    assert out["toy_by_rank"] == [6, 5]  # chunks 0,2,4 | 1,3,5: rank 1 made the call rank 0 announced
    broken = make_images(tmp_path / "broken_single", 9)
    broken[4].path.write_bytes(b"not an image")
    means = pixel_means(extractor(FakeModel(), None, chunk_size=2), broken)
    np.testing.assert_array_equal(out["means"], means.vectors)
    assert out["means_skipped"] == ["s4"] == [s.sample_id for s in means.skipped]
    assert "outside a feature kind" in out["unannounced"]


def test_an_error_on_a_worker_is_raised_on_rank_0_and_the_ranks_stay_in_step(tmp_path):
    out = _spawn(tmp_path, nan_on_worker=True)
    assert "NaN or infinite features" in out["error"]
    assert len(out["ids"]) == 9 and out["by_rank"][1] > 0  # the next call still ran on both ranks
