"""Choose an attentive probe's ``min_steps`` default on held-out TRAINING examples, never on the evaluated split.

    python bench/select_probe_steps.py [--task kinetics_attentive_probe] [--checkpoint demo]
                                       [--candidates 0 50 100 200 400] [--folds 3] [--seeds 3]

Works for any registered task that trains the attentive probe (``kinetics_attentive_probe``, ``moments_attentive_probe``,
``imagenet_attentive_probe``, ``snli_ve``, ``nlvr2``, ``vqav2`` with ``mode=probe``): the task runs as usual on the
bundled mini data up to the probe's training call, where this script takes the training tokens, labels and every other
probe setting (the task's own defaults) and stops. The evaluated split is loaded under ``--limit 1`` and nothing is
ever predicted on it. The training examples are cut into ``--folds`` seeded folds; for each fold the probe is trained
on the other folds and scores the held-out one, so every training example is held out exactly once (per probe seed).
Folds are stratified by label when every example has media of its own (Kinetics clips, ImageNet images); when examples
share media (SNLI-VE's three hypotheses per image), whole images go to one fold, so that no held-out example's image
was seen in training. On the mini splits, smaller than one batch, one epoch is one optimizer step, so a ``min_steps``
chosen here means the same number of steps in the task; candidates that give the same number of steps (0 and 50 with
the default 50 epochs) are trained once.

Prints each candidate's held-out accuracy (folds and seeds pooled) and its difference to the best candidate with the
standard error of that difference over the held-out examples (seeds averaged per example): every candidate is scored
on the same examples, so the paired difference is the measure of noise. The chosen default is the smallest candidate
whose accuracy is within one such standard error of the best (the one-standard-error rule): more steps only where
they measurably help. Three probe seeds, because with one the comparison of Kinetics' 50 and 100 steps sat exactly on
that threshold (a difference of 2 of 36 clips). Writes every example's result to ``bench/out/select_probe_steps-TASK.json``.
Kinetics with the defaults trains about 6,750 optimizer steps (each on 24 clips x 1,040 tokens): 52 s on 2 quiet
cores of an AMD EPYC, reproducing the committed selection exactly; the multimodal tasks take a minute or less.
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


class _Captured(Exception):
    """Raised at the probe's training call: everything this script needs has been seen."""


def training_tokens(
    task_name: str, checkpoint: str, overrides: dict, data_root: Path | None = None
) -> tuple[dict, object, np.ndarray, int, dict]:
    """(the task's params, the training tokens, their labels, the class count, media groups) as the task trains.

    The task runs in-process on the bundled mini data with the evaluated split limited to one example; the probe's
    training function is replaced by one that records its inputs and stops the task.
    """
    from coca_bench import tasklib
    from coca_bench.data import default_data_root
    from coca_bench.features import FeatureExtractor
    from coca_bench.model import load_model
    from coca_bench.registry import TaskContext, get_task
    from coca_bench.runner import load_task_registry
    from coca_bench.settings import RunSettings
    from coca_bench.tasklib import probes

    load_task_registry()
    task = get_task(task_name)
    params = task.resolve_params(overrides)
    settings = RunSettings(device="cpu", num_workers=0, progress=False, limit=1)
    model = load_model(checkpoint)
    root = Path(data_root) if data_root is not None else default_data_root()
    seen: dict = {}

    def capture(ctx, params, train, train_labels, evaluation, num_classes):  # noqa: ANN001
        seen.update(params=params, tokens=train, labels=np.asarray(train_labels), num_classes=num_classes)
        raise _Captured

    originals = (probes.train_and_score_attentive_probe, tasklib.train_and_score_attentive_probe)
    probes.train_and_score_attentive_probe = tasklib.train_and_score_attentive_probe = capture
    ctx = TaskContext(task, root / task.dataset_folder(params), root, settings, model,
                      FeatureExtractor(model, cache_dir=None, settings=settings))  # fmt: skip
    try:
        task.run(ctx, dict(params))
    except _Captured:
        pass
    finally:
        probes.train_and_score_attentive_probe, tasklib.train_and_score_attentive_probe = originals
    if not seen:
        raise SystemExit(f"{task_name} never trained an attentive probe; pass a task that does.")
    training = [r for r in ctx.inputs.record_sets if all(r is not e for e in ctx.inputs.evaluated_sets)]
    return seen["params"], seen["tokens"], seen["labels"], seen["num_classes"], media_groups(training)


ID_FIELDS = ("id", "identifier", "question_id")  # a record's id, as the task names its tokens (str() of it)


def media_groups(record_sets) -> dict[str, tuple[str, ...]]:  # noqa: ANN001
    """Each training example's id -> the media files it names: examples that share one are folded together."""
    import dataclasses as dc

    groups: dict[str, tuple[str, ...]] = {}
    for records in record_sets:
        for item in records.items:
            fields = dc.asdict(item) if dc.is_dataclass(item) else dict(item)
            key = next((fields[name] for name in ID_FIELDS if name in fields), None)
            if key is not None:
                groups[str(key)] = tuple(sorted(str(v) for v in fields.values() if isinstance(v, Path)))
    return groups


def folds_for(
    ids: list[str], labels: np.ndarray, groups: dict[str, tuple[str, ...]], folds: int, seed: int
) -> np.ndarray:
    """Stratified folds when no two examples share media, else whole media groups dealt round-robin (seeded)."""
    media = [groups.get(i, (i,)) for i in ids]
    owners: dict[str, set[int]] = {}
    for index, paths in enumerate(media):
        for path in paths:
            owners.setdefault(path, set()).add(index)
    if all(len(members) == 1 for members in owners.values()):
        return stratified_folds(labels, folds, seed)
    component = list(range(len(ids)))  # union-find: examples linked through any shared file

    def find(i: int) -> int:
        while component[i] != i:
            component[i] = component[component[i]]
            i = component[i]
        return i

    for members in owners.values():
        first, *rest = sorted(members)
        for other in rest:
            component[find(other)] = find(first)
    roots = sorted({find(i) for i in range(len(ids))})
    order = np.random.default_rng(seed).permutation(len(roots))
    fold_of_root = {roots[r]: position % folds for position, r in enumerate(order)}
    return np.array([fold_of_root[find(i)] for i in range(len(ids))], dtype=np.int64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="kinetics_attentive_probe")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a task parameter, as run_suite.py's --param (e.g. mode=probe for vqav2)")  # fmt: skip
    parser.add_argument("--checkpoint", default="demo")
    parser.add_argument("--candidates", type=int, nargs="+", default=[0, 50, 100, 200, 400])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3, help="probe initialisation seeds per fold (0, 1, ...)")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None, help="default: the bundled mini datasets")
    args = parser.parse_args()

    from timing import print_cpu_line  # the bench folder is not a package

    from coca_bench.probes.attentive import train_attentive_probe
    from coca_bench.runner import parse_param_value
    from coca_bench.tasklib import probe_config

    print_cpu_line()
    start = time.perf_counter()
    overrides = {k: parse_param_value(v) for k, _, v in (p.partition("=") for p in args.param)}
    params, tokens, y, num_classes, groups = training_tokens(args.task, args.checkpoint, overrides, args.data_root)
    defaults = probe_config(params, seed=0)  # exactly what the task trains with, but for min_steps and the seed
    x = np.asarray(tokens.vectors, dtype=np.float32)  # converted once rather than at every step
    ids = list(tokens.ids)
    fold_of = folds_for(ids, y, groups, args.folds, args.split_seed)
    how = "stratified" if len(set(map(tuple, (groups.get(i, (i,)) for i in ids)))) == len(ids) else "media-grouped"
    print(f"{args.task} ({args.checkpoint}): {len(y)} training examples, {num_classes} classes, {args.folds} {how} folds "
          f"(split seed {args.split_seed}), probe seeds 0..{args.seeds - 1}; tokens {tuple(x.shape)} "
          f"in {time.perf_counter() - start:.0f}s; the task's default min_steps is {params['min_steps']}")  # fmt: skip

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
                    probe = train_attentive_probe(x[fit], y[fit], num_classes, config)
                    trained[fold, seed, epochs] = probe.logits(x[held]).argmax(axis=1) == y[held]
                row[seed, held] = trained[fold, seed, epochs]
        hits[min_steps] = row
        print(f"  min_steps={min_steps}: held-out accuracy {row.mean():.3f} ({time.perf_counter() - start:.0f}s)")

    best, chosen, delta = one_standard_error_choice(hits)
    print(f"{'min_steps':>9}  {'steps':>5}  {'held-out acc':>12}  {'vs best':>8}  {'paired s.e.':>11}")
    for k in args.candidates:
        print(f"{k:>9}  {steps[k]:>5}  {hits[k].mean():>12.3f}  {delta[k][0]:>+8.3f}  {delta[k][1]:>11.3f}")
    print(f"best: min_steps={best}; the smallest within one paired standard error of it: min_steps={chosen} "
          f"({len(y)} held-out training examples; {time.perf_counter() - start:.0f}s)")  # fmt: skip

    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    report = {
        "task": args.task, "params": overrides, "checkpoint": args.checkpoint, "folds": args.folds,
        "seeds": args.seeds, "split_seed": args.split_seed, "probe_defaults": dataclasses.asdict(defaults),
        "example_ids": ids, "fold_of": fold_of.tolist(),
        "candidates": {str(k): {"steps": steps[k], "accuracy": float(hits[k].mean()), "delta_vs_best": delta[k][0],
                                "paired_standard_error": delta[k][1], "hits": hits[k].tolist()} for k in args.candidates},
        "best": best, "chosen": chosen, "wall_s": time.perf_counter() - start,
    }  # fmt: skip
    (out / f"select_probe_steps-{args.task}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
