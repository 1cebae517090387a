"""Retrieval ranking benchmark: blocked ``rank_retrieval`` against one full similarity matrix, time and peak memory.

    python bench/bench_retrieval.py                          # 10k images x 50k texts, D=512: blocked and full
    python bench/bench_retrieval.py --texts 100000 1000000   # larger galleries (full is skipped past --max-full-gb)
    python bench/bench_retrieval.py --block-size 2048 --images 5000 --texts 25000

Each contender runs once, in a fresh subprocess, on the same seeded inputs: L2-normalised float32 embeddings, each
text its image's embedding plus noise, captions listed image by image (``texts / images`` per image, as in the
Karpathy files). *full* is the straightforward vectorised numpy version of the same definitions: the whole
[images, texts] float32 score matrix, masks over it, and ``argpartition`` for the top-k texts. Both must give
identical ranks and top-k lists; the table says whether they did.

Peak memory is the high-water mark of numpy allocations during the call (``tracemalloc``; BLAS's own small buffers
are not included) and the growth of the process's peak resident set (``ru_maxrss``) over its size before the call.
The inputs themselves are allocated before either is read. Each row also records how many cores other processes
kept busy during the call (a busy neighbour on a 2-core machine inflates times). Results go to
``bench/out/bench_retrieval.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
TOP_K = 10


def make_inputs(images: int, texts: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded normalised embeddings built chunk by chunk in float32, so generating them costs no extra peak."""
    rng = np.random.default_rng(seed)
    image_emb = rng.standard_normal((images, dim), dtype=np.float32)
    image_emb /= np.linalg.norm(image_emb, axis=1, keepdims=True)
    owner = np.minimum(np.arange(texts) * images // texts, images - 1)  # captions listed image by image
    text_emb = np.empty((texts, dim), dtype=np.float32)
    for start in range(0, texts, 65536):
        stop = min(start + 65536, texts)
        chunk = image_emb[owner[start:stop]] + rng.standard_normal((stop - start, dim), dtype=np.float32) * 0.05
        text_emb[start:stop] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return image_emb, text_emb, owner


def full_matrix_ranks(image_emb: np.ndarray, text_emb: np.ndarray, owner: np.ndarray, top_k: int) -> dict[str, Any]:
    """The same definitions on the whole score matrix at once (what fits a small test set)."""
    scores = image_emb @ text_emb.T
    n, m = scores.shape
    own = np.zeros((n, m), dtype=bool)
    own[owner, np.arange(m)] = True
    best = np.where(own, scores, -np.inf).max(axis=1)
    i2t = 1 + ((scores >= best[:, None]) & ~own).sum(axis=1)
    t2i = 1 + ((scores >= scores[owner, np.arange(m)][None, :]) & ~own).sum(axis=0)
    candidates = np.argpartition(-scores, top_k - 1, axis=1)[:, :top_k]
    values = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -values), axis=-1)
    return {"i2t_rank": i2t, "t2i_rank": t2i, "top_texts": np.take_along_axis(candidates, order, axis=1)}


def blocked_ranks(image_emb: np.ndarray, text_emb: np.ndarray, owner: np.ndarray, top_k: int, block: int) -> dict:
    from coca_bench.metrics.retrieval import rank_retrieval

    ranks = rank_retrieval(image_emb, text_emb, owner, top_k=top_k, block_size=block)
    return {"i2t_rank": ranks.i2t_rank, "t2i_rank": ranks.t2i_rank, "top_texts": ranks.top_texts}


def _current_rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(contender: str, images: int, texts: int, dim: int, block: int, seed: int, out: Path) -> None:
    """Run one contender once and write its time, memory and outputs (ranks) to ``out``."""
    sys.path.insert(0, str(BENCH_DIR))
    from timing import CpuClock  # the bench folder is not a package

    inputs = make_inputs(images, texts, dim, seed)
    rss_before = _current_rss_bytes()
    tracemalloc.start()
    clock = CpuClock.now()
    start = time.perf_counter()
    if contender == "full":
        result = full_matrix_ranks(*inputs, TOP_K)
    else:
        result = blocked_ranks(*inputs, TOP_K, block)
    seconds = time.perf_counter() - start
    foreign = clock.foreign_cores(CpuClock.now())
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    np.savez(out.with_suffix(".npz"), **result)
    out.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "traced_peak_bytes": traced_peak,
                "rss_growth_bytes": max(0, rss_peak - rss_before),
                "foreign_cores": foreign,
            }
        )
    )


def run_contender(contender: str, images: int, texts: int, args: argparse.Namespace) -> dict[str, Any]:
    out = args.out / f"retrieval_{contender}_{images}x{texts}.json"
    command = [
        sys.executable,
        __file__,
        "--worker",
        contender,
        "--images",
        str(images),
        "--texts",
        str(texts),
        "--dim",
        str(args.dim),
        "--block-size",
        str(args.block_size),
        "--seed",
        str(args.seed),
        "--out",
        str(args.out),
        "--worker-out",
        str(out),
    ]
    subprocess.run(command, check=True)
    return {**json.loads(out.read_text()), "outputs": dict(np.load(out.with_suffix(".npz")))}


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**27 else f"{n_bytes / 2**20:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--texts", type=int, nargs="+", default=[50_000], help="gallery sizes to run")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-full-gb",
        type=float,
        default=8.0,
        help="skip the full-matrix contender when its score matrix alone would exceed this",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--worker", choices=["blocked", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        worker(args.worker, args.images, args.texts[0], args.dim, args.block_size, args.seed, args.worker_out)
        return 0

    from timing import print_cpu_line  # the bench folder is not a package

    print_cpu_line()
    command = "python bench/bench_retrieval.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    rows, report = (
        [],
        {
            "command": command.strip(),
            "cpu_count": os.cpu_count(),
            "machine": platform.processor(),
            "numpy": np.__version__,
            "dim": args.dim,
            "block_size": args.block_size,
            "runs": [],
        },
    )
    identical = True
    for texts in args.texts:
        blocked = run_contender("blocked", args.images, texts, args)
        matrix_gb = args.images * texts * 4 / 2**30
        full = run_contender("full", args.images, texts, args) if matrix_gb <= args.max_full_gb else None
        same = None
        if full is not None:
            same = all(np.array_equal(blocked["outputs"][k], full["outputs"][k]) for k in blocked["outputs"])
            identical &= same
        for name, result in (("blocked", blocked), ("full", full)):
            if result is None:
                rows.append(f"| {args.images}x{texts} | full | skipped: score matrix alone {matrix_gb:.1f} GiB | | | |")
                continue
            rows.append(
                f"| {args.images}x{texts} | {name} | {result['seconds']:.1f} s | {_gb(result['traced_peak_bytes'])}"
                f" | {_gb(result['rss_growth_bytes'])} | {result['foreign_cores']:.2f} |"
            )
            report["runs"].append(
                {
                    "images": args.images,
                    "texts": texts,
                    "contender": name,
                    "identical": same,
                    **{k: v for k, v in result.items() if k != "outputs"},
                }
            )
        if full is not None:
            rows.append(
                f"| {args.images}x{texts} | full / blocked | {full['seconds'] / blocked['seconds']:.2f}x"
                f" | {full['traced_peak_bytes'] / blocked['traced_peak_bytes']:.1f}x"
                f" | {full['rss_growth_bytes'] / max(1, blocked['rss_growth_bytes']):.1f}x"
                f" | identical: {'yes' if same else 'NO'} |"
            )
    table = "\n".join(
        [
            f"`{report['command']}`  (D={args.dim}, block {args.block_size}, top-{TOP_K}, {os.cpu_count()} cores)",
            "",
            "| images x texts | contender | time | peak numpy alloc | peak RSS growth | other procs' cores |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    (args.out / "bench_retrieval.json").write_text(json.dumps(report, indent=2))
    (args.out / "bench_retrieval.md").write_text(table + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
