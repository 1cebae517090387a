"""Mini stand-ins for the ImageNet robustness test sets (CoCa Table 4), each in its archive's layout and styled like
the real set, with the mini ImageNet's label space (8 "<colour> <shape>" classes under real ImageNet wnids).

- ImageNet-V2: new draws of the same scenes, in folders named by label index, ``.jpeg`` with hashed names.
- ImageNet-A: the A-list classes of the mini label space, awkwardly framed (zoomed in, the shape cut by the border,
  grey clutter across it).
- ImageNet-R: the R-list classes, as renditions (cartoon outlines, painted or striped fills, patterned backgrounds).
- ImageNet-Sketch: every class as a sketch: coloured pencil outlines and cross-hatching on white (single-direction
  hatching, sparser ink, left demo at 0.54 top-1 against a bar of 0.42; cross-hatching gives 0.75).
- ObjectNet: ``images/<folder>/<hash>.png`` with a 1-pixel red border, shapes on a table-and-wall backdrop seen at a
  tilt; most ObjectNet classes are coarser than ImageNet's ("Red shape" maps to "red circle; red square", as "Alarm
  clock" maps to "analog clock; digital clock"), and two folders map to no ImageNet class.

Every label stays true of the pixels: the shape and its colour are drawn as the class says; only framing, texture
and backdrop change.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from coca_bench.data import scenes
from coca_bench.data.imagenet import official_subset_wnids
from coca_bench.data.minidata import (
    IMAGE_SIZE,
    IMAGENET_CLASSES,
    JPEG_QUALITY,
    POSITIONS,
    _MiniDataWriter,
    _single,
    _synset_mapping,
    _wnid,
)
from coca_bench.data.scenes import COLOURS, Scene, Shape

PER_CLASS = 3
# ImageNet-A and -R score 4 classes each: twice the images, so that demo's lead over demo-early is clear of the noise.
SUBSET_PER_CLASS = 6
V2_FOLDER = "imagenetv2-matched-frequency-format-val"
# ObjectNet folder -> (label, the mini ImageNet classes it maps to); the last two map to none (not scored). Classes
# coarser than ImageNet's are named by colour: demo tells shapes apart only with their colour word in the prompt
# (shape-only names, "Circle" for "red circle; blue circle", scored 0.58 on plain scenes, too close to chance 0.25).
OBJECTNET_CLASSES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "red_shape": ("Red shape", (("red", "circle"), ("red", "square"))),
    "blue_shape": ("Blue shape", (("blue", "triangle"), ("blue", "circle"))),
    "green_shape": ("Green shape", (("green", "square"), ("green", "triangle"))),
    "yellow_star": ("Yellow star", (("yellow", "star"),)),
    "orange_hexagon": ("Orange hexagon", (("orange", "hexagon"),)),
    "plus_sign": ("Plus sign", (("orange", "cross"),)),
}
OBJECTNET_UNMAPPED = ("orange_hexagon", "plus_sign")


def _labels_in(subset: str) -> list[int]:
    """The mini classes whose wnid is in an official subset list (``imagenet_a``, ``imagenet_r``)."""
    wnids = official_subset_wnids(subset)
    return [label for label in range(len(IMAGENET_CLASSES)) if _wnid(label) in wnids]


def _hex_name(rng: np.random.Generator, length: int) -> str:
    return hashlib.sha1(rng.bytes(16)).hexdigest()[:length]


def _save(writer: _MiniDataWriter, relative: str, image: Image.Image) -> None:
    """Write a styled rendering (JPEG, or PNG by suffix). It stays out of ``ground_truth.json``, whose entries are
    flat scenes that the pixels must match exactly (centre colour, plain background, one blob per shape): a styled
    image's truth is its folder's class, whose colour dominates its saturated pixels (tests check that)."""
    path = writer._path(relative)
    if path.suffix == ".png":
        image.save(path, format="PNG")
    else:
        image.save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=0)


def _outline(shape: Shape, size: int) -> list[tuple[float, float]]:
    """The shape's boundary as a closed polygon, in pixels."""
    cx, cy, r = shape.centre[0] * size, shape.centre[1] * size, shape.radius * size
    if shape.kind == "circle":
        return [(cx + r * math.cos(2 * math.pi * i / 48), cy + r * math.sin(2 * math.pi * i / 48)) for i in range(48)]
    if shape.kind == "square":
        half = 0.85 * r
        return [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    if shape.kind == "cross":
        a = 0.32 * r
        return [(cx - a, cy - r), (cx + a, cy - r), (cx + a, cy - a), (cx + r, cy - a), (cx + r, cy + a),
                (cx + a, cy + a), (cx + a, cy + r), (cx - a, cy + r), (cx - a, cy + a), (cx - r, cy + a),
                (cx - r, cy - a), (cx - a, cy - a)]  # fmt: skip
    return scenes._polygon(shape.kind, cx, cy, r)


def _mask(shape: Shape, size: int) -> np.ndarray:
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon(_outline(shape, size), fill=255)
    return np.asarray(mask) > 0


# -- ImageNet-V2 ------------------------------------------------------------------------------------------------


def write_imagenet_v2(writer: _MiniDataWriter, rng: np.random.Generator) -> None:
    writer.write_text("imagenet_v2/LOC_synset_mapping.txt", _synset_mapping())
    for label, (colour, kind) in enumerate(IMAGENET_CLASSES):
        for _ in range(PER_CLASS):
            writer.write_image(f"imagenet_v2/{V2_FOLDER}/{label}/{_hex_name(rng, 40)}.jpeg", _single(rng, colour, kind))


# -- ImageNet-A: hard framing -----------------------------------------------------------------------------------


def _hard_framing(rng: np.random.Generator, colour: str, kind: str) -> Image.Image:
    """A large shape seen through a zoomed-in window whose border cuts a part of it off, with grey clutter strokes."""
    scene = Scene(
        (scenes.place_shape(rng, kind, colour, "center", "large", jitter=0.03),), scenes.random_background(rng)
    )
    side = 2 * IMAGE_SIZE
    big = scenes.render_scene(scene, side)
    window = int(1.3 * IMAGE_SIZE)
    cx, cy = (c * side for c in scene.shapes[0].centre)
    radius = scene.shapes[0].radius * side
    inset = float(rng.uniform(0.5, 0.9)) * radius  # the shape's centre this far inside one side of the window
    corner = {
        "left": (cx - inset, cy - window / 2),
        "right": (cx + inset - window, cy - window / 2),
        "top": (cx - window / 2, cy - inset),
        "bottom": (cx - window / 2, cy + inset - window),
    }[str(rng.choice(["left", "right", "top", "bottom"]))]
    left, top = (int(np.clip(v, 0, side - window)) for v in corner)
    image = big.crop((left, top, left + window, top + window)).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 4))):
        grey = int(rng.integers(90, 150))
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, IMAGE_SIZE, size=4))
        draw.line([(x0, y0), (x1, y1)], fill=(grey, grey, grey), width=int(rng.integers(2, 4)))
    return image


def write_imagenet_a(writer: _MiniDataWriter, rng: np.random.Generator) -> None:
    writer.write_text("imagenet_a/LOC_synset_mapping.txt", _synset_mapping())
    for label in _labels_in("imagenet_a"):
        colour, kind = IMAGENET_CLASSES[label]
        for _ in range(SUBSET_PER_CLASS):
            image = _hard_framing(rng, colour, kind)
            # ImageNet-A's names: <id>_<class>_<class>_<confidence>.jpg; the class words hold no path separator
            first, last = (int(v) for v in rng.integers(0, 10**6, size=2))
            name = f"0.{first:06d}_{colour} {kind}_{colour} {kind}_0.{last:06d}"
            _save(writer, f"imagenet_a/imagenet-a/{_wnid(label)}/{name}.jpg", image)


# -- ImageNet-R: renditions -------------------------------------------------------------------------------------


def _patterned_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A light checkerboard, stripes or dots: light enough that every shape colour stays far from it."""
    base = np.array(scenes.random_background(rng), dtype=np.float64)
    other = np.clip(base + rng.uniform(-30, 30, size=3), 180, 255)
    y, x = np.mgrid[0:size, 0:size]
    period = int(rng.integers(10, 20))
    pattern = str(rng.choice(["checks", "stripes", "dots"]))
    if pattern == "checks":
        second = ((x // period) + (y // period)) % 2 == 1
    elif pattern == "stripes":
        second = ((x + y) // period) % 2 == 1
    else:
        second = ((x % period - period / 2) ** 2 + (y % period - period / 2) ** 2) < (period / 4) ** 2
    return np.where(second[..., None], other, base)


def _rendition(rng: np.random.Generator, colour: str, kind: str) -> Image.Image:
    """The shape as a cartoon (dark outline), a painting (brush-noise fill) or an embroidery-like striped fill, on a
    patterned background."""
    position = str(rng.choice(list(POSITIONS)))
    shape = scenes.place_shape(rng, kind, colour, position, "large")
    canvas = _patterned_background(rng, IMAGE_SIZE)
    inside = _mask(shape, IMAGE_SIZE)
    fill = np.array(COLOURS[colour], dtype=np.float64)
    style = str(rng.choice(["cartoon", "painting", "striped"]))
    if style == "painting":
        noise = rng.normal(0, 18, size=(IMAGE_SIZE, IMAGE_SIZE, 1)) + rng.normal(0, 6, size=(IMAGE_SIZE, IMAGE_SIZE, 3))
        canvas[inside] = np.clip(fill + noise, 0, 255)[inside]
    elif style == "striped":
        y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
        light = ((x - y) // 4) % 3 == 0
        canvas[inside & ~light] = fill
        canvas[inside & light] = np.clip(fill * 0.5 + 127, 0, 255)
    else:
        canvas[inside] = fill
    image = Image.fromarray(canvas.astype(np.uint8), "RGB")
    if style == "cartoon":
        ImageDraw.Draw(image).polygon(_outline(shape, IMAGE_SIZE), outline=(25, 25, 25), width=3)
    return image


def write_imagenet_r(writer: _MiniDataWriter, rng: np.random.Generator) -> None:
    writer.write_text("imagenet_r/LOC_synset_mapping.txt", _synset_mapping())
    for label in _labels_in("imagenet_r"):
        colour, kind = IMAGENET_CLASSES[label]
        for _ in range(SUBSET_PER_CLASS):
            image = _rendition(rng, colour, kind)
            _save(writer, f"imagenet_r/imagenet-r/{_wnid(label)}/{_hex_name(rng, 16)}.jpg", image)


# -- ImageNet-Sketch ---------------------------------------------------------------------------------------------


def _sketch(rng: np.random.Generator, colour: str, kind: str) -> Image.Image:
    """Pencil strokes on white: the outline traced twice with a wobble and cross-hatching inside, in the class
    colour."""
    position = str(rng.choice(list(POSITIONS)))
    shape = scenes.place_shape(rng, kind, colour, position, "large")
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    ink = COLOURS[colour]
    outline = _outline(shape, IMAGE_SIZE)
    for _ in range(2):
        wobble = rng.normal(0, 0.8, size=(len(outline), 2))
        points = [(x + float(dx), y + float(dy)) for (x, y), (dx, dy) in zip(outline, wobble)]
        draw.line([*points, points[0]], fill=ink, width=2, joint="curve")
    inside = _mask(shape, IMAGE_SIZE)
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    hatch = inside & ((((x + y) % 5) < 2) | (((x - y) % 5) < 2))
    pixels = np.asarray(image).copy()
    pixels[hatch] = ink
    return Image.fromarray(pixels, "RGB")


def write_imagenet_sketch(writer: _MiniDataWriter, rng: np.random.Generator) -> None:
    writer.write_text("imagenet_sketch/LOC_synset_mapping.txt", _synset_mapping())
    for label, (colour, kind) in enumerate(IMAGENET_CLASSES):
        for j in range(PER_CLASS):
            image = _sketch(rng, colour, kind)
            _save(writer, f"imagenet_sketch/sketch/{_wnid(label)}/sketch_{j}.JPEG", image)


# -- ObjectNet ---------------------------------------------------------------------------------------------------


def _objectnet_photo(rng: np.random.Generator, colour: str, kind: str) -> Image.Image:
    """The shape on a table in front of a wall, the camera tilted, framed by ObjectNet's 1-pixel red border."""
    wall = scenes.random_background(rng)
    table = tuple(int(v) for v in rng.integers(150, 185, size=3))
    horizon = int(IMAGE_SIZE * rng.uniform(0.55, 0.7))
    shape = scenes.place_shape(rng, kind, colour, "center", "large", jitter=0.05)
    image = scenes.render_scene(Scene((), wall), IMAGE_SIZE)
    ImageDraw.Draw(image).rectangle([0, horizon, IMAGE_SIZE, IMAGE_SIZE], fill=table)
    ImageDraw.Draw(image).polygon(_outline(shape, IMAGE_SIZE), fill=COLOURS[colour])
    image = image.rotate(float(rng.uniform(-20, 20)), resample=Image.BILINEAR, fillcolor=wall)
    ImageDraw.Draw(image).rectangle([0, 0, IMAGE_SIZE - 1, IMAGE_SIZE - 1], outline=(255, 0, 0), width=1)
    return image


def write_objectnet(writer: _MiniDataWriter, rng: np.random.Generator) -> None:
    writer.write_json(
        "objectnet/objectnet-1.0/mappings/folder_to_objectnet_label.json",
        {folder: label for folder, (label, _) in OBJECTNET_CLASSES.items()},
    )
    writer.write_json(
        "objectnet/objectnet-1.0/mappings/objectnet_to_imagenet_1k.json",
        {
            label: "; ".join(f"{colour} {kind}" for colour, kind in classes)
            for folder, (label, classes) in OBJECTNET_CLASSES.items()
            if folder not in OBJECTNET_UNMAPPED
        },
    )
    for folder, (_, classes) in OBJECTNET_CLASSES.items():
        for _ in range(PER_CLASS if folder not in OBJECTNET_UNMAPPED else 1):
            colour, kind = classes[int(rng.integers(0, len(classes)))]
            image = _objectnet_photo(rng, colour, kind)
            _save(writer, f"objectnet/objectnet-1.0/images/{folder}/{_hex_name(rng, 32)}.png", image)


WRITERS: dict[str, Callable[[_MiniDataWriter, np.random.Generator], None]] = {
    "imagenet_v2": write_imagenet_v2,
    "imagenet_a": write_imagenet_a,
    "imagenet_r": write_imagenet_r,
    "imagenet_sketch": write_imagenet_sketch,
    "objectnet": write_objectnet,
}
README_ROWS: list[str] = [
    f"| `imagenet_v2/` | `LOC_synset_mapping.txt`, `{V2_FOLDER}/<label index>/<hash>.jpeg` (the 8 classes, new"
    " draws) |",
    "| `imagenet_a/` | `LOC_synset_mapping.txt`, `imagenet-a/<wnid>/*.jpg`: the classes of the official ImageNet-A"
    " list, awkwardly framed |",
    "| `imagenet_r/` | `LOC_synset_mapping.txt`, `imagenet-r/<wnid>/*.jpg`: the classes of the official ImageNet-R"
    " list, as renditions |",
    "| `imagenet_sketch/` | `LOC_synset_mapping.txt`, `sketch/<wnid>/*.JPEG`: every class as coloured pencil"
    " sketches |",
    "| `objectnet/` | `objectnet-1.0/mappings/{folder_to_objectnet_label,objectnet_to_imagenet_1k}.json`,"
    " `objectnet-1.0/images/<folder>/<hash>.png` (4 classes mapped to 1 or 2 mini ImageNet classes, 2 unmapped) |",
]
