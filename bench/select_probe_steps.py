"""Choose the Kinetics attentive probe's ``min_steps`` default on held-out TRAINING clips, never on the evaluated split.

    python bench/select_probe_steps.py [--checkpoint demo] [--candidates 0 50 100 200 400] [--folds 3] [--seeds 1]

The bundled mini Kinetics train split (6 classes x 6 clips) is cut into ``--folds`` seeded, stratified folds; for each
fold the probe is trained on the other folds and scores the held-out one, so every training clip is held out exactly
once per probe seed. Everything else is the task's own default (frames, token storage, every other probe setting,
read from the registered ``kinetics_attentive_probe``); the tokens come from the shipped ``demo`` checkpoint. The fit
part (24 clips) is, like the full train split (36), smaller than one batch, so one epoch is one optimizer step in both
and a ``min_steps`` chosen here means the same number of steps in the task.

Prints the held-out accuracy of each candidate (all folds and probe seeds pooled) with its binomial standard error
over the distinct held-out clips (the seeds average out initialisation noise, not sampling noise), and picks the smallest candidate within one standard error of the best (the one-standard-error rule): more steps
only where they measurably help. The val split is never read. Runs in about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import numpy as np


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold index per sample: each class's samples shuffled (seeded) and dealt round-robin over the folds."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold_of[members] = np.arange(len(members)) % folds
    return fold_of


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="demo")
    parser.add_argument("--candidates", type=int, nargs="+", default=[0, 50, 100, 200, 400])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1, help="probe initialisation seeds per fold (0, 1, ...)")
    parser.add_argument("--split-seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from coca_bench.data import default_data_root, read_kinetics
    from coca_bench.features import FeatureExtractor, FrameSampling
    from coca_bench.model import load_model
    from coca_bench.probes.attentive import train_attentive_probe
    from coca_bench.probes.config import AttentiveProbeConfig
    from coca_bench.registry import get_task
    from coca_bench.runner import load_task_registry
    from coca_bench.settings import RunSettings

    torch.set_num_threads(min(2, torch.get_num_threads()))
    load_task_registry()
    params = get_task("kinetics_attentive_probe").params
    config_fields = {f.name for f in dataclasses.fields(AttentiveProbeConfig)}
    defaults = AttentiveProbeConfig(**{k: v for k, v in params.items() if k in config_fields})

    start = time.perf_counter()
    train = read_kinetics(default_data_root() / "kinetics", params["train_split"])  # the train split only
    settings = RunSettings(device="cpu", num_workers=0, progress=False)
    extractor = FeatureExtractor(load_model(args.checkpoint), cache_dir=None, settings=settings)
    sampling = FrameSampling(params["num_frames"], params["sampling"], params["backend"])
    tokens = extractor.video_tokens(train.items, sampling, params["token_storage"])
    label_of = {clip.id: clip.label for clip in train.items}
    x, y = tokens.vectors, np.array([label_of[i] for i in tokens.ids])
    fold_of = stratified_folds(y, args.folds, args.split_seed)
    print(f"{args.checkpoint}: {len(y)} training clips, {len(train.class_ids)} classes, {args.folds} stratified folds "
          f"(split seed {args.split_seed}), probe seeds 0..{args.seeds - 1}; tokens {tuple(x.shape)} "
          f"in {time.perf_counter() - start:.0f}s")  # fmt: skip

    x = np.asarray(x, dtype=np.float32)  # converted once rather than at every step
    results: dict[int, tuple[float, float, int]] = {}
    trained: dict[tuple[int, int, int], np.ndarray] = {}  # (fold, seed, epochs): candidates that train alike share
    print(f"{'min_steps':>9}  {'steps':>5}  {'held-out acc':>12}  {'s.e.':>5}")
    for min_steps in args.candidates:
        hits, steps = [], 0
        for fold in range(args.folds):
            fit, held = fold_of != fold, fold_of == fold
            per_epoch = math.ceil(int(fit.sum()) / defaults.batch_size)
            epochs = max(defaults.epochs, math.ceil(min_steps / per_epoch))  # as train_attentive_probe counts
            steps = epochs * per_epoch
            for seed in range(args.seeds):
                if (fold, seed, epochs) not in trained:
                    config = dataclasses.replace(defaults, min_steps=min_steps, seed=seed)
                    probe = train_attentive_probe(x[fit], y[fit], len(train.class_ids), config)
                    trained[fold, seed, epochs] = probe.logits(x[held]).argmax(axis=1) == y[held]
                hits.extend(trained[fold, seed, epochs])
        accuracy = float(np.mean(hits))
        error = math.sqrt(accuracy * (1 - accuracy) / len(y))  # over the distinct clips: seeds share their sample
        results[min_steps] = (accuracy, error, steps)
        print(f"{min_steps:>9}  {steps:>5}  {accuracy:>12.3f}  {error:>5.3f}")

    best = max(results, key=lambda k: results[k][0])
    threshold = results[best][0] - results[best][1]
    chosen = min(k for k in results if results[k][0] >= threshold)
    print(f"best: min_steps={best} ({results[best][0]:.3f}); smallest within one standard error "
          f"(>= {threshold:.3f}): min_steps={chosen}; total {time.perf_counter() - start:.0f}s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
