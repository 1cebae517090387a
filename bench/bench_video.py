"""Video benchmark: is the model the bottleneck? Frames decoded per second against frames encoded per second, and
a whole video task against the model time inside it.

    python bench/bench_video.py [--arch coca_ViT-B-32] [--num-frames 16] [--repeats 3]

Clips: the bundled mini MSR-VTT and Kinetics clips (H.264 mp4, 128x128, 8 fps). Decoding is timed as the task's
DataLoader workers do it: decode the planned frames (decord) and preprocess them exactly like images (resize, crop,
normalise); encoding is the image encoder on those preprocessed frames, ``B x T`` frames per forward, fp32. The task
run is ``msrvtt_retrieval`` (full split) with a fresh feature cache, against the model time of the same work (frame
encoding plus caption encoding on pre-decoded tensors). Writes ``bench/out/bench_video.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="coca_ViT-B-32")
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from timing import print_cpu_line  # the bench folder is not a package

    print_cpu_line()
    from PIL import Image

    from coca_bench.data import default_data_root, read_frames
    from coca_bench.data.video import clip_frame_indices, video_metadata
    from coca_bench.model import CoCa, get_preset, save_native
    from coca_bench.model import load_model as load

    root = default_data_root()
    clips = sorted((root / "msrvtt" / "videos" / "all").glob("*.mp4")) + sorted((root / "kinetics").rglob("*.mp4"))
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        folder = save_native(CoCa(get_preset(args.arch)), Path(tmp) / "model")
        model = load(str(folder))
        plans = [clip_frame_indices(*video_metadata(c), args.num_frames) for c in clips]

        def decode_all() -> list[torch.Tensor]:
            return [
                torch.stack([model.preprocess(Image.fromarray(f)) for f in read_frames(c, plan)])
                for c, plan in zip(clips, plans)
            ]

        decode_times, encode_times = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            decoded = decode_all()
            decode_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            with torch.no_grad():
                for batch in range(0, len(decoded), 2):
                    model.encode_video(torch.stack(decoded[batch : batch + 2]))
            encode_times.append(time.perf_counter() - start)
        frames = len(clips) * args.num_frames
        decode_fps, encode_fps = frames / min(decode_times), frames / min(encode_times)

        from coca_bench import registry
        from coca_bench.data import read_msrvtt
        from coca_bench.runner import RunConfig, run_suite
        from coca_bench.settings import RunSettings

        test = read_msrvtt(root / "msrvtt", "full").items  # exactly the task's videos and captions
        tensors = [decoded[clips.index(item.path)] for item in test]
        texts = [caption for item in test for caption in item.captions]

        def run_task(index: int) -> tuple[float, dict]:
            registry._clear_for_tests()
            settings = RunSettings(device="cpu", num_workers=2, progress=False, cache_dir=Path(tmp) / f"cache{index}")
            config = RunConfig(tasks="msrvtt_retrieval", checkpoints=[f"b={folder}"], data_root=root,
                               output=Path(tmp) / f"out{index}", params=["split=full", f"num_frames={args.num_frames}"],
                               settings=settings)  # fmt: skip
            start = time.perf_counter()
            (record,) = run_suite(config)
            return time.perf_counter() - start, record

        def model_only() -> float:
            start = time.perf_counter()
            with torch.no_grad():
                for batch in range(0, len(tensors), 2):
                    model.encode_video(torch.stack(tensors[batch : batch + 2]))
                for batch in range(0, len(texts), 32):
                    model.encode_text(model.tokenizer(texts[batch : batch + 32]))
            return time.perf_counter() - start

        task_times, model_times = [], []
        for index in range(args.repeats):  # alternated, so a busy spell hits both
            task_s, record = run_task(index)
            task_times.append(task_s)
            model_times.append(model_only())
        task_s, model_s = min(task_times), min(model_times)
    report = {
        "arch": args.arch, "num_frames": args.num_frames, "clips": len(clips), "frames": frames,
        "decode_frames_per_s": decode_fps, "encode_frames_per_s": encode_fps,
        "decode_over_encode": decode_fps / encode_fps, "task_s": task_s, "model_s": model_s,
        "task_over_model": task_s / model_s, "task_metrics": record["metrics"],
    }  # fmt: skip
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_video.json").write_text(json.dumps(report, indent=2))
    print(f"decode + preprocess: {decode_fps:.0f} frames/s; encode ({args.arch}, fp32): {encode_fps:.1f} frames/s; "
          f"decoding is {decode_fps / encode_fps:.1f}x faster than encoding")  # fmt: skip
    print(f"msrvtt_retrieval (full, fresh cache): {task_s:.1f} s; the model's share of that work: {model_s:.1f} s "
          f"(task / model = {task_s / model_s:.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
