"""Mini SNLI-VE and NLVR2, in their official layouts (:mod:`coca_bench.data.snli_ve`, :mod:`coca_bench.data.nlvr2`).

Every statement is true, false or undecidable of the pixels by construction. What they ask is what the shipped
``demo`` checkpoint's frozen decoder can carry to a probe: whether a colour is in an image (its captions name the
colours of their shapes). The probe trains on other images than it is scored on.

- ``snli_ve/``: two-shape scenes; hypotheses "There is a <colour> shape." (entailment when a shape has that colour,
  contradiction otherwise) and statements no picture can settle (neutral: "The circle was drawn by a child.").
  ``sentence1`` (SNLI's text premise, never model input) is a true caption of the image. Each image has every colour
  statement (two true, two false) and two neutral ones; 36 train and 12 dev images (24 train images left demo's
  lead over demo-early inside the bootstrap interval).
- ``nlvr2/``: sets of four image pairs, each set with two sentences about all four pairs ("Both images contain a red
  shape.", "At least one image contains a blue shape."), so consistency has several pairs per sentence. Images are
  ``.png`` files, half of them JPEG bytes, as some of the real ones are; train images in numbered subfolders.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from coca_bench.data import scenes
from coca_bench.data.minidata import COMMON_COLOURS as COLOURS
from coca_bench.data.minidata import IMAGE_SIZE
from coca_bench.data.scenes import SHAPES, Scene

NEUTRAL_STATEMENTS: tuple[str, ...] = (
    "The {kind} was drawn by a child.",
    "The {kind} is made of paper.",
    "The {kind} is someone's favourite shape.",
    "The picture was drawn on a Monday.",
    "The {kind} was cut out of a magazine.",
    "Someone is about to paint over the {kind}.",
)
NLVR2_FORMS: dict[str, str] = {
    "both": "Both images contain a {colour} shape.",
    "either": "At least one image contains a {colour} shape.",
}
README_ROWS: list[str] = [
    "| `snli_ve/` | `snli_ve_{train,dev}.jsonl` (`Flikr30kID`, `gold_label`, `sentence1` premise, `sentence2` "
    "hypothesis) and `flickr30k-images/`; train and dev on distinct images |",
    "| `nlvr2/` | `data/{train,dev}.json` (one object per line: `identifier` split-set-pair-sentence, `label` "
    "True/False), images `dev/<pair>-img{0,1}.png` and `images/train/<n>/...` (some JPEG bytes under `.png`) |",
]


def _two_shapes(rng: np.random.Generator, colours: list[str]) -> Scene:
    """Two shapes of distinct kinds side by side or stacked, as the caption sets draw them."""
    kinds = [str(k) for k in rng.choice(SHAPES, size=2, replace=False)]
    slots = ["left", "right"] if rng.random() < 0.5 else ["top", "bottom"]
    shapes = tuple(scenes.place_shape(rng, k, c, p, None) for k, c, p in zip(kinds, colours, slots))
    return Scene(shapes, scenes.random_background(rng))


def _parses(sentence: str) -> dict[str, str]:
    """Flat stand-ins for SNLI's parse fields (present in every shipped line, unused by the task)."""
    tokens = sentence.replace(".", " .").split()
    return {"binary_parse": "( " + " ".join(tokens) + " )", "parse": "(ROOT (S " + " ".join(tokens) + "))"}


# ---------------------------------------------------------------------------------------------- SNLI-VE


def write_snli_ve(writer: Any, rng: np.random.Generator) -> None:
    ids = _distinct(rng, 1_000_000_000, 48)
    _snli_ve_split(writer, rng, "train", ids[:36], full=True)
    _snli_ve_split(writer, rng, "dev", ids[36:], full=True)


def _snli_ve_split(writer: Any, rng: np.random.Generator, split: str, image_ids: list[int], full: bool) -> None:
    lines = []
    for image_id in image_ids:
        colours = [str(c) for c in rng.choice(COLOURS, size=2, replace=False)]
        scene = _two_shapes(rng, colours)
        image = f"{image_id}.jpg"
        writer.write_image(f"snli_ve/flickr30k-images/{image}", scene)
        statements = [(f"There is a {c} shape.", "entailment" if c in colours else "contradiction") for c in COLOURS]
        order = [statements[int(i)] for i in rng.permutation(len(statements))]
        if not full:
            order = [next(s for s in order if s[1] == label) for label in ("entailment", "contradiction")]
        picks = rng.choice(len(NEUTRAL_STATEMENTS), size=len(order) // 2, replace=False)
        kind = scene.shapes[int(rng.integers(0, 2))].kind
        neutral = [(NEUTRAL_STATEMENTS[int(i)].format(kind=kind), "neutral") for i in picks]
        premises = scenes.describe_scene(scene, rng, len(neutral))
        # SNLI pairs each premise caption with one hypothesis per label: caption j gets entailment j, contradiction j
        # and neutral j; pairID = captionID + "r1" + the label's initial, as SNLI's own ids are built.
        by_label = {label: [h for h, lab in order + neutral if lab == label] for label in ("entailment", "neutral",
                                                                                          "contradiction")}  # fmt: skip
        for j, premise in enumerate(premises):
            caption_id = f"{image}#{j}"
            for label in ("entailment", "neutral", "contradiction"):
                hypothesis = by_label[label][j]
                lines.append(
                    {
                        "Flikr30kID": image,
                        "annotator_labels": [label] * 5,
                        "captionID": caption_id,
                        "gold_label": label,
                        "pairID": f"{caption_id}r1{label[0]}",
                        "sentence1": premise,
                        **{f"sentence1_{k}": v for k, v in _parses(premise).items()},
                        "sentence2": hypothesis,
                        **{f"sentence2_{k}": v for k, v in _parses(hypothesis).items()},
                    }
                )
    writer.write_text(f"snli_ve/snli_ve_{split}.jsonl", "".join(json.dumps(line) + "\n" for line in lines))


# ---------------------------------------------------------------------------------------------- NLVR2


def write_nlvr2(writer: Any, rng: np.random.Generator) -> None:
    _nlvr2_split(writer, rng, "train", num_sets=12, first_set=0)  # 48 pairs
    _nlvr2_split(writer, rng, "dev", num_sets=3, first_set=100)  # 12 pairs, image sets apart from train's


def _nlvr2_split(writer: Any, rng: np.random.Generator, split: str, num_sets: int, first_set: int) -> None:
    lines = []
    for set_id in range(first_set, first_set + num_sets):
        both, either = (str(c) for c in rng.choice(COLOURS, size=2, replace=False))
        both_true = rng.permutation([True, True, False, False])
        either_true = rng.permutation([True, True, False, False])
        for pair_id in range(4):
            has_both = [(True, True), (True, False), (False, True), (False, False)][
                0 if both_true[pair_id] else int(rng.integers(1, 4))
            ]
            has_either = [(False, False), (True, True), (True, False), (False, True)][
                int(rng.integers(1, 4)) if either_true[pair_id] else 0
            ]
            prefix = f"{split}-{set_id}-{pair_id}"
            contents = []
            for side in range(2):
                required = [c for c, has in ((both, has_both[side]), (either, has_either[side])) if has]
                spare = [c for c in COLOURS if c not in (both, either)]
                colours = required + [str(c) for c in rng.choice(spare, size=2 - len(required), replace=False)]
                colours = [colours[int(i)] for i in rng.permutation(2)]
                folder = f"nlvr2/images/train/{set_id % 5}" if split == "train" else f"nlvr2/{split}"
                _write_png_named(writer, f"{folder}/{prefix}-img{side}.png", _two_shapes(rng, colours), png=side == 0)
                contents.append(set(colours))
            for sentence_id, (form, colour) in enumerate((("both", both), ("either", either))):
                holds = [colour in c for c in contents]
                label = all(holds) if form == "both" else any(holds)
                lines.append(
                    {
                        "validation": {"worker": "W0", "judgment": str(label).lower()},
                        "sentence": NLVR2_FORMS[form].format(colour=colour),
                        "left_url": f"https://example.org/nlvr2/{prefix}-img0.png",
                        "writer": "W0",
                        "label": "True" if label else "False",
                        "right_url": f"https://example.org/nlvr2/{prefix}-img1.png",
                        "synset": "n00000000",
                        "query": f"shapes{set_id}",
                        "identifier": f"{prefix}-{sentence_id}",
                        **({"extra_validations": {}} if split != "train" else {}),
                    }
                )
    writer.write_text(f"nlvr2/data/{split}.json", "".join(json.dumps(line) + "\n" for line in lines))


def _write_png_named(writer: Any, relative: str, scene: Scene, png: bool) -> None:
    """A ``.png`` file holding PNG bytes, or JPEG bytes (``png=False``) as some NLVR2 images do."""
    writer.write_image(relative, scene)  # JPEG bytes, whatever the suffix; records the scene
    if png:
        scenes.render_scene(scene, IMAGE_SIZE).save(writer.root / relative, format="PNG")


def _distinct(rng: np.random.Generator, high: int, count: int) -> list[int]:
    chosen: dict[int, None] = {}
    while len(chosen) < count:
        chosen.setdefault(int(rng.integers(100_000_000, high)), None)
    return list(chosen)


WRITERS: dict[str, Callable[[Any, np.random.Generator], None]] = {"snli_ve": write_snli_ve, "nlvr2": write_nlvr2}

__all__ = ["NEUTRAL_STATEMENTS", "NLVR2_FORMS", "README_ROWS", "WRITERS"]
