"""Rendered scenes with known content, for the bundled mini datasets.

A scene is a few flat-coloured shapes on a light, slightly tinted background. The
scene description (shape, colour, position, size, motion) is the ground truth from
which labels, captions and VQA answers are written, so every one of them is true of
the pixels. Geometry is in fractions of the image side, so the same scene renders at
any size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]

# Saturated colours, far from each other and from the light backgrounds.
COLOURS: dict[str, RGB] = {
    "red": (215, 35, 35),
    "green": (35, 160, 60),
    "blue": (35, 75, 215),
    "yellow": (240, 205, 25),
    "purple": (135, 55, 175),
    "orange": (245, 125, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
NOVEL_SHAPES: tuple[str, ...] = ("hexagon", "diamond", "cross")  # NoCaps "out-domain" objects

# Where a shape named by a position word sits (centre, in fractions of the side).
POSITIONS: dict[str, tuple[float, float]] = {
    "left": (0.25, 0.5),
    "right": (0.75, 0.5),
    "top": (0.5, 0.25),
    "bottom": (0.5, 0.75),
    "center": (0.5, 0.5),
}
POSITION_PHRASES: dict[str, str] = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
# Radii (fraction of the side) by size word; the ranges are far apart so the words stay true.
SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0.09, 0.12), "large": (0.17, 0.20)}
# Several shapes share one image: smaller radii keep the four side slots from touching.
CROWDED_RADIUS = (0.08, 0.11)

MOTIONS: tuple[str, ...] = ("moving left", "moving right", "moving up", "moving down", "growing", "shrinking")


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    position: str
    centre: tuple[float, float]
    radius: float


@dataclass(frozen=True)
class Scene:
    shapes: tuple[Shape, ...]
    background: RGB


@dataclass(frozen=True)
class MovingShape:
    """One shape whose centre and radius change linearly over a clip."""

    kind: str
    colour: str
    motion: str
    start_centre: tuple[float, float]
    end_centre: tuple[float, float]
    start_radius: float
    end_radius: float
    background: RGB

    def at(self, t: float) -> Scene:
        """The still scene at time ``t`` in [0, 1]."""
        x = self.start_centre[0] + t * (self.end_centre[0] - self.start_centre[0])
        y = self.start_centre[1] + t * (self.end_centre[1] - self.start_centre[1])
        radius = self.start_radius + t * (self.end_radius - self.start_radius)
        return Scene((Shape(self.kind, self.colour, "center", (x, y), radius),), self.background)


def random_background(rng: np.random.Generator) -> RGB:
    """A light near-neutral tint: every shape colour stays far from it."""
    grey = int(rng.integers(205, 240))
    tint = rng.integers(-10, 11, size=3)
    return tuple(int(np.clip(grey + t, 0, 255)) for t in tint)  # type: ignore[return-value]


def place_shape(
    rng: np.random.Generator, kind: str, colour: str, position: str, size: str | None = None, jitter: float = 0.02
) -> Shape:
    """A shape at ``position`` with a small random offset; ``size`` picks the radius range (None: crowded)."""
    low, high = SIZE_RANGES[size] if size else CROWDED_RADIUS
    cx, cy = POSITIONS[position]
    dx, dy = rng.uniform(-jitter, jitter, size=2)
    return Shape(kind, colour, position, (cx + float(dx), cy + float(dy)), float(rng.uniform(low, high)))


def size_word(shape: Shape) -> str | None:
    for word, (low, high) in SIZE_RANGES.items():
        if low <= shape.radius <= high:
            return word
    return None


def moving_shape(rng: np.random.Generator, kind: str, colour: str, motion: str) -> MovingShape:
    """A clip's shape for one of :data:`MOTIONS`; the path stays inside the frame."""
    background = random_background(rng)
    offset = float(rng.uniform(-0.05, 0.05))
    radius = float(rng.uniform(0.10, 0.13))
    far, near = 0.74, 0.26
    paths = {
        "moving left": ((far, 0.5 + offset), (near, 0.5 + offset), radius, radius),
        "moving right": ((near, 0.5 + offset), (far, 0.5 + offset), radius, radius),
        "moving up": ((0.5 + offset, far), (0.5 + offset, near), radius, radius),
        "moving down": ((0.5 + offset, near), (0.5 + offset, far), radius, radius),
        "growing": ((0.5, 0.5), (0.5, 0.5), 0.07, 0.28),
        "shrinking": ((0.5, 0.5), (0.5, 0.5), 0.28, 0.07),
    }
    if motion not in paths:
        raise ValueError(f"Unknown motion {motion!r}; use one of {MOTIONS}.")
    start, end, r0, r1 = paths[motion]
    return MovingShape(kind, colour, motion, start, end, r0, r1, background)


def render_scene(scene: Scene, size: int) -> Image.Image:
    """Draw ``scene`` on a ``size`` x ``size`` RGB canvas with a gentle vertical gradient."""
    ramp = np.linspace(-6.0, 6.0, size)[:, None, None]
    canvas = np.clip(np.asarray(scene.background, dtype=np.float64)[None, None, :] + ramp, 0, 255)
    image = Image.fromarray(np.broadcast_to(canvas, (size, size, 3)).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for shape in scene.shapes:
        _draw_shape(draw, shape, size)
    return image


def render_clip(clip: MovingShape, num_frames: int, size: int) -> list[Image.Image]:
    return [render_scene(clip.at(i / max(1, num_frames - 1)), size) for i in range(num_frames)]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, size: int) -> None:
    fill = COLOURS[shape.colour]
    cx, cy = shape.centre[0] * size, shape.centre[1] * size
    r = shape.radius * size
    if shape.kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape.kind == "square":
        half = 0.85 * r
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=fill)
    elif shape.kind == "cross":
        arm = 0.32 * r
        draw.rectangle([cx - r, cy - arm, cx + r, cy + arm], fill=fill)
        draw.rectangle([cx - arm, cy - r, cx + arm, cy + r], fill=fill)
    else:
        draw.polygon(_polygon(shape.kind, cx, cy, r), fill=fill)


def _polygon(kind: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if kind == "triangle":
        # Centroid at the centre, so the centre pixel is inside the triangle.
        return _regular(cx, cy, r, 3, -90.0)
    if kind == "hexagon":
        return _regular(cx, cy, r, 6, 0.0)
    if kind == "diamond":
        return [(cx, cy - r), (cx + 0.7 * r, cy), (cx, cy + r), (cx - 0.7 * r, cy)]
    if kind == "star":
        points = []
        for i in range(10):
            radius = r if i % 2 == 0 else 0.45 * r
            angle = math.radians(-90.0 + 36.0 * i)
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        return points
    raise ValueError(f"Unknown shape {kind!r}; use one of {SHAPES + NOVEL_SHAPES}.")


def _regular(cx: float, cy: float, r: float, sides: int, start_degrees: float) -> list[tuple[float, float]]:
    return [
        (
            cx + r * math.cos(math.radians(start_degrees + 360.0 * i / sides)),
            cy + r * math.sin(math.radians(start_degrees + 360.0 * i / sides)),
        )
        for i in range(sides)
    ]


# ----------------------------------------------------------------------------------------------
# Descriptions: every sentence is built from the scene, never from free text.

_SHAPE_SYNONYMS = {
    "circle": "round disc",
    "square": "square block",
    "triangle": "three-sided shape",
    "star": "five-pointed star",
    "hexagon": "six-sided shape",
    "diamond": "diamond shape",
    "cross": "plus sign",
}
_PLURALS = {"cross": "crosses"}


def plural(kind: str) -> str:
    return _PLURALS.get(kind, kind + "s")


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _noun_phrase(shape: Shape, with_size: bool = False) -> str:
    size = size_word(shape) if with_size else None
    words = f"{size} {shape.colour} {shape.kind}" if size else f"{shape.colour} {shape.kind}"
    return f"{article(words)} {words}"


def describe_scene(scene: Scene, rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct true captions of a one- or two-shape scene, capitalised COCO style."""
    candidates = _single_shape_captions(scene.shapes[0]) if len(scene.shapes) == 1 else _two_shape_captions(scene)
    if count > len(candidates):
        raise ValueError(f"Only {len(candidates)} captions are available for this scene, {count} requested.")
    chosen = rng.choice(len(candidates), size=count, replace=False)
    return [_sentence(candidates[int(i)]) for i in sorted(chosen)]


def _single_shape_captions(shape: Shape) -> list[str]:
    where = POSITION_PHRASES[shape.position]
    synonym = _SHAPE_SYNONYMS[shape.kind]
    captions = [
        f"{_noun_phrase(shape, with_size=True)} {where}",
        f"{_noun_phrase(shape)} on a light background",
        f"a simple drawing of {_noun_phrase(shape)} {where}",
        f"{article(shape.colour)} {shape.colour} {synonym} {where}",
        f"there is one {shape.colour} {shape.kind} {where} of the picture",
        f"a single {shape.kind} colored {shape.colour}, placed {where}",
        f"{_noun_phrase(shape)} and nothing else",
    ]
    return captions


def _two_shape_captions(scene: Scene) -> list[str]:
    first, second = scene.shapes[:2]
    a, b = _noun_phrase(first), _noun_phrase(second)
    return [
        f"{a} and {b}",
        f"{a} {POSITION_PHRASES[first.position]} and {b} {POSITION_PHRASES[second.position]}",
        f"two shapes: {a} and {b}",
        f"{b} {POSITION_PHRASES[second.position]} with {a} {POSITION_PHRASES[first.position]}",
        f"a drawing of a {first.kind} and a {second.kind} on a light background",
        f"a {first.colour} shape and a {second.colour} shape",
        f"{a} next to {b}",
    ]


def describe_motion(clip: MovingShape, rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct true captions of a moving-shape clip (MSR-VTT style: lower case, no period)."""
    thing = f"{clip.colour} {clip.kind}"
    a_thing = f"{article(clip.colour)} {thing}"
    verbs = {
        "moving left": ["moves to the left", "slides from right to left", "travels leftwards across the screen"],
        "moving right": ["moves to the right", "slides from left to right", "travels rightwards across the screen"],
        "moving up": ["moves up", "rises from the bottom to the top", "travels upwards across the screen"],
        "moving down": ["moves down", "falls from the top to the bottom", "travels downwards across the screen"],
        "growing": [
            "grows bigger",
            "gets larger in the middle of the screen",
            "expands until it fills much of the frame",
        ],
        "shrinking": ["shrinks", "gets smaller in the middle of the screen", "becomes tiny in the center"],
    }[clip.motion]
    candidates = [f"{a_thing} {verb}" for verb in verbs] + [
        f"an animation of {a_thing} {clip.motion}",
        f"a video of a {clip.kind} {clip.motion}",
        f"a {clip.colour} shape {verbs[0]} on a light background",
    ]
    chosen = rng.choice(len(candidates), size=count, replace=False)
    return [candidates[int(i)] for i in sorted(chosen)]


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."
