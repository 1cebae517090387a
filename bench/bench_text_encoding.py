"""Text-encoding benchmark: ImageNet zero-shot prompts through open_clip's ``encode_text`` and ours, side by side.

    python bench/bench_text_encoding.py [--classes 6] [--rounds 3] [--batch-size 32] [--threads 2]

The prompts are CLIP's 80 ImageNet templates (``open_clip.zero_shot_metadata``) over a seeded sample of ``--classes``
ImageNet class names: a sample, so that a run takes about 2 minutes on 2 quiet cores (open_clip computes every prompt
over all 77 positions: about 3 s per 100 prompts there). The default sample's prompts average 9.6 real tokens (start
and end included), as do all 80,000 prompts of the 1,000 classes (at most 22).

Both models hold the same random-weight ``coca_ViT-B-32`` (``coca_bench.model.parity``), fp32. Contenders, timed in
interleaved rounds (``timing.interleaved``):

- ``open_clip``: ``model.encode_text`` over batches of ``--batch-size`` token rows in prompt order (class by class);
- ``ours, full length (before)``: our text tower without trimming, the computation ``encode_text`` did before;
- ``ours``: ``CocaModel.encode_text`` over the same batches: each is computed up to its longest prompt (plus the
  pad that the legacy [CLS] mask of open_clip's weights attends to);
- ``ours, embed_texts``: ``FeatureExtractor.embed_texts`` (cache disabled), what ``imagenet_zeroshot`` runs:
  tokenization included, batches sorted by length within each cache chunk.

Every contender's embeddings must be within 1e-5 of open_clip's (exit status 1 otherwise). Prints the CPU line
(``timing.print_cpu_line``) and ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` (not used here: everything is
fp32), and writes ``bench/out/bench_text_encoding.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_model import git_commit
from timing import QUIET_FOREIGN_CORES, foreign_load, interleaved, paired_ratio, print_cpu_line, quiet_round_count

ARCH = "coca_ViT-B-32"
SPEEDUP_TARGET = 4.0  # ours / open_clip prompts per second (issue 19)
TOLERANCE = 1e-5  # max |difference| of the normalised embeddings


def prompts(classes: int, seed: int) -> list[str]:
    """The 80 OpenAI templates over a seeded sample of ImageNet class names, class by class."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

    names = random.Random(seed).sample(list(IMAGENET_CLASSNAMES), classes)
    return [template(name) for name in names for template in OPENAI_IMAGENET_TEMPLATES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=6, help="ImageNet class names sampled (x 80 templates)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="as the runner's default --batch-size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import open_clip

    from coca_bench.features import FeatureExtractor
    from coca_bench.hardware import detect
    from coca_bench.model.parity import ours_from_open_clip, random_open_clip_coca
    from coca_bench.settings import RunSettings

    print_cpu_line()
    cpu = detect()
    print(f"torch.ops.mkldnn._is_mkldnn_bf16_supported(): {cpu.onednn_bf16} (not used: everything here is fp32); "
          f"torch {torch.__version__}, open_clip {open_clip.__version__}, {args.threads} threads")  # fmt: skip
    busy = foreign_load(2.0)
    if busy > QUIET_FOREIGN_CORES:
        print(f"warning: other processes keep {busy:.1f} cores busy; rounds wait for quiet and noisy ones are re-run")

    reference = random_open_clip_coca(ARCH)
    ours = ours_from_open_clip(reference, ARCH)
    texts = prompts(args.classes, args.seed)
    ids = ours.tokenizer(texts)
    if not torch.equal(ids, open_clip.get_tokenizer(ARCH)(texts)):
        raise SystemExit("our tokenizer differs from open_clip's")
    real = (ids != 0).sum(dim=1).float()
    batches = list(ids.split(args.batch_size))
    extractor = FeatureExtractor(
        ours, None, RunSettings(device="cpu", batch_size=args.batch_size, num_workers=0, progress=False)
    )

    def run_open_clip() -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([reference.encode_text(batch, normalize=True) for batch in batches])

    def run_ours_full_length() -> torch.Tensor:
        with torch.no_grad():  # what CoCa.encode_text computed before trimming: the same batches, all 77 positions
            return torch.cat([F.normalize(ours.network.text(batch)[0], dim=-1) for batch in batches])

    contenders = {
        "open_clip": run_open_clip,
        "ours, full length (before)": run_ours_full_length,
        "ours": lambda: torch.cat([ours.encode_text(batch) for batch in batches]),
        "ours, embed_texts": lambda: torch.from_numpy(extractor.embed_texts(texts)),
    }
    warmups = {  # one batch each: the same code paths, a fraction of the time
        "open_clip": lambda: reference.encode_text(batches[0]),
        "ours, full length (before)": lambda: ours.network.text(batches[0]),
        "ours": lambda: ours.encode_text(batches[0]),
        "ours, embed_texts": lambda: extractor.embed_texts(texts[: args.batch_size]),
    }
    print(f"{len(texts)} prompts ({args.classes} classes x 80 templates), {float(real.mean()):.1f} real tokens on "
          f"average of {ids.shape[1]} (+1 [CLS]), batches of {args.batch_size}, {args.rounds} rounds")  # fmt: skip
    start = time.monotonic()
    results = interleaved(contenders, args.rounds, warmups, extra_rounds=2, deadline=start + 150, quiet_wait_s=10)
    expected = results["open_clip"].outputs[0]
    quiet, rounds = quiet_round_count(results["open_clip"])
    report: dict = {
        "arch": ARCH,
        "prompts": len(texts),
        "classes": args.classes,
        "mean_real_tokens": float(real.mean()),
        "context_length": ids.shape[1],
        "batch_size": args.batch_size,
        "threads": args.threads,
        "cpu": cpu.as_dict(),
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "git_commit": git_commit(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quiet_rounds": [quiet, rounds],
        "contenders": {},
    }
    ok = True
    print(
        "\n| contender | prompts/s | ours / open_clip | max abs diff vs open_clip | other processes' cores |\n"
        "|---|---:|---:|---:|---:|"
    )
    for name, measurement in results.items():
        diff = max(float((out - expected).abs().max()) for out in measurement.outputs)
        ok &= diff < TOLERANCE
        ratio = paired_ratio(results["open_clip"], measurement)
        summary = measurement.summary(len(texts))
        report["contenders"][name] = {**summary, "speedup_vs_open_clip": ratio, "max_abs_diff": diff}
        load = statistics.median(measurement.foreign_cores)
        print(f"| {name} | {summary['items_per_s']:.1f} | {ratio:.2f}x | {diff:.1e} | {load:.1f} |")
    best = report["contenders"]["ours, embed_texts"]["speedup_vs_open_clip"]
    print(f"\nquiet rounds: {quiet}/{rounds}; embed_texts / open_clip: {best:.2f}x (target {SPEEDUP_TARGET:.0f}x); "
          f"embeddings within {TOLERANCE:g}: {ok}; open_clip's median round "
          f"{report['contenders']['open_clip']['median_s']:.0f} s")  # fmt: skip
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_text_encoding.json").write_text(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
