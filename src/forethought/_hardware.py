"""What this machine has: bfloat16 arithmetic (so `--bf16` is used only where it is fast), free memory.

bf16 autocast is a win only on hardware with bf16 arithmetic: CUDA GPUs from Ampere on, x86 CPUs
with AVX512-BF16 or AMX (Intel Sapphire Rapids and later, AMD Zen 4 and later), Arm CPUs with the
BF16 extension. Elsewhere PyTorch emulates it with conversions, and it is several times *slower*
than float32 (7.5x for a `small` training step on an AVX2-only AMD EPYC: docs/results.md, "bf16 on a
CPU without bf16 instructions").
Linux reports the CPU's instruction sets in /proc/cpuinfo; on other systems the answer is unknown
(None) and nothing is changed or warned about. Likewise /proc/meminfo for the memory available.

A layer-0 utility: it imports nothing from forethought.
"""

from __future__ import annotations

import warnings
from pathlib import Path

CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 flags, and Arm's "Features" entry
CPUINFO = Path("/proc/cpuinfo")
MEMINFO = Path("/proc/meminfo")


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str] | None:
    """The instruction-set flags of the first CPU listed in ``cpuinfo``; None if it cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):  # x86 / Arm
            return frozenset(value.split())
    return None


def native_bf16(device: str = "cpu", cpuinfo: Path = CPUINFO) -> bool | None:
    """Whether ``device`` ("cpu", "cuda", "cuda:1", ...) has bf16 arithmetic; None when unknown."""
    kind = str(device).split(":")[0]
    if kind == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind != "cpu":
        return None
    flags = cpu_flags(cpuinfo)
    return None if flags is None else bool(flags & CPU_BF16_FLAGS)


def warn_if_emulated_bf16(device: str, option: str = "--bf16") -> bool:
    """Warn when ``device`` is known to emulate bf16; returns whether it warned."""
    if native_bf16(device) is not False:
        return False
    why = "torch.cuda.is_bf16_supported() is False" if str(device).startswith("cuda") else \
        f"no avx512_bf16, amx_bf16 or bf16 in {CPUINFO}"
    warnings.warn(f"{option}: this {device} has no bfloat16 instructions ({why}), so bf16 is emulated and runs "
                  f"several times slower than float32 here; drop {option}", stacklevel=3)
    return True


def available_memory_bytes(meminfo: Path = MEMINFO) -> int | None:
    """Memory the kernel can hand out now (Linux ``MemAvailable``), or None where unknown."""
    try:
        with meminfo.open() as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
