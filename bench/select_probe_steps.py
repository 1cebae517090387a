"""Choose the Kinetics attentive probe's ``min_steps`` default on held-out TRAINING clips, never on the evaluated split.

    python bench/select_probe_steps.py [--checkpoint demo] [--candidates 0 50 100 200 400] [--folds 3] [--seeds 3]

The bundled mini Kinetics train split (6 classes x 6 clips) is cut into ``--folds`` seeded, stratified folds; for each
fold the probe is trained on the other folds and scores the held-out one, so every training clip is held out exactly
once (per probe seed). Everything else is the task's own default (frames, token storage, every other probe setting,
read from the registered ``kinetics_attentive_probe``); the tokens come from the shipped ``demo`` checkpoint. The val
split is never read. The fit part (24 clips) is, like the full train split (36), smaller than one batch, so one epoch
is one optimizer step in both and a ``min_steps`` chosen here means the same number of steps in the task; candidates
that give the same number of steps (0 and 50 with the default 50 epochs) are trained once.

Prints each candidate's held-out accuracy (folds and seeds pooled) and its difference to the best candidate with the
standard error of that difference over the held-out clips (seeds averaged per clip): every candidate is scored on the
same clips, so the paired difference is the measure of noise. The chosen default is the smallest candidate whose
accuracy is within one such standard error of the best (the one-standard-error rule): more steps only where they
measurably help. Three probe seeds, because with one the comparison of 50 and 100 steps sat exactly on that
threshold (a difference of 2 of 36 clips). Writes every clip's result to ``bench/out/select_probe_steps.json``.
About 6,750 optimizer steps with the defaults: 17 minutes on 2 shared cores (each step trains on 24 clips x 1,040
tokens); ``--seeds 1`` takes a third of that.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold index per sample: each class's samples shuffled (seeded) and dealt round-robin over the folds."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold_of[members] = np.arange(len(members)) % folds
    return fold_of


def one_standard_error_choice(hits: dict[int, np.ndarray]) -> tuple[int, int, dict[int, tuple[float, float]]]:
    """(best, chosen, {candidate: (accuracy - best's, paired standard error)}) from ``[seeds, clips]`` hit arrays.

    The chosen candidate is the smallest whose accuracy is at most one paired standard error below the best's.
    """
    accuracy = {k: float(v.mean()) for k, v in hits.items()}
    best = max(sorted(hits), key=lambda k: accuracy[k])  # ties: the smallest
    per_clip = {k: v.mean(axis=0) for k, v in hits.items()}  # seeds averaged: one value per held-out clip
    delta = {}
    for k in hits:
        d = per_clip[k] - per_clip[best]
        delta[k] = (float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0)
    chosen = min(k for k in hits if delta[k][0] >= -delta[k][1])
    return best, chosen, delta


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="demo")
    parser.add_argument("--candidates", type=int, nargs="+", default=[0, 50, 100, 200, 400])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3, help="probe initialisation seeds per fold (0, 1, ...)")
    parser.add_argument("--split-seed", type=int, default=0)
    args = parser.parse_args()

    from timing import print_cpu_line  # the bench folder is not a package

    from coca_bench.data import default_data_root, read_kinetics
    from coca_bench.features import FeatureExtractor
    from coca_bench.model import load_model
    from coca_bench.probes.attentive import train_attentive_probe
    from coca_bench.registry import get_task
    from coca_bench.runner import load_task_registry
    from coca_bench.settings import RunSettings
    from coca_bench.tasklib import frame_sampling, probe_config

    print_cpu_line()
    load_task_registry()
    params = get_task("kinetics_attentive_probe").params
    defaults = probe_config(params, seed=0)  # exactly what the task trains with, but for min_steps and the seed

    start = time.perf_counter()
    train = read_kinetics(default_data_root() / "kinetics", params["train_split"])  # the train split only
    settings = RunSettings(device="cpu", num_workers=0, progress=False)
    extractor = FeatureExtractor(load_model(args.checkpoint), cache_dir=None, settings=settings)
    sampling = frame_sampling(params)
    tokens = extractor.video_tokens(train.items, sampling, params["token_storage"])
    label_of = {clip.id: clip.label for clip in train.items}
    x = np.asarray(tokens.vectors, dtype=np.float32)  # converted once rather than at every step
    y = np.array([label_of[i] for i in tokens.ids])
    fold_of = stratified_folds(y, args.folds, args.split_seed)
    print(f"{args.checkpoint}: {len(y)} training clips, {len(train.class_ids)} classes, {args.folds} stratified folds "
          f"(split seed {args.split_seed}), probe seeds 0..{args.seeds - 1}; tokens {tuple(x.shape)} "
          f"in {time.perf_counter() - start:.0f}s")  # fmt: skip

    hits: dict[int, np.ndarray] = {}
    steps: dict[int, int] = {}
    trained: dict[tuple[int, int, int], np.ndarray] = {}  # (fold, seed, epochs): candidates that train alike share
    for min_steps in args.candidates:
        row = np.zeros((args.seeds, len(y)))
        for fold in range(args.folds):
            fit, held = fold_of != fold, fold_of == fold
            per_epoch = math.ceil(int(fit.sum()) / defaults.batch_size)
            epochs = max(defaults.epochs, math.ceil(min_steps / per_epoch))  # as train_attentive_probe counts
            steps[min_steps] = epochs * per_epoch
            for seed in range(args.seeds):
                if (fold, seed, epochs) not in trained:
                    config = dataclasses.replace(defaults, min_steps=min_steps, seed=seed)
                    probe = train_attentive_probe(x[fit], y[fit], len(train.class_ids), config)
                    trained[fold, seed, epochs] = probe.logits(x[held]).argmax(axis=1) == y[held]
                row[seed, held] = trained[fold, seed, epochs]
        hits[min_steps] = row
        print(f"  min_steps={min_steps}: held-out accuracy {row.mean():.3f} ({time.perf_counter() - start:.0f}s)")

    best, chosen, delta = one_standard_error_choice(hits)
    print(f"{'min_steps':>9}  {'steps':>5}  {'held-out acc':>12}  {'vs best':>8}  {'paired s.e.':>11}")
    for k in args.candidates:
        print(f"{k:>9}  {steps[k]:>5}  {hits[k].mean():>12.3f}  {delta[k][0]:>+8.3f}  {delta[k][1]:>11.3f}")
    print(f"best: min_steps={best}; the smallest within one paired standard error of it: min_steps={chosen} "
          f"({len(y)} held-out training clips; {time.perf_counter() - start:.0f}s)")  # fmt: skip

    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    report = {
        "checkpoint": args.checkpoint, "folds": args.folds, "seeds": args.seeds, "split_seed": args.split_seed,
        "probe_defaults": dataclasses.asdict(defaults), "clip_ids": list(tokens.ids), "fold_of": fold_of.tolist(),
        "candidates": {str(k): {"steps": steps[k], "accuracy": float(hits[k].mean()), "delta_vs_best": delta[k][0],
                                "paired_standard_error": delta[k][1], "hits": hits[k].tolist()} for k in args.candidates},
        "best": best, "chosen": chosen, "wall_s": time.perf_counter() - start,
    }  # fmt: skip
    (out / "select_probe_steps.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
