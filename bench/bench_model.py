"""Model benchmark: KV-cached CoCa captioning and image encoding, measured against open_clip on the same weights.

    python bench/bench_model.py [--quick | --bf16-only] [--threads N] [--profile] [--out DIR]

Both models hold the same random-weight ``coca_ViT-B-32`` (``coca_bench.model.parity``: open_clip's, with its
uninitialised vocabulary head set and every weight perturbed, then copied into ours) and see the same input tensors. Every configuration checks that the outputs are
identical (tokens: ours vs open_clip, and ours cached vs uncached) before its timings count; a mismatch fails the run
(exit status 1) after the report is written. Random weights practically never emit end-of-text, so every caption runs
the full ``--new-tokens`` steps: a fixed amount of work per caption, which is what a throughput comparison needs.

The opt-in bf16 decoding (``decode_dtype="bf16"``) is timed in the same rounds as a third contender; it is not
expected to give identical tokens, so its agreement with fp32 is measured instead, on the bundled mini COCO images.
``--bf16-only`` runs just that: greedy batch 1 and 8, beam batch 8, and the agreement (a few minutes).

Outputs: ``bench/out/bench_model.json`` (every number, with the machine and library versions) and
``bench/out/bench_model.md`` (the tables, also printed); ``bench_model_bf16.*`` with ``--bf16-only``.
``bench/README.md`` explains each number.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from timing import (
    QUIET_FOREIGN_CORES,
    Measurement,
    foreign_load,
    interleaved,
    paired_ratio,
    print_cpu_line,
    quiet_round_count,
    read_bandwidth,
)

BENCH_DIR = Path(__file__).resolve().parent
ARCH = "coca_ViT-B-32"
GENERATE_SPEEDUP_TARGET = 5.0  # ours / open_clip captions per second, at batch 8 (greedy and beam)
ENCODE_RATIO_TARGET = 0.95  # ours / open_clip images per second, fp32: within 5 %
GIB = 1 << 30


@dataclass(frozen=True)
class Settings:
    quick: bool
    threads: int
    out_dir: Path
    profile: bool = False
    bf16_only: bool = False
    seed: int = 0
    new_tokens: int = 30
    caption_batches: tuple[int, ...] = (1, 8)
    beam_batches: tuple[int, ...] = (1, 8)
    caption_repeats: int = 3
    uncached: bool = True  # time our use_cache=False path too
    bf16: bool = True  # time our decode_dtype="bf16" too, and measure its token agreement with fp32
    agreement_batch: int = 8  # mini COCO images per generate call when comparing bf16 with fp32 tokens
    extra_rounds: int = 2  # re-runs of rounds in which a neighbour process was busy, while the budget allows
    budget_s: float = 13 * 60  # no extra rounds after this many seconds
    quiet_wait_s: float = 20.0  # before each round, wait up to this long for other processes to go quiet
    warmup_new_tokens: int = 5  # warm-ups take the same code paths with a short caption
    num_beams: int = 6
    num_beam_groups: int = 3
    encode_batch: int = 32
    encode_repeats: int = 7
    bandwidth_bytes: int = GIB
    bandwidth_repeats: int = 7

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        common = dict(quick=args.quick, threads=args.threads, out_dir=args.out, profile=args.profile)
        if args.bf16_only:  # bf16 decoding against open_clip and our fp32, then its agreement: a few minutes
            return cls(
                **common,
                bf16_only=True,
                beam_batches=(8,),
                uncached=False,
                extra_rounds=1,
                budget_s=6 * 60,
                quiet_wait_s=10.0,
            )
        if args.quick:  # the same measurements, smaller: about a minute on 2 quiet cores
            return cls(
                **common,
                new_tokens=20,
                caption_batches=(1,),
                beam_batches=(1,),
                caption_repeats=2,
                extra_rounds=0,
                budget_s=90,
                quiet_wait_s=3.0,
                encode_batch=8,
                encode_repeats=3,
                bandwidth_repeats=3,
            )
        return cls(**common)


@dataclass(frozen=True)
class CaptionStrategy:
    """One decoding strategy spelled in both APIs (open_clip counts the start token in ``seq_len``)."""

    name: str
    open_clip_options: dict[str, Any]
    ours_options: dict[str, Any]

    def open_clip_call(self, new_tokens: int) -> dict[str, Any]:
        return {**self.open_clip_options, "seq_len": new_tokens + 1}

    def ours_call(self, new_tokens: int) -> dict[str, Any]:
        return {**self.ours_options, "max_new_tokens": new_tokens}


def caption_strategies(settings: Settings) -> list[CaptionStrategy]:
    beams = dict(num_beams=settings.num_beams, num_beam_groups=settings.num_beam_groups)
    return [
        CaptionStrategy("greedy", dict(generation_type="top_k", top_k=1), dict(strategy="greedy")),
        CaptionStrategy(
            f"beam{settings.num_beams}x{settings.num_beam_groups}g",
            dict(generation_type="beam_search", **beams),
            dict(strategy="beam", **beams),
        ),
    ]


def caption_configurations(settings: Settings) -> list[tuple[CaptionStrategy, int]]:
    """(strategy, batch) pairs to time: greedy at ``caption_batches``, beam search at ``beam_batches``."""
    greedy, beam = caption_strategies(settings)
    return [(greedy, b) for b in settings.caption_batches] + [(beam, b) for b in settings.beam_batches]


@dataclass(frozen=True)
class Run:
    """What every section needs: the settings, a progress log, and when extra (re-run) rounds must stop."""

    settings: Settings
    deadline: float

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------------------ models
def build_models(seed: int):
    """(open_clip model, our ``CocaModel``) holding the same random weights."""
    from coca_bench.model.parity import ours_from_open_clip, random_open_clip_coca

    open_clip_model = random_open_clip_coca(ARCH, seed=seed)
    return open_clip_model, ours_from_open_clip(open_clip_model, ARCH, name=f"{ARCH}-random-s{seed}")


def random_images(batch: int, size: int, seed: int) -> torch.Tensor:
    """Normalised-pixel-like inputs (standard normal); content does not change the work done."""
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


@contextlib.contextmanager
def counting_decode_steps() -> Iterator[list[int]]:
    """Count ``DecodingSession.step`` calls (one forward over the decoder per generated position)."""
    from coca_bench.model.coca import DecodingSession

    counter = [0]
    original = DecodingSession.step

    def counted(self, tokens):
        counter[0] += 1
        return original(self, tokens)

    DecodingSession.step = counted
    try:
        yield counter
    finally:
        DecodingSession.step = original


def profile_table(run: Callable[[], Any], rows: int = 20) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def all_equal(outputs: list[torch.Tensor], reference: torch.Tensor) -> bool:
    return all(out.shape == reference.shape and torch.equal(out, reference) for out in outputs)


# --------------------------------------------------------------------------------------------------- 1. captioning
def caption_contenders(
    open_clip_model, ours, strategy: CaptionStrategy, images: torch.Tensor, new_tokens: int, settings: Settings
) -> dict[str, Callable[[], torch.Tensor]]:
    open_clip_options, ours_options = strategy.open_clip_call(new_tokens), strategy.ours_call(new_tokens)
    contenders = {
        "open_clip": lambda: open_clip_model.generate(images, **open_clip_options),
        "ours": lambda: ours.generate(images, **ours_options),
    }
    if settings.uncached:
        contenders["ours_uncached"] = lambda: ours.generate(images, **ours_options, use_cache=False)
    if settings.bf16:
        contenders["ours_bf16"] = lambda: ours.generate(images, **ours_options, decode_dtype="bf16")
    return contenders


def token_agreement(reference: torch.Tensor, other: torch.Tensor, pad_id: int) -> dict[str, Any]:
    """How many of the reference captions' generated token positions (start token excluded, end token included)
    hold the same token in ``other``, and how many captions are identical; the widths may differ."""
    width = max(reference.shape[1], other.shape[1])
    reference, other = (
        torch.nn.functional.pad(ids, (0, width - ids.shape[1]), value=pad_id) for ids in (reference, other)
    )
    counted = reference[:, 1:] != pad_id
    agreeing = (reference[:, 1:] == other[:, 1:]) & counted
    positions, captions = int(counted.sum()), reference.shape[0]
    identical = int((reference == other).all(dim=1).sum())
    return {
        "token_positions": positions,
        "agreeing_positions": int(agreeing.sum()),
        "position_agreement": int(agreeing.sum()) / positions,
        "captions": captions,
        "identical_captions": identical,
        "caption_agreement": identical / captions,
    }


def rounds_note(times: dict[str, Measurement]) -> dict[str, Any]:
    quiet, total = quiet_round_count(next(iter(times.values())))
    return {"quiet_rounds": quiet, "rounds": total, "statistics_over": "quiet rounds" if quiet else "all rounds"}


def bench_captioning(open_clip_model, ours, run: Run) -> list[dict]:
    settings, rows = run.settings, []
    size = ours.config.vision.image_size
    pad_id = ours.config.text.pad_id
    for strategy, batch in caption_configurations(settings):
        images = random_images(batch, size, settings.seed + batch)
        contenders = caption_contenders(open_clip_model, ours, strategy, images, settings.new_tokens, settings)
        warmups = caption_contenders(open_clip_model, ours, strategy, images, settings.warmup_new_tokens, settings)
        run.log(
            f"captioning {strategy.name} batch {batch}: {settings.caption_repeats} interleaved rounds of "
            f"{', '.join(contenders)} ..."
        )
        with torch.no_grad():
            times = interleaved(
                contenders,
                settings.caption_repeats,
                warmups,
                settings.extra_rounds,
                run.deadline,
                settings.quiet_wait_s,
            )
        reference = times["open_clip"].outputs[0]
        lengths = sorted({int((row != pad_id).sum()) - 1 for row in reference})
        row = {
            "strategy": strategy.name,
            "batch": batch,
            "new_tokens": settings.new_tokens,
            "generated_tokens_per_caption": lengths,
            "identical_to_open_clip": all_equal(times["ours"].outputs, reference),
            "identical_cached_uncached": None,
            "open_clip_deterministic": all_equal(times["open_clip"].outputs, reference),
            **rounds_note(times),
            "open_clip": times["open_clip"].summary(batch),
            "ours": times["ours"].summary(batch),
            "speedup_vs_open_clip": paired_ratio(times["open_clip"], times["ours"]),
        }
        if "ours_uncached" in times:
            row["identical_cached_uncached"] = all_equal(times["ours_uncached"].outputs, times["ours"].outputs[0])
            row["ours_uncached"] = times["ours_uncached"].summary(batch)
            row["speedup_vs_uncached"] = paired_ratio(times["ours_uncached"], times["ours"])
        if "ours_bf16" in times:
            bf16 = times["ours_bf16"]
            row["bf16"] = {
                "ours_bf16": bf16.summary(batch),
                "speedup_vs_open_clip": paired_ratio(times["open_clip"], bf16),
                "speedup_vs_ours_fp32": paired_ratio(times["ours"], bf16),
                "deterministic": all_equal(bf16.outputs, bf16.outputs[0]),
                "agreement_with_fp32_on_these_inputs": token_agreement(
                    times["ours"].outputs[0], bf16.outputs[0], pad_id
                ),
            }
        if batch == 8:
            row["target_speedup"] = GENERATE_SPEEDUP_TARGET
            row["target_met"] = row["speedup_vs_open_clip"] >= GENERATE_SPEEDUP_TARGET
        if settings.profile:
            path = settings.out_dir / f"profile_generate_{strategy.name}_b{batch}.txt"
            with torch.no_grad():
                path.write_text(profile_table(contenders["ours"]))
            row["profile"] = str(path)
        message = (
            f"  ours {row['ours']['median_s']:.2f}s, open_clip {row['open_clip']['median_s']:.2f}s; "
            f"speed-up x{row['speedup_vs_open_clip']:.2f}; identical to open_clip {row['identical_to_open_clip']}"
        )
        if "ours_uncached" in row:
            message += (
                f"; uncached {row['ours_uncached']['median_s']:.2f}s, identical {row['identical_cached_uncached']}"
            )
        if "bf16" in row:
            message += (
                f"; bf16 {row['bf16']['ours_bf16']['median_s']:.2f}s, x{row['bf16']['speedup_vs_open_clip']:.2f} "
                f"open_clip, x{row['bf16']['speedup_vs_ours_fp32']:.2f} fp32"
            )
        run.log(f"{message}; quiet rounds {row['quiet_rounds']}/{row['rounds']}")
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------- 1b. bf16 decoding: token agreement
def mini_coco_pixels(ours) -> tuple[torch.Tensor, list[str]]:
    """The bundled mini COCO val2014 images (real JPEGs, generated once per machine), through the model's preprocess."""
    from PIL import Image

    from coca_bench.data import default_data_root

    paths = sorted((default_data_root() / "coco" / "val2014").glob("*.jpg"))
    if not paths:
        raise FileNotFoundError("no images in the mini COCO val2014 folder of coca_bench.data.default_data_root().")
    pixels = []
    for path in paths:
        with Image.open(path) as image:
            pixels.append(ours.preprocess(image.convert("RGB")))
    return torch.stack(pixels), [path.name for path in paths]


def bench_bf16_agreement(ours, run: Run) -> dict:
    """bf16 against fp32 tokens on real images, per strategy: the accuracy cost of the bf16 speed-up."""
    settings = run.settings
    pixels, names = mini_coco_pixels(ours)
    pad_id, step = ours.config.text.pad_id, settings.agreement_batch
    result: dict[str, Any] = {"images": len(names), "image_files": names, "batch": step, "strategies": {}}
    for strategy in caption_strategies(settings):
        run.log(f"bf16 agreement, {strategy.name}: {len(names)} mini COCO images ...")
        options = strategy.ours_call(settings.new_tokens)
        per_dtype = {}
        for dtype in ("fp32", "bf16"):
            chunks = [
                ours.generate(pixels[i : i + step], **options, decode_dtype=dtype) for i in range(0, len(names), step)
            ]
            width = max(c.shape[1] for c in chunks)
            per_dtype[dtype] = torch.cat(
                [torch.nn.functional.pad(c, (0, width - c.shape[1]), value=pad_id) for c in chunks]
            )
        agreement = token_agreement(per_dtype["fp32"], per_dtype["bf16"], pad_id)
        agreement["first_disagreement"] = [
            next((i for i, (a, b) in enumerate(zip(x.tolist(), y.tolist())) if a != b), None)
            for x, y in zip(per_dtype["fp32"], per_dtype["bf16"])
        ]
        result["strategies"][strategy.name] = agreement
        run.log(
            f"  {agreement['position_agreement']:.1%} of token positions, "
            f"{agreement['identical_captions']}/{agreement['captions']} identical captions"
        )
    return result


# ------------------------------------------------------------------------------------------------ 2. encode_image
def bench_encode(open_clip_model, ours, run: Run) -> dict:
    settings = run.settings
    batch = settings.encode_batch
    images = random_images(batch, ours.config.vision.image_size, settings.seed)

    def open_clip_encode() -> torch.Tensor:
        with torch.no_grad():
            return open_clip_model.encode_image(images, normalize=True)

    def open_clip_encode_bf16() -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return open_clip_model.encode_image(images, normalize=True).float()

    def ours_encode_bf16() -> torch.Tensor:
        with ours.autocast("bf16"):
            return ours.encode_image(images).float()

    contenders = {
        "open_clip_fp32": open_clip_encode,
        "ours_fp32": lambda: ours.encode_image(images),
        "ours_bf16": ours_encode_bf16,
        "open_clip_bf16": open_clip_encode_bf16,
    }
    run.log(f"encode_image batch {batch}: {settings.encode_repeats} interleaved rounds ...")
    times = interleaved(
        contenders,
        settings.encode_repeats,
        extra_rounds=settings.extra_rounds,
        deadline=run.deadline,
        quiet_wait_s=settings.quiet_wait_s,
    )
    first = {name: m.outputs[0] for name, m in times.items()}
    result = {
        "batch": batch,
        "image_size": ours.config.vision.image_size,
        **rounds_note(times),
        **{name: m.summary(batch) for name, m in times.items()},
        "ratio_fp32_ours_vs_open_clip": paired_ratio(times["open_clip_fp32"], times["ours_fp32"]),
        "target_ratio": ENCODE_RATIO_TARGET,
        "speedup_bf16_vs_fp32_ours": paired_ratio(times["ours_fp32"], times["ours_bf16"]),
        "ratio_bf16_ours_vs_open_clip": paired_ratio(times["open_clip_bf16"], times["ours_bf16"]),
        "max_abs_diff_fp32_ours_vs_open_clip": float((first["ours_fp32"] - first["open_clip_fp32"]).abs().max()),
        "max_abs_diff_bf16_vs_fp32_ours": float((first["ours_bf16"] - first["ours_fp32"]).abs().max()),
        "min_cosine_bf16_vs_fp32_ours": float((first["ours_bf16"] * first["ours_fp32"]).sum(-1).min()),
    }
    result["target_met"] = result["ratio_fp32_ours_vs_open_clip"] >= ENCODE_RATIO_TARGET
    if settings.profile:
        for name in ("open_clip_fp32", "ours_fp32"):
            path = settings.out_dir / f"profile_encode_{name}_b{batch}.txt"
            path.write_text(profile_table(contenders[name]))
    run.log(
        f"  ours/open_clip fp32 x{result['ratio_fp32_ours_vs_open_clip']:.3f}, "
        f"bf16/fp32 x{result['speedup_bf16_vs_fp32_ours']:.2f}"
    )
    return result


# ------------------------------------------------------------------------------------------- 3. batch-1 decode bound
def decode_step_bytes(ours, image_tokens: torch.Tensor) -> dict[str, int]:
    """Bytes a cached batch-1 decode step must read: every text/decoder weight once, plus the image keys/values.

    Not read per step: the image encoder and poolers (once per image), the cross-attention key/value projections
    (applied to the image tokens once per caption), the text tower's [CLS] path (contrastive embedding only), and
    all but one row of the token and position embeddings.
    """
    network = ours.network
    text, decoder = network.text, network.decoder

    def size(params) -> int:
        return sum(p.numel() * p.element_size() for p in params)

    once_per_caption = {
        id(p) for block in decoder.cross_blocks for p in (*block.ln_1_kv.parameters(), *block.attn.kv.parameters())
    }
    image_kv = decoder.image_kv(image_tokens)
    return {
        "text_layers": size(text.blocks.parameters()),
        "embedding_rows": text.token_embedding.weight[0].nbytes + text.positional_embedding[0].nbytes,
        "decoder_self_layers": size(decoder.self_blocks.parameters()),
        "decoder_cross_layers": size(p for p in decoder.cross_blocks.parameters() if id(p) not in once_per_caption),
        "vocab_head": size([*decoder.ln_final.parameters(), decoder.lm_head]),
        "image_keys_values": sum(k.nbytes + v.nbytes for k, v in image_kv),
    }


def bench_decode_bound(ours, captioning: list[dict], run: Run) -> dict:
    settings = run.settings
    greedy_b1 = next((r for r in captioning if r["strategy"] == "greedy" and r["batch"] == 1), None)
    if greedy_b1 is None:
        raise ValueError("the decode bound needs the batch-1 greedy measurement; keep 1 in caption_batches.")
    images = random_images(1, ours.config.vision.image_size, settings.seed + 1)
    with counting_decode_steps() as steps:
        ours.generate(images, strategy="greedy", max_new_tokens=settings.new_tokens)
    image_tokens = ours.decoder_image_tokens(images)
    parts = decode_step_bytes(ours, image_tokens)
    weight_bytes = sum(v for k, v in parts.items() if k != "image_keys_values")
    run.log(f"decode bound: {steps[0]} steps x {weight_bytes / 1e6:.0f} MB of weights; measuring bandwidth ...")
    dram = read_bandwidth(settings.bandwidth_bytes, settings.bandwidth_repeats)
    working_set = read_bandwidth(weight_bytes, settings.bandwidth_repeats)
    encoder = interleaved(
        {"image_encoder": lambda: ours.decoder_image_tokens(images)},
        settings.encode_repeats,
        extra_rounds=settings.extra_rounds,
        deadline=run.deadline,
        quiet_wait_s=settings.quiet_wait_s,
    )
    total = greedy_b1["ours"]["median_s"]
    decode = total - encoder["image_encoder"].median
    bound = weight_bytes / dram * steps[0]
    return {
        "decode_steps": steps[0],
        "bytes_per_step": parts,
        "weight_bytes_per_step": weight_bytes,
        "read_bandwidth_bytes_per_s": dram,
        "bandwidth_array_bytes": settings.bandwidth_bytes,
        "read_bandwidth_at_weight_size_bytes_per_s": working_set,
        "bound_s": bound,
        "bound_with_image_kv_s": (weight_bytes + parts["image_keys_values"]) / dram * steps[0],
        "measured_generate_s": total,
        "measured_image_encoder_s": encoder["image_encoder"].median,
        "measured_decode_s": decode,
        "measured_over_bound": decode / bound,
    }


# ----------------------------------------------------------------------------------------------------- reporting
def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR, capture_output=True, text=True)
        return out.stdout.strip() or None
    except OSError:
        return None


def environment(settings: Settings) -> dict:
    import open_clip
    import transformers

    from coca_bench.hardware import detect

    cpu = detect()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu_model": cpu.model,
        "cpu_flags": list(cpu.flags),
        "cpu": cpu.as_dict(),  # native_bf16: whether the bf16 rows can be faster than fp32 on this CPU at all
        "cpu_count": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "git_commit": git_commit(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()},
    }


def _yes(flag: bool | None) -> str:
    return "n/a" if flag is None else "yes" if flag else "**NO**"


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part}/{whole})"


def bf16_markdown(report: dict) -> list[str]:
    """The bf16 decoding tables: speed in the same rounds as fp32 and open_clip, then agreement on real images."""
    rows = [r for r in report["captioning"] if "bf16" in r]
    if not rows:
        return []
    lines = [
        "",
        f'**bf16 decoding** (opt-in `decode_dtype="bf16"`: text layers, decoder, caches and image keys/values in bf16 '
        "with oneDNN-prepacked weights, scores compared in fp32; image encoder fp32), timed in the same rounds as "
        f"the rows above. Casting and packing the decoding weights, once per model: {report['bf16_prepare_s']:.1f} s.",
        "",
        "| strategy | batch | open_clip captions/s | ours fp32 captions/s | ours bf16 captions/s | bf16 / open_clip "
        "| bf16 / fp32 | tokens = fp32 (these random inputs) | quiet rounds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for r in rows:
        b, a = r["bf16"], r["bf16"]["agreement_with_fp32_on_these_inputs"]
        lines.append(
            f"| {r['strategy']} | {r['batch']} | {r['open_clip']['items_per_s']:.3f} | {r['ours']['items_per_s']:.3f} "
            f"| {b['ours_bf16']['items_per_s']:.3f} | {b['speedup_vs_open_clip']:.2f}x | {b['speedup_vs_ours_fp32']:.2f}x "
            f"| {_pct(a['agreeing_positions'], a['token_positions'])} | {r['quiet_rounds']}/{r['rounds']} |"
        )
    agreement = report.get("bf16_agreement")
    if agreement:
        lines += [
            "",
            f"**bf16 tokens against fp32 on the bundled mini COCO images** ({agreement['images']} val2014 images, "
            f"preprocessed by the model, {agreement['batch']} per call, {report['captioning'][0]['new_tokens']} new "
            "tokens; random weights, so every caption runs all positions).",
            "",
            "| strategy | token positions equal to fp32 | captions identical to fp32 |",
            "|---|---:|---:|",
        ]
        for name, a in agreement["strategies"].items():
            lines.append(
                f"| {name} | {_pct(a['agreeing_positions'], a['token_positions'])} "
                f"| {_pct(a['identical_captions'], a['captions'])} |"
            )
    return lines


def markdown(report: dict) -> str:
    env, lines = report["environment"], []
    lines += [
        f"Model `{ARCH}` (random weights, fp32 unless noted), {env['threads']} threads, {env['cpu_model']} "
        f"({' '.join(env['cpu_flags']) or 'no AVX2'}), "
        f"torch {env['torch']}, open_clip {env['open_clip']}, {env['date']}.",
        f"Load average at start / end: {', '.join(f'{x:.1f}' for x in env['load_average_start'])} / "
        f"{', '.join(f'{x:.1f}' for x in env['load_average_end'])}; other processes' CPU use at start: "
        f"{env['foreign_cores_at_start']:.2f} cores. Command: `{env['command']}`.",
        "",
        f"**Captioning** ({report['captioning'][0]['new_tokens']} new tokens per caption; random weights emit no "
        "end-of-text, so every caption runs all steps). Captions/s = images/s; speed-ups are medians of per-round "
        "ratios, each round timing the contenders back to back. Statistics use the quiet rounds (other processes "
        f"kept <= {QUIET_FOREIGN_CORES} cores busy during every call of the round) when there are any.",
        "",
        "| strategy | batch | open_clip captions/s | ours captions/s | ours uncached captions/s | ours / open_clip "
        "| cached / uncached | identical to open_clip | cached = uncached | quiet rounds |",
        "|---|---:|---:|---:|---:|---:|---:|:-:|:-:|:-:|",
    ]
    for r in report["captioning"]:
        target = ""
        if "target_met" in r:
            target = " (target >= {:.0f}x: {})".format(r["target_speedup"], "met" if r["target_met"] else "**missed**")
        uncached, vs_uncached = "n/a", "n/a"
        if "ours_uncached" in r:
            uncached, vs_uncached = f"{r['ours_uncached']['items_per_s']:.3f}", f"{r['speedup_vs_uncached']:.2f}x"
        lines.append(
            f"| {r['strategy']} | {r['batch']} | {r['open_clip']['items_per_s']:.3f} | {r['ours']['items_per_s']:.3f} "
            f"| {uncached} | {r['speedup_vs_open_clip']:.2f}x{target} "
            f"| {vs_uncached} | {_yes(r['identical_to_open_clip'])} "
            f"| {_yes(r['identical_cached_uncached'])} | {r['quiet_rounds']}/{r['rounds']} |"
        )
    lines += bf16_markdown(report)
    if "encode_image" not in report:
        return "\n".join(lines) + "\n"
    e = report["encode_image"]
    lines += [
        "",
        f"**encode_image** (batch {e['batch']}, {e['image_size']}x{e['image_size']}, normalised embeddings; "
        f"quiet rounds {e['quiet_rounds']}/{e['rounds']}).",
        "",
        "| contender | images/s | median s | ratio |",
        "|---|---:|---:|---|",
        f"| open_clip fp32 | {e['open_clip_fp32']['items_per_s']:.1f} | {e['open_clip_fp32']['median_s']:.3f} | |",
        f"| ours fp32 | {e['ours_fp32']['items_per_s']:.1f} | {e['ours_fp32']['median_s']:.3f} "
        f"| {e['ratio_fp32_ours_vs_open_clip']:.3f}x open_clip fp32 (target >= {e['target_ratio']}: "
        f"{'met' if e['target_met'] else '**missed**'}); max abs diff {e['max_abs_diff_fp32_ours_vs_open_clip']:.1e} |",
        f"| ours bf16 autocast | {e['ours_bf16']['items_per_s']:.1f} | {e['ours_bf16']['median_s']:.3f} "
        f"| {e['speedup_bf16_vs_fp32_ours']:.2f}x ours fp32; max abs diff vs fp32 "
        f"{e['max_abs_diff_bf16_vs_fp32_ours']:.1e} (min cosine {e['min_cosine_bf16_vs_fp32_ours']:.5f}) |",
        f"| open_clip bf16 autocast | {e['open_clip_bf16']['items_per_s']:.1f} | {e['open_clip_bf16']['median_s']:.3f} "
        f"| ours bf16 is {e['ratio_bf16_ours_vs_open_clip']:.3f}x this |",
    ]
    b = report["decode_bound"]
    parts = ", ".join(f"{k} {v / 1e6:.1f}" for k, v in b["bytes_per_step"].items())
    lines += [
        "",
        "**Batch-1 greedy decode vs the memory-bandwidth bound** (a cached decode step streams every text/decoder "
        "weight once).",
        "",
        "| quantity | value |",
        "|---|---:|",
        f"| weights read per step | {b['weight_bytes_per_step'] / 1e6:.1f} MB |",
        f"| breakdown (MB) | {parts} |",
        f"| decode steps per caption | {b['decode_steps']} |",
        f"| read bandwidth, {b['bandwidth_array_bytes'] / GIB:.0f} GiB array (DRAM) "
        f"| {b['read_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s |",
        f"| read bandwidth, weight-sized array (partly cache) | {b['read_bandwidth_at_weight_size_bytes_per_s'] / 1e9:.1f}"
        " GB/s |",
        f"| bound = bytes / bandwidth x steps | {b['bound_s']:.3f} s (with image K/V {b['bound_with_image_kv_s']:.3f} s) |",
        f"| measured: generate / image encoder / decode = difference | {b['measured_generate_s']:.3f} / "
        f"{b['measured_image_encoder_s']:.3f} / {b['measured_decode_s']:.3f} s |",
        f"| measured decode / bound | {b['measured_over_bound']:.2f} |",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="fewer rounds, batch 1 only, 20 tokens (about a minute)")
    modes.add_argument(
        "--bf16-only",
        action="store_true",
        help="only bf16 decoding vs open_clip and our fp32 (greedy batch 1 and 8, beam batch 8) and its token "
        "agreement with fp32 on the mini COCO images (a few minutes)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads for both models")
    parser.add_argument("--profile", action="store_true", help="also write torch.profiler tables to the output folder")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="output folder (default bench/out)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}.")
    return args


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_args(parse_args(argv))
    print_cpu_line()
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecation notes inside open_clip

    run = Run(settings, deadline=time.monotonic() + settings.budget_s)

    report: dict = {"environment": environment(settings)}
    busy = report["environment"]["foreign_cores_at_start"] = foreign_load(2.0)
    if busy > QUIET_FOREIGN_CORES and settings.threads > 1:
        run.log(
            f"warning: other processes keep {busy:.1f} cores busy; with {settings.threads} threads each, OpenMP "
            "oversubscription slows many-small-op code (cached decoding) far more than big matmuls, which skews "
            "the ratios. Prefer a quiet machine, or --threads 1."
        )
    open_clip_model, ours = build_models(settings.seed)
    if settings.bf16:
        start = time.perf_counter()
        ours.network.decoding_weights(torch.bfloat16)  # cast and pack once, outside the timed calls
        report["bf16_prepare_s"] = time.perf_counter() - start
    report["captioning"] = bench_captioning(open_clip_model, ours, run)
    if settings.bf16:
        report["bf16_agreement"] = bench_bf16_agreement(ours, run)
    if not settings.bf16_only:
        report["encode_image"] = bench_encode(open_clip_model, ours, run)
        report["decode_bound"] = bench_decode_bound(ours, report["captioning"], run)
    report["environment"]["load_average_end"] = os.getloadavg()

    table = markdown(report)
    stem = "bench_model_bf16" if settings.bf16_only else "bench_model"
    (settings.out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (settings.out_dir / f"{stem}.md").write_text(table)
    print(table)
    mismatched = [
        f"{r['strategy']} batch {r['batch']}"
        for r in report["captioning"]
        if not (
            r["identical_to_open_clip"] and r["identical_cached_uncached"] is not False and r["open_clip_deterministic"]
        )
    ]
    if mismatched:
        run.log(
            f"error: generated tokens differ (ours vs open_clip, or cached vs uncached) for {', '.join(mismatched)}; "
            f"see {settings.out_dir / f'{stem}.json'}."
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
