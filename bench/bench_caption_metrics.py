"""Scoring captions as the default run does: one METEOR JVM for the whole process against a JVM per call.

    python bench/bench_caption_metrics.py [--calls 6] [--rounds 3] [--images 30]

The default run scores captions six times (COCO, NoCaps and MSR-VTT captioning, for each of the two default
checkpoints), each time with pycocoevalcap's BLEU, METEOR, ROUGE-L and CIDEr over about 30 images. Before, every call
started METEOR's JVM (``java -jar meteor-1.5.jar``, which loads its paraphrase tables: seconds); now one JVM serves
every call of a process (``coca_bench.metrics.captioning._SharedMeteor``). Each round times ``--calls`` successive
``caption_metrics`` calls both ways, in alternating order, on the same captions (the mini COCO references, each
image's first caption scored against the others), and checks that both give the same scores. The ratio is taken
per round. The machine-load filter of ``bench/timing.py`` is not used here: it counts the JVM, a child process, as
a neighbour. Writes ``bench/out/bench_caption_metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def corpus(images: int) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(predictions, references) from the mini COCO Karpathy json: each image's first caption is the prediction."""
    from coca_bench.data import default_data_root

    data = json.loads((default_data_root() / "coco" / "dataset_coco.json").read_text())
    chosen = [image for image in data["images"] if len(image["sentences"]) > 2][:images]
    predictions = {str(image["cocoid"]): image["sentences"][0]["raw"] for image in chosen}
    references = {str(image["cocoid"]): [s["raw"] for s in image["sentences"][1:]] for image in chosen}
    return predictions, references


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=30)
    args = parser.parse_args()

    from timing import print_cpu_line  # the bench folder is not a package

    from coca_bench.metrics import captioning

    print_cpu_line()
    predictions, references = corpus(args.images)

    def calls(fresh_jvm: bool) -> tuple[float, dict]:
        captioning._METEOR.stop()  # every mode starts from no JVM, as a run does
        start = time.perf_counter()
        for _ in range(args.calls):
            if fresh_jvm:
                captioning._METEOR.stop()  # what every call did before: start METEOR's JVM, score, stop it
            scores = captioning.caption_metrics(predictions, references, spice=False).scores
        seconds = time.perf_counter() - start
        captioning._METEOR.stop()
        return seconds, scores

    times: dict[str, list[float]] = {"jvm per call": [], "one jvm": []}
    for round_index in range(args.rounds):
        order = ["jvm per call", "one jvm"] if round_index % 2 == 0 else ["one jvm", "jvm per call"]
        scores = {}
        for mode in order:
            seconds, scores[mode] = calls(mode == "jvm per call")
            times[mode].append(seconds)
        assert scores["one jvm"] == scores["jvm per call"], scores
        print(f"round {round_index + 1}: " + ", ".join(f"{m} {times[m][-1]:.2f} s" for m in order), flush=True)
    ratios = [a / b for a, b in zip(times["jvm per call"], times["one jvm"])]
    report = {
        "calls": args.calls,
        "images": len(predictions),
        "seconds": times,
        "median_s": {mode: statistics.median(values) for mode, values in times.items()},
        "speedup_median": statistics.median(ratios),
    }
    print(
        f"{args.calls} caption_metrics calls over {len(predictions)} images: jvm per call "
        f"{report['median_s']['jvm per call']:.2f} s, one jvm {report['median_s']['one jvm']:.2f} s "
        f"(median per-round ratio {report['speedup_median']:.2f}x); scores identical"
    )
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_caption_metrics.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
