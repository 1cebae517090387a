"""Checkpoints: the native format, open_clip import, and the bundled (generated) checkpoints.

Native format: a folder with ``model.safetensors`` and ``config.json`` (``{"format": "coca_bench", "model": {...},
"tokenizer": ...}``). Loading never runs pickled code: safetensors, or ``torch.load(weights_only=True)``.

A native file may store floats in fp16 or bf16 (loading upcasts to fp32) and may leave out the all-zero rows of a
matrix (``<key>:index`` and ``<key>:values`` tensors plus the full shape in the safetensors metadata): a model trained
on a few hundred of the 49,408 CLIP BPE tokens is then a few MB instead of 60 (the shipped ``demo`` checkpoints).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..cache import cache_root
from ..fileio import atomic_write_bytes, atomic_write_text, sha256_file
from .catalog import (
    BUNDLED_CHECKPOINTS,
    CONFIG_FILE,
    FORMAT,
    SHIPPED_CHECKPOINTS,
    SHIPPED_DIR,
    WEIGHTS_FILE,
    bundled_folder,
)
from .coca import CoCa
from .config import CocaConfig, from_open_clip, get_preset

SPARSE_METADATA = "coca_bench.sparse_rows"


@dataclass
class LoadedCheckpoint:
    network: CoCa
    config: CocaConfig
    tokenizer: str
    name: str
    weights_path: Path | None
    weights_sha256: str


# ---------------------------------------------------------------------------------------------------------- native
def save_native(
    network: CoCa,
    folder: Path,
    tokenizer: str = "clip_bpe",
    *,
    dtype: torch.dtype | None = None,
    omit_zero_rows: bool = False,
) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/config.json`` atomically.

    ``dtype``: store floating tensors in this dtype (fp16 halves a file; loading upcasts to fp32). ``omit_zero_rows``:
    store only the rows of the token embedding and the columns of the vocabulary head that are not all zero.
    """
    from safetensors.torch import save

    folder = Path(folder)
    state = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    sparse: dict[str, dict[str, Any]] = {}
    if omit_zero_rows:
        for key, dim in (("text.token_embedding.weight", 0), ("decoder.lm_head", 1)):
            value = state.pop(key)
            index = torch.nonzero(value.ne(0).any(dim=1 - dim)).flatten()
            state[f"{key}:index"] = index
            state[f"{key}:values"] = value.index_select(dim, index).contiguous()
            sparse[key] = {"dim": dim, "shape": list(value.shape)}
    metadata = {SPARSE_METADATA: json.dumps(sparse, sort_keys=True)} if sparse else None
    config = {"format": FORMAT, "version": 1, "model": network.cfg.to_dict(), "tokenizer": tokenizer}
    atomic_write_bytes(folder / WEIGHTS_FILE, save(state, metadata=metadata))
    atomic_write_text(folder / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True))
    return folder


def read_native_weights(path: Path) -> dict[str, torch.Tensor]:
    """A native weights file as a dense fp32 state dict: omitted zero rows restored, fp16 / bf16 upcast."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        state = {key: handle.get_tensor(key) for key in handle.keys()}
    try:
        sparse = json.loads(metadata.get(SPARSE_METADATA, "{}"))
        for key, spec in sparse.items():
            index, values = state.pop(f"{key}:index"), state.pop(f"{key}:values")
            state[key] = values.new_zeros(spec["shape"]).index_copy_(int(spec["dim"]), index, values)
    except (json.JSONDecodeError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        raise ValueError(f"{path}: its omitted-rows metadata does not fit its tensors ({exc}).") from exc
    return {k: v.float() if v.is_floating_point() and v.dtype != torch.float32 else v for k, v in state.items()}


def _load_native(folder: Path) -> LoadedCheckpoint:
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise ValueError(f"{folder} is not a coca_bench checkpoint: it needs {CONFIG_FILE} and {WEIGHTS_FILE}.")
    try:
        meta = json.loads(config_path.read_text())
        cfg = CocaConfig.from_dict(meta["model"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{config_path}: not a valid coca_bench config ({type(exc).__name__}: {exc}).") from exc
    if meta.get("format") != FORMAT:
        raise ValueError(f"{config_path}: 'format' is {meta.get('format')!r}, expected {FORMAT!r}.")
    network = CoCa(cfg)
    load_state(network, read_native_weights(weights_path), str(weights_path))
    return LoadedCheckpoint(
        network, cfg, meta.get("tokenizer", "clip_bpe"), folder.name, weights_path, sha256_file(weights_path)
    )


def load_state(network: CoCa, state: dict[str, torch.Tensor], source: str) -> None:
    """Strict load that names every missing and unexpected key, and shape mismatches."""
    own = network.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or mismatched:
        details = []
        if missing:
            details.append(f"missing keys {_short(missing)}")
        if unexpected:
            details.append(f"unexpected keys {_short(unexpected)}")
        if mismatched:
            details.append(
                "shape mismatches "
                + _short([f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched])
            )
        raise ValueError(f"Checkpoint {source} does not fit its config: {'; '.join(details)}.")
    network.load_state_dict(state, strict=True)


def _short(items: list[str], n: int = 8) -> str:
    return str(items[:n])[:-1] + (f", ... {len(items) - n} more]" if len(items) > n else "]")


# -------------------------------------------------------------------------------------------------------- open_clip
_RENAMES = [
    (r"^visual\.conv1\.", "visual.patch_embed."),
    (r"^visual\.transformer\.resblocks\.", "visual.blocks."),
    (r"^visual\.attn_pool\.", "visual.gen_pooler."),
    (r"^visual\.attn_pool_contrastive\.", "visual.con_pooler."),
    (r"^text\.transformer\.resblocks\.", "text.blocks."),
    (r"^text_decoder\.resblocks\.", "decoder.self_blocks."),
    (r"^text_decoder\.cross_attn\.", "decoder.cross_blocks."),
    (r"^text_decoder\.ln_final\.", "decoder.ln_final."),
    (r"^text_decoder\.text_projection$", "decoder.lm_head"),
    (r"\.mlp\.c_fc\.", ".mlp.fc."),
    (r"\.mlp\.c_proj\.", ".mlp.proj."),
    (r"\.attn\.out_proj\.", ".attn.out."),
]
_CROSS = re.compile(r"^(decoder\.cross_blocks\.\d+|visual\.(gen|con)_pooler)\.attn\.")


def convert_open_clip_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename open_clip CoCa keys to ours; split fused in-projections where we keep queries and keys/values apart."""
    out: dict[str, torch.Tensor] = {}
    separate_kv: dict[str, dict[str, torch.Tensor]] = {}  # poolers whose key width differs from the query width
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.endswith("attn_mask"):
            continue
        for pattern, replacement in _RENAMES:
            key = re.sub(pattern, replacement, key)
        cross = _CROSS.match(key)
        leaf = key[cross.end() :] if cross else ""
        if cross and leaf in ("in_proj_weight", "in_proj_bias"):
            kind = leaf.removeprefix("in_proj_")
            dim = value.shape[0] // 3
            out[f"{cross.group(0)}q.{kind}"], out[f"{cross.group(0)}kv.{kind}"] = value[:dim], value[dim:]
        elif cross and leaf == "q_proj_weight":
            out[f"{cross.group(0)}q.weight"] = value
        elif cross and leaf in ("k_proj_weight", "v_proj_weight"):
            separate_kv.setdefault(cross.group(0), {})[leaf] = value
        else:
            out[
                key.replace(".attn.in_proj_weight", ".attn.qkv.weight").replace(".attn.in_proj_bias", ".attn.qkv.bias")
            ] = value
    for prefix, parts in separate_kv.items():
        out[f"{prefix}kv.weight"] = torch.cat([parts["k_proj_weight"], parts["v_proj_weight"]])
    return out


def _read_state_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"Cannot read {path} as a weights-only PyTorch state dict: {exc}") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict.")
    return obj


def _load_open_clip(arch: str, source: str) -> LoadedCheckpoint:
    from open_clip import get_model_config

    oc_cfg = get_model_config(arch)
    if oc_cfg is None or "multimodal_cfg" not in oc_cfg:
        raise ValueError(f"open_clip has no CoCa architecture {arch!r}; try coca_ViT-B-32 or coca_ViT-L-14.")
    cfg = from_open_clip(oc_cfg)
    path = Path(source).expanduser()
    if not path.is_file():
        path = _fetch_open_clip_tag(arch, source)
    network = CoCa(cfg)
    load_state(network, convert_open_clip_state(_read_state_file(path)), str(path))
    name = f"{arch}-{source if not Path(source).expanduser().is_file() else path.stem}"
    return LoadedCheckpoint(network, cfg, "clip_bpe", name, path, sha256_file(path))


def _fetch_open_clip_tag(arch: str, tag: str) -> Path:
    """A pretrained tag was named explicitly, which is the user asking for a hub download."""
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    pretrained = get_pretrained_cfg(arch, tag)
    if not pretrained:
        raise ValueError(f"{tag!r} is neither a local file nor an open_clip pretrained tag of {arch}.")
    try:
        return Path(download_pretrained(pretrained, cache_dir=str(cache_root() / "hub")))
    except Exception as exc:
        raise ValueError(
            f"Could not download open_clip:{arch}:{tag} ({type(exc).__name__}); download the weights file and pass "
            f"open_clip:{arch}:/path/to/open_clip_pytorch_model.bin instead."
        ) from exc


# ---------------------------------------------------------------------------------------------------------- bundled
def bundled_path(name: str) -> Path:
    """Generate a bundled checkpoint on first use (seeded, so the bytes are the same on every machine)."""
    entry = BUNDLED_CHECKPOINTS[name]
    folder = bundled_folder(name)
    if not (folder / CONFIG_FILE).is_file():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(entry.seed)
            network = CoCa(get_preset(entry.preset))
        tmp = Path(tempfile.mkdtemp(dir=folder.parent if folder.parent.exists() else _mkdir(folder.parent)))
        save_native(network, tmp)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process won the race; its bytes are identical
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    return folder


def shipped_path(name: str) -> Path:
    """The folder of a checkpoint shipped in the package; a clear error when an install left its files out."""
    folder = SHIPPED_DIR / name
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise ValueError(
            f"The shipped checkpoint {name!r} is missing from {folder} (this install left out the package data). "
            "Reinstall coca-bench, or recreate it with the command in its MODEL_CARD.md (`coca-bench train`)."
        )
    return folder


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_checkpoint(spec: str) -> LoadedCheckpoint:
    """``spec``: a bundled name, ``open_clip:<arch>:<file-or-tag>``, or a native checkpoint folder / weights file."""
    if spec in BUNDLED_CHECKPOINTS:
        loaded = _load_native(bundled_path(spec))
        loaded.name = spec
        return loaded
    if spec in SHIPPED_CHECKPOINTS:
        loaded = _load_native(shipped_path(spec))
        loaded.name = spec
        return loaded
    if spec.startswith("open_clip:"):
        parts = spec.split(":", 2)
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise ValueError(
                f"Checkpoint spec {spec!r} must look like open_clip:<arch>:<weights file or pretrained tag>."
            )
        return _load_open_clip(parts[1], parts[2])
    path = Path(spec).expanduser()
    if path.is_file() and path.name == WEIGHTS_FILE:
        path = path.parent
    if path.is_dir():
        return _load_native(path)
    raise ValueError(
        f"Checkpoint {spec!r} is not a bundled name ({sorted({*SHIPPED_CHECKPOINTS, *BUNDLED_CHECKPOINTS})}), an "
        "open_clip:<arch>:<file-or-tag> spec, or a folder with config.json and model.safetensors."
    )
