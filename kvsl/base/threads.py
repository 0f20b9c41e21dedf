"""How many CPU threads a kvsl process uses: the rule, without torch (see docs/scale.md).

torch starts one thread per core it sees, whatever else runs on them. Two kvsl processes on
two shared cores (a build beside a run) each took both and slowed each other about 20×.
The rule, first match wins:

1. `--threads N` on the command line;
2. the environment variable `KVSL_THREADS=N`;
3. the cores this process may run on (`os.sched_getaffinity`, which honours `taskset`,
   cgroups' cpusets and SLURM's `--cpus-per-task`), divided among the processes a launcher
   started on this node (`LOCAL_WORLD_SIZE`, set by torchrun and accelerate), at least 1.

`kvsl.engine.threads.configure_threads` applies the choice to torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kvsl.base.plurals import counted

THREADS_ENV = "KVSL_THREADS"


class ThreadsError(ValueError):
    """A thread count that is not a positive integer (the caller reports it as KVS313)."""


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count and why it was chosen, e.g. `2 threads (2 cores available)`."""

    count: int
    reason: str

    def __str__(self) -> str:
        return f"{counted(self.count, 'thread')} ({self.reason})"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity; `os.cpu_count()` where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


# More threads than any machine kvsl runs on has cores: torch would try to start them all
# (and a count past 64 bits overflowed inside torch, a traceback).
MAX_THREADS = 1024


def _positive(text: str, source: str) -> int:
    """
    >>> _positive("99999999999999999999", "KVSL_THREADS")
    Traceback (most recent call last):
    kvsl.base.threads.ThreadsError: KVSL_THREADS must be a positive integer up to 1024, not `99999999999999999999`
    """
    try:
        count = int(text.strip()) if len(text) <= 32 else 0
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_THREADS:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ThreadsError(
            f"{source} must be a positive integer up to {MAX_THREADS}, not `{shown}`"
        )
    return count


def choose_threads(
    requested: int | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cores: int | None = None,
) -> ThreadChoice:
    """The thread count by the rule above; raises ThreadsError for a count below 1.

    >>> choose_threads(3).count
    3
    >>> str(choose_threads(environ={"LOCAL_WORLD_SIZE": "2"}, cores=8))
    '4 threads (8 cores available, shared by 2 processes on this node)'
    """
    env = os.environ if environ is None else environ
    if requested is not None:
        return ThreadChoice(_positive(str(requested), "`--threads`"), "--threads")
    if env.get(THREADS_ENV, "").strip():
        return ThreadChoice(_positive(env[THREADS_ENV], THREADS_ENV), THREADS_ENV)
    cores = available_cores() if cores is None else cores
    try:
        local = max(1, int(env.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    if local == 1:
        return ThreadChoice(max(1, cores), f"{counted(cores, 'core')} available")
    return ThreadChoice(
        max(1, cores // local),
        f"{counted(cores, 'core')} available, shared by "
        f"{counted(local, 'process', 'processes')} on this node",
    )
