"""Distributed evaluation under ``torchrun``: rank 0 runs the suite, every other rank only encodes.

Why this split: task plugins stay unchanged and single-process. Rank 0 runs every task (reuse decisions, probe
training, metrics, writing results, the summary, printing); whenever a task asks the feature extractor for features,
rank 0 announces the call (``DistributedFeatureExtractor``) and the other ranks, waiting in ``serve``, make
the same call. Inside the one cached path (``FeatureExtractor._cached``) rank 0 says which cache chunks are missing,
the ranks encode them round-robin by chunk (chunk ``missing[j]`` goes to rank ``j % world_size``), and rank 0
gathers them round by round, writes them to its cache and returns the same arrays a single process would. Workers
never read or write the cache or the output folder, so nodes need no shared file system.

Exactness: each chunk is encoded by one rank with the batch boundaries a single process uses whenever the chunk size
is a multiple of the batch size (the default 512 is, for any power of two up to 512), so the features, and hence the
metrics and per-sample records, are bit-identical to a single-process run.

Initialised from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) when ``WORLD_SIZE > 1``: NCCL on
GPUs (each rank on ``cuda:LOCAL_RANK``), gloo on CPU. Without it, every helper is a no-op. This module imports no
torch at module level (the CLI asks :func:`is_main`); the extractor and the workers' loop are in
:mod:`coca_bench.distributed_features`.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

log = logging.getLogger("coca_bench.distributed")

SHARDING = "contiguous chunks of the feature cache, round-robin by chunk; rank 0 runs the tasks and writes"
# Workers wait in a collective while rank 0 trains a probe or scores captions alone: the default NCCL timeout
# (10-30 minutes) would kill them. A real failure of any rank still ends the job at once (torchrun stops the rest).
_TIMEOUT = timedelta(hours=24)


def world_size() -> int:
    """Processes in this run (torchrun's ``WORLD_SIZE``; 1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0")) if world_size() > 1 else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if world_size() > 1 else 0


def is_main() -> bool:
    """Only rank 0 writes results, prints tables, shows progress and takes the output folder's lock."""
    return rank() == 0


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def is_initialized() -> bool:
    return world_size() > 1 and _dist().is_available() and _dist().is_initialized()


def init(device: str) -> None:
    """Join the process group when launched with ``WORLD_SIZE > 1`` (idempotent); NCCL unless ``device`` is CPU."""
    if world_size() == 1 or is_initialized():
        return
    import torch

    use_cuda = device != "cpu" and not device.startswith("cpu") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(device_for_rank("cuda"))
    _dist().init_process_group("nccl" if use_cuda else "gloo", timeout=_TIMEOUT)
    log.info("rank %d of %d joined (%s)", rank(), world_size(), "nccl" if use_cuda else "gloo")


def shutdown() -> None:
    if is_initialized():
        _dist().destroy_process_group()


def device_for_rank(device: str) -> str:
    """``cuda`` (what ``auto`` resolves to) becomes this rank's GPU, ``cuda:LOCAL_RANK``; others stay as given."""
    return f"cuda:{local_rank()}" if device == "cuda" and world_size() > 1 else device


def barrier() -> None:
    if is_initialized():
        _dist().barrier()


def broadcast_object(obj: Any = None) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not is_initialized():
        return obj
    box = [obj]
    _dist().broadcast_object_list(box, src=0)
    return box[0]


def gather_object(obj: Any) -> list[Any] | None:
    """Every rank's ``obj``, in rank order, on rank 0; ``None`` elsewhere."""
    if not is_initialized():
        return [obj]
    out: list[Any] | None = [None] * world_size() if is_main() else None
    _dist().gather_object(obj, out, dst=0)
    return out


def all_gather_object(obj: Any) -> list[Any]:
    if not is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size()
    _dist().all_gather_object(out, obj)
    return out


def description(items_by_rank: list[int] | None = None) -> dict[str, Any]:
    """What a result records about how its work was split (``run.distributed``)."""
    out: dict[str, Any] = {"world_size": world_size(), "sharding": SHARDING if world_size() > 1 else "single process"}
    if items_by_rank is not None:
        out["items_encoded_by_rank"] = items_by_rank
    return out


__all__ = [
    "SHARDING",
    "all_gather_object",
    "barrier",
    "broadcast_object",
    "description",
    "device_for_rank",
    "gather_object",
    "init",
    "is_initialized",
    "is_main",
    "local_rank",
    "rank",
    "shutdown",
    "world_size",
]
