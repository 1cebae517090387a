"""The feature extractor across ranks: rank 0 announces each call, the others make it and encode their share.

See :mod:`coca_bench.distributed` for the design; this module imports torch (through the feature extractor).

Why by name: every feature kind runs through :meth:`ExtractorBase.compute` under its registered name
(:func:`coca_bench.features.feature_kind`), so rank 0 announces the name and the arguments, and the workers make the
same call. A kind registered anywhere, a plugin's included, is served without this module knowing it.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from coca_bench.distributed import broadcast_object, gather_object, is_initialized, is_main, rank, world_size
from coca_bench.features import FEATURE_KINDS, FeatureExtractor
from coca_bench.features.base import ItemEncoder

log = logging.getLogger("coca_bench.distributed")


class _Served(Exception):
    """Raised on a worker once its share of a call is sent: the rest of the call is rank 0's."""


class _RemoteError(RuntimeError):
    """An exception a worker could not send as itself (not picklable)."""


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

    def compute(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """On rank 0, announce the call to the workers first (a kind called inside another is not announced: the
        workers make it inside the outer call)."""
        if is_main() and not self._calling:
            broadcast_object(("call", name, args, kwargs))
        outer, self._calling = self._calling, True
        try:
            return super().compute(name, *args, **kwargs)
        finally:
            self._calling = outer

    def cached(
        self, kind: str, params: Mapping[str, Any], item_keys: list[str], encode: ItemEncoder
    ) -> tuple[list[np.ndarray | None], list[str]]:
        if not is_main():
            self._entered = True
            self._encode_share(broadcast_object(), encode)
            raise _Served
        if not self._calling:  # the workers would never reach this call's collectives
            raise RuntimeError(
                f"{kind} features were asked for outside a feature kind; call a kind registered with @feature_kind."
            )
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
                self.store.save(lookup, index, item_keys)
                self.items_encoded_by_rank[sender] += len(chunks[index])
                progress.update(len(chunks[index]))
        progress.close()
        return vectors, reasons

    def _encode_share(self, plan: list[list[int]], encode: ItemEncoder) -> None:
        """A worker's side of one call: encode its chunks and send each round's chunk to rank 0."""
        for _ in self._rounds(plan, encode):
            pass

    def _rounds(self, plan: list[list[int]], encode: ItemEncoder) -> Iterator[list[Any]]:
        """Round ``r`` encodes planned chunk ``r * world_size + rank`` on each rank and gathers them on rank 0.

        Each rank encodes all its chunks through one ``encode`` call (one loader, the batch boundaries a single
        process would use) and pauses after each chunk for the round's gather; an item of a later chunk that comes
        early (a batch across two chunks, a clip whose header failed) waits for its round. An error on any rank is
        sent with the round and raised on rank 0 (workers return to :func:`serve`), as a single process would.
        """
        size, me = world_size(), rank()
        mine = list(range(me, len(plan), size))
        chunk_of = {p: j for j in mine for p in plan[j]}
        arrived: dict[int, list[tuple[int, Any]]] = {j: [] for j in mine}
        items = encode([p for j in mine for p in plan[j]]) if mine else iter(())
        for round_index in range(-(-len(plan) // size)):
            j = round_index * size + me
            payload: Any = None
            if j < len(plan):
                try:
                    while len(arrived[j]) < len(plan[j]):
                        position, result = next(items)
                        if position not in chunk_of:
                            raise RuntimeError(f"encoding returned item {position}, which was not asked for.")
                        arrived[chunk_of[position]].append((position, result))
                except StopIteration:
                    payload = ("error", RuntimeError("Feature encoding returned fewer items than requested."))
                except Exception as exc:  # noqa: BLE001 - sent to rank 0 and raised there
                    payload = ("error", exc if _picklable(exc) else _RemoteError(f"rank {me}: {exc!r}"))
                else:
                    payload = (j, arrived.pop(j))
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
        if name not in FEATURE_KINDS:  # rank 0 is waiting in this call's collectives: fail loudly, never hang quietly
            raise RuntimeError(
                f"rank {rank()}: rank 0 asked for feature kind {name!r}, which is not registered here; "
                "every rank must import the module that registers it."
            )
        features._entered = False
        try:
            features.compute(name, *args, **kwargs)
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
