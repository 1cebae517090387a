"""Which checkpoints exist and what identifies one, without torch.

A result key needs a checkpoint's weights sha256 and its model fingerprint (config and tokenizer), not its tensors:
reading ``config.json`` and hashing the weights file (remembered by stat) tells both, so a rerun whose results are
all stored never builds a network nor imports torch. :func:`checkpoint_identity` answers for the bundled, shipped and
native checkpoints; for others (open_clip state dicts, whose config comes from open_clip itself) it returns None and
the runner loads the model to learn its identity.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from coca_bench.cache import cache_root
from coca_bench.fileio import sha256_file

FORMAT = "coca_bench"
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"


@dataclass(frozen=True)
class BundledCheckpoint:
    preset: str
    seed: int
    description: str


# Generated on first use from a preset and a seed: random weights, so their scores are chance-level baselines.
BUNDLED_CHECKPOINTS: dict[str, BundledCheckpoint] = {
    "tiny-random-s0": BundledCheckpoint("tiny", 0, "tiny open_clip-style CoCa, seeded random weights (seed 0)"),
    "tiny-random-s1": BundledCheckpoint("tiny", 1, "tiny open_clip-style CoCa, seeded random weights (seed 1)"),
}
# Trained checkpoints that ship inside the package (coca_bench/checkpoints_data/<name>/, each with a MODEL_CARD.md):
# one run of `coca-bench train` on generated scenes, its final and its early weights.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "checkpoints_data"
SHIPPED_CHECKPOINTS: dict[str, str] = {
    "demo": "small CoCa (coca-demo preset) trained on generated scenes: final weights",
    "demo-early": "the same training run's early weights: the baseline demo is compared against",
}
# The default run: the trained model against its own early weights, so the first table shows real differences.
DEFAULT_CHECKPOINTS: list[str] = ["demo", "demo-early"]


def bundled_folder(name: str) -> Path:
    """Where a bundled checkpoint is generated (it may not exist yet)."""
    return cache_root() / "checkpoints" / name


def clip_bpe_vocab_file() -> Path:
    """open_clip's BPE vocabulary, found without importing open_clip (which imports torch)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("The clip_bpe tokenizer needs open_clip_torch installed (pip install open_clip_torch).")
    return Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"


def tokenizer_fingerprint(name: str, context_length: int) -> str:
    """What identifies a tokenizer: its vocabulary's bytes and the context length."""
    if name != "clip_bpe":
        raise ValueError(f"Unknown tokenizer {name!r} in the checkpoint config; supported: ['clip_bpe'].")
    return hashlib.sha256(clip_bpe_vocab_file().read_bytes() + f"|ctx={context_length}".encode()).hexdigest()


def model_fingerprint(weights_sha256: str, config_json: str, tokenizer: str) -> str:
    """A model's identity in every key: its weights, its config and its tokenizer."""
    return hashlib.sha256(f"{weights_sha256}|{config_json}|{tokenizer}".encode()).hexdigest()


def display_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "checkpoint"


@dataclass(frozen=True)
class CheckpointIdentity:
    """What a result key needs of a checkpoint, known without loading it."""

    name: str
    weights_sha256: str
    fingerprint: str


def _native_folder(spec: str) -> tuple[Path, str] | None:
    if spec in BUNDLED_CHECKPOINTS:
        return bundled_folder(spec), spec
    if spec in SHIPPED_CHECKPOINTS:
        return SHIPPED_DIR / spec, spec
    if spec.startswith("open_clip:"):
        return None
    path = Path(spec).expanduser()
    if path.is_file() and path.name == WEIGHTS_FILE:
        path = path.parent
    return (path, path.name) if path.is_dir() else None


def checkpoint_identity(spec: str) -> CheckpointIdentity | None:
    """The identity of a native checkpoint (bundled, shipped or a folder) from its files; None when only loading
    it can tell (an open_clip state dict, a bundled checkpoint not generated yet, anything malformed: loading then
    reports the problem)."""
    from coca_bench.model.config import CocaConfig  # plain dataclasses: no torch

    found = _native_folder(spec)
    if found is None:
        return None
    folder, name = found
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        return None
    try:
        meta = json.loads(config_path.read_text())
        config = CocaConfig.from_dict(meta["model"])
        if meta.get("format") != FORMAT:
            return None
        tokenizer = tokenizer_fingerprint(meta.get("tokenizer", "clip_bpe"), config.text.context_length)
    except (ValueError, KeyError, TypeError):
        return None
    weights_sha256 = sha256_file(weights_path)
    return CheckpointIdentity(
        display_name(name), weights_sha256, model_fingerprint(weights_sha256, config.to_json(), tokenizer)
    )


__all__ = [
    "BUNDLED_CHECKPOINTS",
    "CONFIG_FILE",
    "DEFAULT_CHECKPOINTS",
    "FORMAT",
    "SHIPPED_CHECKPOINTS",
    "SHIPPED_DIR",
    "WEIGHTS_FILE",
    "BundledCheckpoint",
    "CheckpointIdentity",
    "bundled_folder",
    "checkpoint_identity",
    "clip_bpe_vocab_file",
    "display_name",
    "model_fingerprint",
    "tokenizer_fingerprint",
]
