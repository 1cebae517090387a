"""Shared feature cache benchmark: zero-shot, linear probe and retrieval over the same images encode each image once.

    python bench/bench_shared_cache.py [--rounds 2] [--arch coca_ViT-B-32]

Data: the bundled mini ImageNet (40 val + 32 train images), plus a COCO Karpathy test split made of the very same
val image files (captions "a photo of a <class>." and four variants), so the three tasks read the same bytes. Model:
a random-weight ``--arch`` native checkpoint (realistic encoder cost; the numbers of the tasks do not matter here).

Contenders, alternated round by round on the same machine:
- shared: one ``run_suite`` of the three tasks with one fresh feature cache (each image is encoded once);
- separate: three ``run_suite`` calls, one task each, each with its own fresh cache (the cache "off" between tasks).
The ratio separate / shared is taken per round, then the median. Both sides check that they produced identical
metrics. Writes ``bench/out/bench_shared_cache.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TASKS = ("imagenet_zeroshot", "imagenet_linear_probe", "coco_retrieval")
PARAMS = ["imagenet_zeroshot.templates=simple"]


def build_data(root: Path) -> None:
    from coca_bench.data import default_data_root, read_imagenet

    source = default_data_root()
    shutil.copytree(source / "imagenet", root / "imagenet")
    val = read_imagenet(root / "imagenet", "val")
    (root / "coco" / "val2014").mkdir(parents=True)
    images = []
    for index, item in enumerate(val.items):
        name = val.class_names[item.label]
        filename = f"COCO_val2014_{index:012d}.jpg"
        shutil.copy(item.path, root / "coco" / "val2014" / filename)  # the same bytes as the ImageNet val image
        captions = [f"a photo of a {name}.", f"a {name}.", f"an image of a {name}.", f"the {name}.", f"a small {name}."]
        images.append({"filepath": "val2014", "filename": filename, "cocoid": index, "split": "test",
                       "sentences": [{"raw": c} for c in captions]})  # fmt: skip
    (root / "coco" / "dataset_coco.json").write_text(json.dumps({"images": images}))


def build_model(folder: Path, arch: str) -> str:
    import torch

    from coca_bench.model import CoCa, get_preset, save_native

    torch.manual_seed(0)
    save_native(CoCa(get_preset(arch)), folder)
    return str(folder)


def run(tasks: tuple[str, ...], data: Path, model: str, work: Path) -> tuple[float, dict, int]:
    from coca_bench import registry
    from coca_bench.runner import RunConfig, run_suite
    from coca_bench.settings import RunSettings

    settings = RunSettings(device="cpu", num_workers=0, progress=False, cache_dir=work / "cache")
    config = RunConfig(tasks=",".join(tasks), checkpoints=[f"m={model}"], data_root=data, output=work / "out",
                       params=[p for p in PARAMS if p.split(".")[0] in tasks], settings=settings)  # fmt: skip
    registry._clear_for_tests()
    start = time.perf_counter()
    records = run_suite(config)
    elapsed = time.perf_counter() - start
    metrics = {r["task"]["name"]: r["metrics"] for r in records}
    encoded = sum(r["run"]["feature_cache"]["items_encoded"] for r in records)
    return elapsed, metrics, encoded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--arch", default="coca_ViT-B-32")
    args = parser.parse_args()
    from timing import print_cpu_line  # the bench folder is not a package

    print_cpu_line()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        build_data(tmp_path / "data")
        model = build_model(tmp_path / "model", args.arch)
        ratios, shared_times, separate_times = [], [], []
        for round_index in range(args.rounds):
            order = ("shared", "separate") if round_index % 2 == 0 else ("separate", "shared")
            times: dict[str, float] = {}
            for side in order:
                work = tmp_path / f"{side}{round_index}"
                if side == "shared":
                    times[side], shared_metrics, shared_encoded = run(TASKS, tmp_path / "data", model, work)
                else:
                    parts = [run((task,), tmp_path / "data", model, work / task) for task in TASKS]
                    times[side] = sum(p[0] for p in parts)
                    separate_metrics = {k: v for p in parts for k, v in p[1].items()}
                    separate_encoded = sum(p[2] for p in parts)
            if json.dumps(shared_metrics, sort_keys=True) != json.dumps(separate_metrics, sort_keys=True):
                print("error: shared and separate runs gave different metrics", file=sys.stderr)
                return 1
            ratios.append(times["separate"] / times["shared"])
            shared_times.append(times["shared"])
            separate_times.append(times["separate"])
    report = {
        "arch": args.arch, "tasks": TASKS, "rounds": args.rounds,
        "shared_s": shared_times, "separate_s": separate_times, "ratio_separate_over_shared": ratios,
        "median_ratio": statistics.median(ratios),
        "items_encoded": {"shared": shared_encoded, "separate": separate_encoded},
    }  # fmt: skip
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_shared_cache.json").write_text(json.dumps(report, indent=2))
    print(f"items encoded (images and texts): shared {shared_encoded}, separate {separate_encoded}")
    print(f"shared run: median {statistics.median(shared_times):.1f} s; separate runs: "
          f"median {statistics.median(separate_times):.1f} s; separate / shared: {report['median_ratio']:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
