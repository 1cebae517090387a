"""Feature kinds registered by name, and what they return.

Why a registry: every kind is called through :meth:`ExtractorBase.compute` by its name, so the distributed extractor
can announce any call to the other ranks and they can make the same call, for every kind there is, including one a
plugin registers: no list of kinds is kept beside the code, and none can be forgotten on it (a kind missing from such
a list reached the cache on rank 0 alone and put the ranks out of step).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

import numpy as np

from coca_bench.errors import CocaBenchError
from coca_bench.registry import Skip

P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E")

# name -> the kind's function, called with the extractor first
FEATURE_KINDS: dict[str, Callable[..., Any]] = {}


class FeatureExtractionError(CocaBenchError, ValueError):
    """An input could not be encoded and the run asked for --strict, or the model produced invalid features."""


class FeatureKindError(CocaBenchError, ValueError):
    """Two different functions claim one feature kind name."""


def _origin(function: Callable[..., Any]) -> tuple[str, str]:
    return function.__code__.co_filename, function.__qualname__


def feature_kind(function: Callable[Concatenate[E, P], R]) -> Callable[Concatenate[E, P], R]:
    """Register ``function(extractor, ...)`` as the feature kind named after it; return it as a method (or a function
    of the extractor) that runs through ``extractor.compute(name, ...)``.

    A kind builds on the extractor's shared paths (:meth:`~ExtractorBase.from_images`, ``from_videos``,
    ``from_texts``, ``cached``). A kind defined outside the package has its file's code (and what it imports) in
    its cache key, as the package's code is in every key. Importing its module again (a reload, or one file under
    two module names) keeps one entry; another function under a taken name is an error naming both.
    """
    name = function.__name__
    previous = FEATURE_KINDS.get(name)
    if previous is not None and _origin(previous) != _origin(function):
        raise FeatureKindError(
            f"Feature kind {name!r} is registered twice: by {previous.__qualname__} in {_origin(previous)[0]} "
            f"and by {function.__qualname__} in {_origin(function)[0]}; rename one."
        )
    FEATURE_KINDS[name] = function

    @functools.wraps(function)
    def call(extractor: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        return extractor.compute(name, *args, **kwargs)

    return call


class ImageEmbeddings(NamedTuple):
    """Embeddings of the images that could be read, their sample ids, and the samples skipped."""

    vectors: np.ndarray  # [kept, D] float32, in input order
    ids: list[str]
    skipped: list[Skip]


class GeneratedCaptions(NamedTuple):
    """Decoded captions and their token ids (start token first, padding after the end token), per kept image."""

    texts: list[str]
    token_ids: np.ndarray  # [kept, max_new_tokens + 1] int64
    ids: list[str]
    skipped: list[Skip]


class VideoEmbeddings(NamedTuple):
    """What was computed for the readable clips, their ids, the skipped ones, and the frames each one used."""

    vectors: np.ndarray
    ids: list[str]
    skipped: list[Skip]
    frame_indices: list[list[int]]


__all__ = [
    "FEATURE_KINDS",
    "FeatureExtractionError",
    "FeatureKindError",
    "GeneratedCaptions",
    "ImageEmbeddings",
    "VideoEmbeddings",
    "feature_kind",
]
