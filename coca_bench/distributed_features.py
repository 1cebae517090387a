"""The feature extractor across ranks: rank 0 announces each call, the others make it and encode their share.

See :mod:`coca_bench.distributed` for the design; this module imports torch (through the feature extractor).
"""

from __future__ import annotations

import functools
import logging
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from coca_bench.distributed import broadcast_object, gather_object, is_initialized, is_main, rank, world_size
from coca_bench.features import EncodedItem, FeatureExtractor

log = logging.getLogger("coca_bench.distributed")

# Every public method that reaches the cached path once; each is announced to the workers.
_SERVED_METHODS = (
    "embed_images",
    "image_tokens",
    "answer_scores",
    "prompted_answers",
    "multimodal_tokens",
    "captions",
    "embed_videos",
    "video_tokens",
    "video_captions",
    "embed_texts",
)


class _Served(Exception):
    """Raised on a worker once its share of a call is sent: the rest of the call is rank 0's."""


class _RemoteError(RuntimeError):
    """An exception a worker could not send as itself (not picklable)."""


def _announcing(name: str) -> Callable:
    method = getattr(FeatureExtractor, name)

    @functools.wraps(method)
    def wrapper(self: DistributedFeatureExtractor, *args: Any, **kwargs: Any) -> Any:
        if is_main() and not self._calling:
            broadcast_object(("call", name, args, kwargs))
        self._calling = True
        try:
            return method(self, *args, **kwargs)
        finally:
            self._calling = False

    return wrapper


class DistributedFeatureExtractor(FeatureExtractor):
    """A :class:`FeatureExtractor` whose missing chunks are encoded by every rank (see the module docstring).

    Rank 0 calls it as tasks do; the other ranks run :func:`serve`. ``items_encoded_by_rank`` counts, on rank 0,
    the items each rank encoded, for provenance and to show that every rank took part.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._calling = False
        self._entered = False  # a worker reached the collective part of the current call
        self.items_encoded_by_rank = [0] * world_size()

    def _cached(
        self,
        kind: str,
        params: Any,
        item_keys: list[str],
        encode: Callable[[list[int]], Iterator[EncodedItem]],
    ) -> tuple[list[np.ndarray | None], list[str]]:
        if not is_main():
            self._entered = True
            self._encode_share(broadcast_object(), encode)
            raise _Served
        lookup = self._lookup(kind, params, item_keys)
        vectors, reasons, chunks, missing = lookup.vectors, lookup.reasons, lookup.chunks, lookup.missing
        plan = [list(chunks[index]) for index in missing]
        broadcast_object(plan)

        progress = self._progress_bar(sum(map(len, plan)), kind)
        for round_chunks in self._rounds(plan, encode):
            for sender, chunk_items in enumerate(round_chunks):
                if chunk_items is None:
                    continue
                index = missing[chunk_items[0]]
                for position, result in chunk_items[1]:
                    if isinstance(result, str):
                        reasons[position] = result
                    else:
                        vectors[position] = result
                self._store_chunk(lookup, index, item_keys)
                self.items_encoded_by_rank[sender] += len(chunks[index])
                progress.update(len(chunks[index]))
        progress.close()
        return vectors, reasons

    def _encode_share(self, plan: list[list[int]], encode: Callable[[list[int]], Iterator[EncodedItem]]) -> None:
        """A worker's side of one call: encode its chunks and send each round's chunk to rank 0."""
        for _ in self._rounds(plan, encode):
            pass

    def _rounds(
        self, plan: list[list[int]], encode: Callable[[list[int]], Iterator[EncodedItem]]
    ) -> Iterator[list[Any]]:
        """Round ``r`` encodes planned chunk ``r * world_size + rank`` on each rank and gathers them on rank 0.

        Each rank encodes all its chunks through one ``encode`` call (one loader, the batch boundaries a single
        process would use) and pauses after each chunk for the round's gather. An error on any rank is sent with
        the round and raised on rank 0 (workers return to :func:`serve`), as a single process would raise it.
        """
        size, me = world_size(), rank()
        mine = list(range(me, len(plan), size))
        items = encode([p for j in mine for p in plan[j]]) if mine else iter(())
        for round_index in range(-(-len(plan) // size)):
            j = round_index * size + me
            payload: Any = None
            if j < len(plan):
                wanted, got = set(plan[j]), []
                try:
                    while len(got) < len(wanted):
                        position, result = next(items)
                        if position not in wanted:
                            raise RuntimeError(f"encoding returned item {position} out of chunk order.")
                        got.append((position, result))
                except StopIteration:
                    payload = ("error", RuntimeError("Feature encoding returned fewer items than requested."))
                except Exception as exc:  # noqa: BLE001 - sent to rank 0 and raised there
                    payload = ("error", exc if _picklable(exc) else _RemoteError(f"rank {me}: {exc!r}"))
                else:
                    payload = (j, got)
            gathered = gather_object(payload)
            failure = None
            if gathered is not None:
                failure = next((p[1] for p in gathered if p is not None and p[0] == "error"), None)
            failure = broadcast_object(failure)
            if failure is not None:
                if is_main():
                    raise failure
                raise _Served
            if gathered is not None:
                yield gathered


for _name in _SERVED_METHODS:
    setattr(DistributedFeatureExtractor, _name, _announcing(_name))


def _picklable(exc: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001
        return False
    return True


def serve(features: DistributedFeatureExtractor) -> None:
    """A worker's loop for one checkpoint: make each call rank 0 announces, until rank 0 says it is done."""
    while True:
        message = broadcast_object()
        if not (isinstance(message, tuple) and message and message[0] in ("call", "done")):
            raise RuntimeError(f"rank {rank()}: the ranks are out of step (got {type(message).__name__}).")
        if message[0] == "done":
            return
        _, name, args, kwargs = message
        features._entered = False
        try:
            getattr(features, name)(*args, **kwargs)
        except _Served:
            continue
        except Exception as exc:
            if features._entered:
                raise
            # Raised before any collective, from the same inputs as on rank 0, which raised it too and reports it.
            log.debug("rank %d: %s before encoding: %s", rank(), name, exc)


def release_workers() -> None:
    """Rank 0, after a checkpoint's tasks (or on an error): end the workers' :func:`serve` loop."""
    if is_initialized() and is_main():
        broadcast_object(("done",))


__all__ = ["DistributedFeatureExtractor", "release_workers", "serve"]
