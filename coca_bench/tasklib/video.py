"""Video: how frames are sampled from a clip, as parameters every video task shares and records."""

from __future__ import annotations

from typing import Any

from coca_bench.params import Param

FRAME_PARAMS = {
    "num_frames": Param(16, help="frames per clip (the paper states 16 for retrieval only)"),
    "sampling": Param("uniform", choices=("uniform", "head"), help="centres of equal segments, or the first frames"),
    "backend": Param("decord", choices=("decord", "pyav")),
}


def frame_sampling(params: dict[str, Any]) -> Any:
    """The :class:`~coca_bench.data.video.FrameSampling` the parameters describe (part of every video cache key)."""
    from coca_bench.data.video import FrameSampling

    if params["num_frames"] < 1:
        raise ValueError(f"num_frames must be at least 1; got {params['num_frames']}.")
    return FrameSampling(params["num_frames"], params["sampling"], params["backend"])


__all__ = ["FRAME_PARAMS", "frame_sampling"]
