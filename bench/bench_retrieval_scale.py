"""How retrieval ranking scales with the gallery: time and peak memory at 10k, 100k and 1M texts.

    python bench/bench_retrieval_scale.py                                  # 10k, 100k, 1M texts; fp32 and fp16
    python bench/bench_retrieval_scale.py --gallery 10000 100000 --dtypes float32

Queries are subsampled so that 1M runs in minutes on 2 cores: 10k images (``--queries``) against a gallery of N
texts, D=512, captions listed image by image. One ``rank_retrieval`` call ranks both directions: each image against
all N texts (i2t, top-10 kept) and each of the N texts against the 10k images (t2i). Embeddings are stored as
``--dtypes`` (float16 halves the inputs; ``rank_retrieval`` computes in float32, so it makes a float32 copy).

Each (size, dtype) runs once in a fresh subprocess: the inputs are built first, then the call is timed and its peak
memory measured as the high-water mark of numpy allocations during the call (``tracemalloc``) and the growth of the
peak resident set (``ru_maxrss``). The growth rate is the log-log slope between consecutive sizes (1.0: linear in
N). Results go to ``bench/out/bench_retrieval_scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shlex
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
TOP_K = 10


def worker(queries: int, gallery: int, dim: int, dtype: str, block: int, out: Path) -> None:
    """Build the inputs, then time and measure one ``rank_retrieval`` call; write the figures to ``out``."""
    sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]  # a checkout used without installing
    from bench_retrieval import _current_rss_bytes, make_inputs  # the bench folder is not a package

    from coca_bench.metrics.retrieval import rank_retrieval

    image_emb, text_emb, owner = make_inputs(queries, gallery, dim, seed=0)
    image_emb, text_emb = image_emb.astype(dtype, copy=False), text_emb.astype(dtype, copy=False)
    input_bytes = image_emb.nbytes + text_emb.nbytes + owner.nbytes
    rss_before = _current_rss_bytes()
    tracemalloc.start()
    start = time.perf_counter()
    ranks = rank_retrieval(image_emb, text_emb, owner, top_k=TOP_K, block_size=block)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before)
    figures = {
        "queries": queries,
        "gallery": gallery,
        "dtype": dtype,
        "seconds": seconds,
        "traced_peak_bytes": traced_peak,
        "rss_growth_bytes": rss_growth,
        "input_bytes": input_bytes,
        "i2t_recall@1": float((ranks.i2t_rank == 1).mean()),
    }
    out.write_text(json.dumps(figures))


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.0f} MiB"


def _slope(rows: list[dict], field: str) -> list[str]:
    out = ["—"]
    for a, b in zip(rows, rows[1:]):
        out.append(f"{math.log(b[field] / a[field]) / math.log(b['gallery'] / a['gallery']):.2f}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--gallery", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16"], choices=["float32", "float16"])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--worker", nargs=3, metavar=("GALLERY", "DTYPE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        gallery, dtype, out = args.worker
        worker(args.queries, int(gallery), args.dim, dtype, args.block_size, Path(out))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    from timing import print_cpu_line  # the bench folder is not a package

    print_cpu_line()
    command = "python bench/bench_retrieval_scale.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    runs: list[dict] = []
    lines = [
        f"`{command.strip()}`  ({args.queries} image queries, D={args.dim}, block {args.block_size}, "
        f"top-{TOP_K}, {os.cpu_count()} cores)",
        "",
        "| dtype | texts | time | time growth | peak numpy alloc | alloc growth | peak RSS growth | inputs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for dtype in args.dtypes:
        rows = []
        for gallery in sorted(args.gallery):
            out = args.out / f"retrieval_scale_{dtype}_{gallery}.json"
            fixed = ["--queries", str(args.queries), "--dim", str(args.dim), "--block-size", str(args.block_size)]
            subprocess.run([sys.executable, __file__, *fixed, "--worker", str(gallery), dtype, str(out)], check=True)
            rows.append(json.loads(out.read_text()))
            print(f"{dtype} {gallery}: {rows[-1]['seconds']:.1f} s, {_size(rows[-1]['traced_peak_bytes'])}", flush=True)
        for row, time_slope, alloc_slope in zip(rows, _slope(rows, "seconds"), _slope(rows, "traced_peak_bytes")):
            lines.append(
                f"| {dtype} | {row['gallery']:,} | {row['seconds']:.1f} s | {time_slope} | "
                f"{_size(row['traced_peak_bytes'])} | {alloc_slope} | {_size(row['rss_growth_bytes'])} | "
                f"{_size(row['input_bytes'])} |"
            )
        runs.extend(rows)
    table = "\n".join(lines)
    print(table)
    (args.out / "bench_retrieval_scale.json").write_text(json.dumps({"command": command, "runs": runs}, indent=2))
    (args.out / "bench_retrieval_scale.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
