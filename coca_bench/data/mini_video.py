"""Mini stand-ins for the paper's other video classification sets (CoCa Table 2), each in a layout real copies use:

- Kinetics-600: the csvs beside the split folders (``val.csv`` next to ``val/``, as the CVDF k400 downloader and many
  copies keep them) and the clips flat in ``<split>/``.
- Kinetics-700: inside the folder the CVDF downloader creates (``k700-2020/``), ``annotations/<split>.csv`` and the
  clips in ``<split>/<label>/``.
- Moments in Time: inside the folder the official zip unpacks to (``Moments_in_Time_Raw/``): header-less
  ``trainingSet.csv`` / ``validationSet.csv`` rows ``class/video.mp4,label,positive,negative``,
  ``moments_categories.txt`` (``name,index``), clips in ``training/<class>/`` and ``validation/<class>/``; class
  names write spaces as ``+``.

Each class pairs a shape with a motion, and no class is another's reverse motion (see ``minidata.KINETICS_CLASSES``):
the paper's frame-wise video encoder, blind to temporal order, can tell every class apart. Classes share motions, so
the shape matters too: an encoder that sees only where things are (demo-early) cannot get far by the motion alone.
Every label is true of its clip (``ground_truth.json`` records each clip's shape and motion).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence

import numpy as np

from coca_bench.data import scenes
from coca_bench.data.minidata import COMMON_COLOURS, _MiniDataWriter, _youtube_id
from coca_bench.data.moments import CATEGORIES_FILE, MOMENTS_SPLIT_FILES

# Clips per class in the evaluated and the training split. The probe trains at least 100 steps on batches of the whole
# training split (tasklib.video.VIDEO_PROBE_DEFAULTS), so its cost grows with that split: 15 clips take about half the
# CPU time of the mini Kinetics-400's 36. Four evaluated clips per class keep demo's lead over demo-early significant.
EVAL_PER_CLASS, TRAIN_PER_CLASS = 4, 3
KINETICS_COLUMNS = ["label", "youtube_id", "time_start", "time_end", "split"]
# (shape, motion)
KINETICS600_CLASSES: tuple[tuple[str, str], ...] = (
    ("triangle", "moving right"),
    ("star", "moving right"),
    ("triangle", "shrinking"),
    ("star", "shrinking"),
    ("circle", "moving up"),
)
KINETICS700_CLASSES: tuple[tuple[str, str], ...] = (
    ("circle", "moving down"),
    ("square", "moving down"),
    ("triangle", "growing"),
    ("star", "growing"),
    ("square", "moving left"),
)
MOMENTS_CLASSES: tuple[tuple[str, str], ...] = (
    ("circle", "moving up"),
    ("star", "moving up"),
    ("square", "moving up"),
    ("circle", "shrinking"),
    ("star", "shrinking"),
)
K700_FOLDER = "kinetics700/k700-2020"
MOMENTS_FOLDER = "moments/Moments_in_Time_Raw"


def _clip(writer: _MiniDataWriter, rng: np.random.Generator, relative: str, kind: str, motion: str) -> None:
    """A clip of 16 to 24 frames (2 to 3 seconds at 8 fps) of a ``kind`` of random colour doing ``motion``."""
    clip = scenes.moving_shape(rng, kind, str(rng.choice(COMMON_COLOURS)), motion)
    writer.write_clip(relative, clip, int(rng.integers(16, 25)))


def _kinetics(
    writer: _MiniDataWriter,
    rng: np.random.Generator,
    classes: Sequence[tuple[str, str]],
    csv_path: Callable[[str], str],
    clip_path: Callable[[str, str, str], str],
) -> None:
    """Both splits of a Kinetics-style set: ``csv_path(split)`` and ``clip_path(split, label, file name)`` say where."""
    for split, per_class in (("train", TRAIN_PER_CLASS), ("val", EVAL_PER_CLASS)):
        rows = []
        for kind, motion in classes:
            label = f"{kind} {motion}"
            for _ in range(per_class):
                youtube_id, start = _youtube_id(rng), int(rng.integers(0, 300))
                name = f"{youtube_id}_{start:06d}_{start + 10:06d}.mp4"
                _clip(writer, rng, clip_path(split, label, name), kind, motion)
                rows.append([label, youtube_id, start, start + 10, split])
        order = rng.permutation(len(rows))
        writer.write_csv(csv_path(split), KINETICS_COLUMNS, [rows[int(i)] for i in order])


def write_kinetics600(writer: _MiniDataWriter, rng: np.random.Generator) -> None:
    _kinetics(writer, rng, KINETICS600_CLASSES, lambda split: f"kinetics600/{split}.csv",
              lambda split, label, name: f"kinetics600/{split}/{name}")  # fmt: skip


def write_kinetics700(writer: _MiniDataWriter, rng: np.random.Generator) -> None:
    _kinetics(writer, rng, KINETICS700_CLASSES, lambda split: f"{K700_FOLDER}/annotations/{split}.csv",
              lambda split, label, name: f"{K700_FOLDER}/{split}/{label}/{name}")  # fmt: skip


def moments_class_name(kind: str, motion: str) -> str:
    """The Moments-style name: words joined by ``+`` (``circle+moving+up``)."""
    return "+".join([kind, *motion.split()])


def write_moments(writer: _MiniDataWriter, rng: np.random.Generator) -> None:
    names = [moments_class_name(kind, motion) for kind, motion in MOMENTS_CLASSES]
    writer.write_text(f"{MOMENTS_FOLDER}/{CATEGORIES_FILE}",
                      "".join(f"{name},{index}\n" for index, name in enumerate(sorted(names))))  # fmt: skip
    for split, csv_name in MOMENTS_SPLIT_FILES.items():
        per_class = TRAIN_PER_CLASS if split == "training" else EVAL_PER_CLASS
        rows = []
        for (kind, motion), name in zip(MOMENTS_CLASSES, names):
            for _ in range(per_class):
                filename = f"{name}/yt-{_youtube_id(rng)}_{int(rng.integers(0, 300))}.mp4"
                _clip(writer, rng, f"{MOMENTS_FOLDER}/{split}/{filename}", kind, motion)
                positive = int(rng.integers(1, 4))
                rows.append([filename, name, positive, 3 - positive])
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows[int(i)] for i in rng.permutation(len(rows)))
        writer.write_text(f"{MOMENTS_FOLDER}/{csv_name}", text.getvalue())  # no header, as the official files


WRITERS: dict[str, Callable[[_MiniDataWriter, np.random.Generator], None]] = {
    "kinetics600": write_kinetics600,
    "kinetics700": write_kinetics700,
    "moments": write_moments,
}
README_ROWS: list[str] = [
    "| `kinetics600/` | `{train,val}.csv` beside `{train,val}/`, clips flat in the split folder (5 classes) |",
    "| `kinetics700/` | `k700-2020/annotations/{train,val}.csv`, `k700-2020/{train,val}/<label>/*.mp4` (5 classes) |",
    "| `moments/` | `Moments_in_Time_Raw/`: header-less `{training,validation}Set.csv`, `moments_categories.txt`,"
    " `{training,validation}/<class+name>/*.mp4` (5 classes) |",
]
