"""`--precision auto`: bf16 where the device runs it fast, fp32 elsewhere (docs/scale.md).

The rule, measured:
- CUDA: bf16 when `torch.cuda.is_bf16_supported()` (Ampere and later), else fp32;
- CPU: bf16 only with AMX (`amx_bf16` in /proc/cpuinfo, or torch's CPU capability naming
  AMX). A CPU with avx512_bf16 but no AMX stays fp32: on this project's build machine
  (avx512_bf16, torch capability AVX512) bf16 extraction took 228 s against 38 s in fp32
  for 40 pairs, and a side-by-side forward pass showed no gain (docs/scale.md);
- anything else (MPS, unknown): fp32.

An explicit `fp32` or `bf16` is used as given. The detection functions are separate so
tests can replace them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")
# CPU flags that make bf16 matrix products fast enough to pay for the casts around them.
FAST_BF16_CPU_FLAGS = frozenset({"amx_bf16"})


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision used and why, e.g. `fp32 (auto: CPU without AMX)`."""

    name: str  # "fp32" | "bf16"
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.name == "bf16" else torch.float32


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def torch_cpu_capability() -> str:
    """torch's CPU kernel level: "DEFAULT", "AVX2", "AVX512", "AMX", ... ("" if unknown)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return ""


def cuda_bf16_supported(device: torch.device) -> bool:
    try:
        with torch.cuda.device(device):
            return bool(torch.cuda.is_bf16_supported())
    except (AssertionError, RuntimeError):
        return False


def choose_precision(requested: str, device: str | torch.device | None) -> PrecisionChoice:
    """The precision for `requested` ("auto", "fp32", "bf16") on `device` (None: the CPU).

    >>> str(choose_precision("fp32", None))
    'fp32 (--precision fp32)'
    """
    if requested != "auto":
        return PrecisionChoice(requested, f"--precision {requested}")
    where = torch.device(device) if device is not None else torch.device("cpu")
    if where.type == "cuda":
        if cuda_bf16_supported(where):
            return PrecisionChoice("bf16", "auto: CUDA device with bf16")
        return PrecisionChoice("fp32", "auto: CUDA device without bf16")
    if where.type == "cpu":
        if FAST_BF16_CPU_FLAGS & cpu_flags() or "AMX" in torch_cpu_capability().upper():
            return PrecisionChoice("bf16", "auto: CPU with AMX")
        return PrecisionChoice("fp32", "auto: CPU without AMX")
    return PrecisionChoice("fp32", f"auto: {where.type} device")
