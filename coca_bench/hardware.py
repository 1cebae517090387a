"""What this CPU can do in bf16, so that an opt-in bf16 speed-up is not silently a slow-down.

bf16 pays off on a CPU only with native bf16 arithmetic: AMX (``amx_bf16``: Intel Sapphire Rapids and later) or
AVX-512-BF16 (``avx512_bf16``: Intel Cooper Lake and Sapphire Rapids, AMD Zen 4 and later), or ``bf16`` on Arm.
Without it, every bf16 product is converted to fp32 and back around fp32 arithmetic, which costs more than fp32
alone: greedy batch-8 captioning with ``decode_dtype="bf16"`` ran about 3x slower than fp32 on an AVX2-only AMD EPYC.

``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` does not answer this: it says whether oneDNN *can run* bf16, which it
does by emulation on any AVX-512 CPU (avx512bw/vl/dq, e.g. Skylake-SP) as well. It is recorded, not used to decide.

No torch import at module level (the runner imports this module before it knows whether any task will run).
"""

from __future__ import annotations

import functools
import logging
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("coca_bench.hardware")

NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16", "bf16"})  # x86 flags; "bf16" is Arm's Features entry
RECORDED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "bf16")  # what fp32/bf16 speed hangs on
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686"})


@dataclass(frozen=True)
class CpuCapabilities:
    """The CPU model, the ISA flags bf16 speed depends on, and whether bf16 arithmetic is native here.

    ``native_bf16`` is None when nothing says (no /proc/cpuinfo flags and not x86): then no warning is given.
    ``onednn_bf16`` is torch's ``_is_mkldnn_bf16_supported()`` (None when torch cannot say): bf16 runs, not fast.
    """

    model: str
    flags: tuple[str, ...]
    native_bf16: bool | None
    onednn_bf16: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flags": list(self.flags)}

    def describe(self) -> str:
        """One line for logs and benchmark headers, e.g. ``CPU: AMD EPYC (avx2 avx512f avx512_bf16; native bf16)``."""
        flags = " ".join(self.flags) or "no AVX2"
        bf16 = {True: "native bf16", False: "no native bf16: bf16 is slower than fp32", None: "bf16 support unknown"}
        return f"CPU: {self.model} ({flags}; {bf16[self.native_bf16]})"


def parse_cpuinfo(text: str) -> tuple[str | None, frozenset[str]]:
    """The first ``model name`` and ``flags`` (x86) or ``Features`` (Arm) of a /proc/cpuinfo text."""
    model: str | None = None
    flags: frozenset[str] | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "model name" and model is None:
            model = value.strip() or None
        elif key in ("flags", "features") and flags is None:
            flags = frozenset(value.split())
    return model, flags or frozenset()


def capabilities_from_cpuinfo(text: str, onednn_bf16: bool | None = None) -> CpuCapabilities:
    """Capabilities from a /proc/cpuinfo text alone (no flags there: bf16 support unknown)."""
    model, flags = parse_cpuinfo(text)
    return CpuCapabilities(
        model=model or platform.processor() or platform.machine() or "unknown",
        flags=tuple(flag for flag in RECORDED_FLAGS if flag in flags),
        native_bf16=bool(flags & NATIVE_BF16_FLAGS) if flags else None,
        onednn_bf16=onednn_bf16,
    )


def _torch_onednn_bf16() -> bool | None:
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # an old or CPU-less build: torch cannot say
        return None


def _torch_native_bf16() -> bool | None:
    """Where /proc/cpuinfo is missing (macOS, Windows), torch's cpuinfo-based x86 checks; None off x86."""
    if platform.machine().lower() not in X86_MACHINES:
        return None
    try:
        import torch

        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except Exception:
        return None


@functools.lru_cache(maxsize=1)
def detect() -> CpuCapabilities:
    """This machine's capabilities, read once per process."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    caps = capabilities_from_cpuinfo(text, _torch_onednn_bf16())
    if caps.native_bf16 is None:
        caps = CpuCapabilities(caps.model, caps.flags, _torch_native_bf16(), caps.onednn_bf16)
    return caps


def cpu_capabilities() -> dict[str, Any]:
    """Provenance for a result: the CPU model, its bf16-relevant flags, native bf16 support and torch's view."""
    return detect().as_dict()


def slow_bf16_message(caps: CpuCapabilities, use: str) -> str:
    return (
        f"{use} will be slower than fp32 on this CPU ({caps.model}): it has no native bf16 arithmetic "
        "(avx512_bf16 or amx_bf16), so every bf16 product is converted to fp32 and back; it still runs in bf16 as "
        "asked, but use fp32 for speed here."
    )


_warned = False  # one warning per process: every later bf16 call would only repeat it


def warn_if_bf16_is_slow(use: str) -> bool:
    """Log once per process that ``use`` (e.g. ``"decode_dtype=bf16"``) will be slower here than fp32.

    Returns whether this CPU lacks native bf16 (False when it has it or nothing says). The computation is not
    changed: a result asked for in bf16 is computed, and labelled, bf16.
    """
    global _warned
    caps = detect()
    if caps.native_bf16 is not False:
        return False
    if not _warned:
        _warned = True
        log.warning(slow_bf16_message(caps, use))
    return True
