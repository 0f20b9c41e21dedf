"""What every model-running command decides first: threads, device, processes, precision.

`prepare(...)` is the one call `kvsl build`, `run`, `eval` (and `tune`, `serve`) make before
loading a model; `RunSetup.line()` is their first status line, so a user sees what was
picked and why:

    2 threads (2 cores available), fp32 (auto: CPU without AMX), cpu, one process
"""

from __future__ import annotations

from dataclasses import dataclass

from kvsl.base.threads import ThreadChoice
from kvsl.engine.distributed import DistEnv, init_distributed, local_device
from kvsl.engine.precision import PRECISIONS, PrecisionChoice, choose_precision
from kvsl.engine.threads import configure_threads
from kvsl.lang.diagnostics import KvslError


@dataclass(frozen=True)
class RunSetup:
    threads: ThreadChoice
    precision: PrecisionChoice
    device: str | None  # None: the CPU (as `resolve_device` returns it)
    dist: DistEnv
    device_map: str | None = None

    def line(self, precision: PrecisionChoice | None = None) -> str:
        """`2 threads (2 cores available), fp32 (auto: CPU without AMX), cpu, one process`;
        `precision` shows another choice (a build's, where the spec may decide)."""
        where = self.device or "cpu"
        if self.device_map:
            where = f"device map `{self.device_map}`"
        return f"{self.threads}, {precision or self.precision}, {where}, {self.dist}"


def check_precision(precision: str, code: str = "KVS314") -> None:
    """A usage error for a `--precision` that is not auto, fp32 or bf16."""
    if precision not in PRECISIONS:
        raise KvslError.usage(
            code,
            f"`--precision {precision}` is not one of {', '.join(PRECISIONS)}",
            help="`auto` picks bf16 where the device runs it fast, fp32 elsewhere",
        )


def prepare(
    *,
    threads: int | None = None,
    device: str | None = "auto",
    precision: str = "auto",
    device_map: str | None = None,
) -> RunSetup:
    """Set torch's threads, check the device (KVS309), join the process group if launched
    as several processes, and pick the precision. Nothing is loaded yet.
    """
    from kvsl.engine.models import resolve_device

    check_precision(precision)
    choice = configure_threads(threads)
    where = None if device_map else resolve_device(device)
    env = init_distributed(where)
    where = local_device(where, env)
    chosen = choose_precision(precision, where)
    return RunSetup(choice, chosen, where, env, device_map)
