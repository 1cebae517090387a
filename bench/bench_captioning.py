"""Captioning benchmark: our ``coco_captioning`` path against CLIP_benchmark's ``--task captioning`` path.

    python bench/bench_captioning.py [--images 16] [--rounds 1] [--threads 2]

Both sides caption the same directory of images (the bundled mini COCO and NoCaps images) with the same seeded
random-weight ``coca_ViT-B-32`` (``coca_bench.model.parity``), fp32, and must produce identical captions:

- CLIP_benchmark: a DataLoader of open_clip-preprocessed images at its default ``--batch_size 64``, then open_clip's
  ``model.generate(images)`` with its defaults (beam search, 6 beams in 3 groups, seq_len 30), decoded as
  ``clip_benchmark/metrics/captioning.py`` does;
- ours: ``FeatureExtractor.captions`` (the task's cached path, cache disabled so every caption is computed) with the
  task's default generation (the same beam settings) and decoding batch 16.

Rounds alternate the order; the speed-up is the median of per-round ratios of images per second. Writes
``bench/out/bench_captioning.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

ARCH = "coca_ViT-B-32"


def image_paths(count: int) -> list[Path]:
    from coca_bench.data import default_data_root

    root = default_data_root()
    paths = sorted((root / "coco" / "val2014").glob("*.jpg")) + sorted((root / "nocaps" / "validation").glob("*"))
    if len(paths) < count:
        raise SystemExit(f"only {len(paths)} bundled images; ask for --images {len(paths)} or fewer")
    return paths[:count]


def clip_benchmark_side(model, paths: list[Path]) -> tuple[float, list[str]]:
    import open_clip
    from open_clip.tokenizer import _tokenizer
    from PIL import Image

    transform = open_clip.image_transform(model.visual.image_size, is_train=False)
    dataset = [transform(Image.open(p).convert("RGB")) for p in paths]
    loader = torch.utils.data.DataLoader(dataset, batch_size=64)
    start = time.perf_counter()
    captions = []
    with torch.no_grad():
        for images in loader:
            out = model.generate(images)
            captions += [
                _tokenizer.decode(i).split("<end_of_text>")[0].replace("<start_of_text>", "").strip()
                for i in out.cpu().numpy()
            ]
    return time.perf_counter() - start, captions


def our_side(model, paths: list[Path]) -> tuple[float, list[str]]:
    from coca_bench.features import FeatureExtractor
    from coca_bench.settings import RunSettings

    extractor = FeatureExtractor(model, None, RunSettings(device="cpu", num_workers=0, progress=False))
    generation = {"strategy": "beam", "num_beams": 6, "num_beam_groups": 3, "beam_score": "logits",
                  "max_new_tokens": 29, "min_new_tokens": 4}  # fmt: skip
    samples = [{"id": str(i), "path": p} for i, p in enumerate(paths)]
    start = time.perf_counter()
    result = extractor.captions(samples, generation, batch_size=16)
    return time.perf_counter() - start, result.texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from timing import print_cpu_line  # the bench folder is not a package

    print_cpu_line()
    from coca_bench.model.parity import ours_from_open_clip, random_open_clip_coca

    reference = random_open_clip_coca(ARCH)
    ours = ours_from_open_clip(reference, ARCH)
    paths = image_paths(args.images)
    rows = []
    for round_index in range(args.rounds):
        sides = [("clip_benchmark", clip_benchmark_side, reference), ("ours", our_side, ours)]
        times, captions = {}, {}
        for name, run, model in sides if round_index % 2 == 0 else sides[::-1]:
            times[name], captions[name] = run(model, paths)
        identical = captions["ours"] == captions["clip_benchmark"]
        rows.append({"times_s": times, "identical": identical, "ratio": times["clip_benchmark"] / times["ours"]})
        print(f"round {round_index}: CLIP_benchmark {len(paths) / times['clip_benchmark']:.3f} images/s, ours "
              f"{len(paths) / times['ours']:.3f} images/s, ours / CLIP_benchmark {rows[-1]['ratio']:.1f}x, "
              f"identical captions: {identical}")  # fmt: skip
    report = {"arch": ARCH, "images": len(paths), "threads": args.threads, "rounds": rows,
              "median_ratio": statistics.median(r["ratio"] for r in rows)}  # fmt: skip
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_captioning.json").write_text(json.dumps(report, indent=2))
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
