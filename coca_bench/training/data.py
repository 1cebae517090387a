"""Training data for the shipped demo checkpoints, drawn from the mini datasets' scene code.

The evaluation mini datasets are small and fixed (seed 0); a model trained on them would be scored on its own
training images. This module draws a larger training set from the same world (:mod:`coca_bench.data.scenes`) on a
separate random stream, so no training image is an evaluation image, while every text is still true of its pixels:

- ``caption``: one or two shapes with a caption written the way the COCO/NoCaps mini sets write theirs;
- ``label``: one shape with its class name ("red circle") in a zero-shot prompt ("a photo of a red circle."), the
  way the CoCa paper treats labels as text; the prompts are the zero-shot tasks' (CLIP's ImageNet templates). They
  train the contrastive loss only: as captioning targets their templates ("a bad photo of the ...") became what the
  decoder wrote for clips;
- ``vqa``: one to four shapes with ``question: Q answer: A`` text for the decoder only, with the questions of the VQA
  mini set; only the answer (and the end token) is a captioning target, so the decoder learns to answer after the
  VQA task's prompt without learning to start captions with "question:";
- ``video``: a few frames of a moving shape with an MSR-VTT style caption or (contrastive only) its Kinetics-style
  motion label.

Shapes and colours are drawn from the whole world (NoCaps' novel ones too), with the COCO-like common ones more
often, as a web corpus names common things more often than rare ones.

Example ``i`` is a pure function of (seed, i): the set is reproducible, needs no storage, and a resumed training
run sees exactly the examples an uninterrupted one would.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from coca_bench.data import scenes
from coca_bench.data.minidata import COMMON_COLOURS, EXTRA_COLOURS, IMAGE_SIZE, JPEG_QUALITY, _vqa_questions
from coca_bench.data.scenes import MOTIONS, NOVEL_SHAPES, POSITIONS, SHAPES, Scene

KINDS: tuple[str, ...] = ("caption", "label", "vqa", "video")
# Separates the training stream from the mini datasets' streams (which are seeded by dataset name), so that even
# the same seed never draws an evaluation scene.
TRAIN_STREAM = zlib.crc32(b"coca-bench training data")
# CLIP's Kinetics prompt set (4 framings x 7 phrasings), as the Kinetics zero-shot task uses it.
KINETICS_PROMPTS: tuple[str, ...] = tuple(
    f"{frame} {phrase}{{c}}."
    for frame in ("a photo of", "a video of", "a example of", "a demonstration of")
    for phrase in ("", "a person ", "a person using ", "a person doing ", "a person during ", "a person performing ",
                   "a person practicing ")
)  # fmt: skip


@dataclass(frozen=True)
class TrainingDataConfig:
    """What the training set holds. ``seed`` differs from the evaluation sets' (0) by default; ``size`` examples make
    one epoch; the weights set the mix of example kinds."""

    seed: int = 1
    size: int = 50_000
    caption_weight: float = 0.4
    label_weight: float = 0.2
    vqa_weight: float = 0.25
    video_weight: float = 0.15
    novel_share: float = 0.25
    """How often a shape is one of the novel ones (hexagon, diamond, cross) and a colour one of the extra ones."""
    num_frames: int = 4
    """Frames per training clip, at the centres of equal segments (evaluation samples 16 the same way)."""
    jpeg: bool = True
    """Round-trip images through JPEG as the mini datasets store them, so training pixels look like evaluation's."""

    def __post_init__(self) -> None:
        weights = (self.caption_weight, self.label_weight, self.vqa_weight, self.video_weight)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"TrainingDataConfig: kind weights must be >= 0 with a positive sum, got {weights}.")
        if not 0 <= self.novel_share <= 1:
            raise ValueError(f"TrainingDataConfig: novel_share must lie in [0, 1], got {self.novel_share}.")
        if self.size < 1 or self.num_frames < 1:
            raise ValueError("TrainingDataConfig: size and num_frames must be at least 1.")


@dataclass(frozen=True)
class TrainingExample:
    kind: str
    frames: tuple[Image.Image, ...]
    """One image, or ``num_frames`` frames of a clip; empty when drawn with ``render=False``."""
    text: str
    contrastive: bool
    """Whether the text is a description to contrast with other images (VQA text trains the decoder only)."""
    prompt: str | None = None
    """A prefix of ``text`` that is context, not a target of the captioning loss (the VQA prompt)."""
    captioned: bool = True
    """Whether the text is a captioning target at all (class-name prompts are not)."""


def label_templates() -> list[str]:
    """The zero-shot tasks' ImageNet prompts (CLIP's 80 and the 7 simple ones), as format strings over ``{c}``."""
    from open_clip import zero_shot_metadata

    sets = (zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES, zero_shot_metadata.SIMPLE_IMAGENET_TEMPLATES)
    return list(dict.fromkeys(template("{c}") for templates in sets for template in templates))


class TrainingData:
    """``size`` examples, each rendered on demand from (seed, index)."""

    def __init__(self, config: TrainingDataConfig | None = None) -> None:
        self.config = config or TrainingDataConfig()
        self._templates = label_templates()
        weights = np.array(
            [self.config.caption_weight, self.config.label_weight, self.config.vqa_weight, self.config.video_weight]
        )
        self._cumulative = np.cumsum(weights / weights.sum())

    def __len__(self) -> int:
        return self.config.size

    def example(self, index: int, render: bool = True) -> TrainingExample:
        """Example ``index``; ``render=False`` draws the same text without drawing pixels (to build a vocabulary)."""
        if not 0 <= index < self.config.size:
            raise IndexError(f"training example {index} is outside [0, {self.config.size}).")
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, TRAIN_STREAM, index]))
        kind = KINDS[int(np.searchsorted(self._cumulative, rng.random(), side="right").clip(0, len(KINDS) - 1))]
        if kind == "video":
            clip = scenes.moving_shape(rng, self._shape(rng), self._colour(rng), _pick(rng, MOTIONS))
            captioned = bool(rng.random() < 0.5)
            if captioned:
                text = scenes.describe_motion(clip, rng, 1)[0]
            else:
                text = _pick(rng, KINETICS_PROMPTS).format(c=clip.motion)
            n = self.config.num_frames
            frames = tuple(self._pixels(clip.at((2 * j + 1) / (2 * n)), video=True) for j in range(n)) if render else ()
            return TrainingExample(kind, frames, text, True, captioned=captioned)
        if kind == "vqa":
            scene = _vqa_scene(rng)
            asked = _vqa_questions(scene, rng)
            question, _, _, answer, _ = asked[int(rng.integers(0, len(asked)))]
            prompt = f"question: {question} answer:"
            return TrainingExample(kind, (self._pixels(scene),) if render else (), f"{prompt} {answer}", False, prompt)
        elif kind == "label":
            scene = _single(rng, self._shape(rng), self._colour(rng))
            shape = scene.shapes[0]
            text = _pick(rng, self._templates).format(c=f"{shape.colour} {shape.kind}")
            return TrainingExample(kind, (self._pixels(scene),) if render else (), text, True, captioned=False)
        else:
            scene = self._caption_scene(rng)
            text = scenes.describe_scene(scene, rng, 1)[0]
        return TrainingExample(kind, (self._pixels(scene),) if render else (), text, True)

    def texts(self) -> Iterator[str]:
        """Every example's text, in order, without rendering (the training vocabulary is built from these)."""
        for index in range(self.config.size):
            yield self.example(index, render=False).text

    def _shape(self, rng: np.random.Generator) -> str:
        return _pick(rng, NOVEL_SHAPES if rng.random() < self.config.novel_share else SHAPES)

    def _colour(self, rng: np.random.Generator) -> str:
        return _pick(rng, EXTRA_COLOURS if rng.random() < self.config.novel_share else COMMON_COLOURS)

    def _caption_scene(self, rng: np.random.Generator) -> Scene:
        """One shape (three in four), or two shapes side by side or stacked, as the caption mini sets draw."""
        if rng.random() < 0.75:
            return _single(rng, self._shape(rng), self._colour(rng))
        kinds = [self._shape(rng)]
        while len(kinds) < 2:
            kinds += [k for k in [self._shape(rng)] if k != kinds[0]]
        colours = [self._colour(rng)]
        while len(colours) < 2:
            colours += [c for c in [self._colour(rng)] if c != colours[0]]
        slots = ["left", "right"] if rng.random() < 0.5 else ["top", "bottom"]
        shapes = tuple(scenes.place_shape(rng, k, c, p, None) for k, c, p in zip(kinds, colours, slots))
        return Scene(shapes, scenes.random_background(rng))

    def _pixels(self, scene: Scene, video: bool = False) -> Image.Image:
        image = scenes.render_scene(scene, IMAGE_SIZE)
        if not self.config.jpeg:
            return image
        buffer = io.BytesIO()
        # images as the mini datasets write them (4:4:4); frames with 4:2:0 chroma, like their H.264 clips
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=2 if video else 0)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(0, len(options)))])


def _single(rng: np.random.Generator, kind: str, colour: str) -> Scene:
    position = _pick(rng, tuple(POSITIONS))
    size = _pick(rng, ("small", "large"))
    return Scene((scenes.place_shape(rng, kind, colour, position, size),), scenes.random_background(rng))


def _vqa_scene(rng: np.random.Generator) -> Scene:
    """One to four shapes on the four side slots, as the VQA mini set draws them (its questions assume these)."""
    count = int(rng.integers(1, 5))
    slots = [str(p) for p in rng.choice(["left", "right", "top", "bottom"], size=count, replace=False)]
    kinds = [str(k) for k in rng.choice(SHAPES, size=count, replace=False)]
    colours = [str(c) for c in rng.choice(COMMON_COLOURS, size=count, replace=True)]
    shapes = tuple(scenes.place_shape(rng, k, c, p, None, jitter=0.01) for k, c, p in zip(kinds, colours, slots))
    return Scene(shapes, scenes.random_background(rng))


__all__ = ["KINDS", "TrainingData", "TrainingDataConfig", "TrainingExample", "label_templates"]
