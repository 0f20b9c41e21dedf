"""Data parallelism under `torchrun` or `accelerate launch`: who am I, split, reduce, gather.

Both launchers start one process per device and describe it in standard environment
variables: `RANK` (0..WORLD_SIZE-1 over all nodes), `WORLD_SIZE`, `LOCAL_RANK` (the index on
this node) and `LOCAL_WORLD_SIZE`, plus `MASTER_ADDR`/`MASTER_PORT` for the rendezvous.
kvsl reads them and initialises torch.distributed only when `WORLD_SIZE` > 1: a single
process never touches torch.distributed, so nothing changes for it.

Backends: NCCL when the process steers on CUDA, gloo on the CPU. What is split and what is
reduced (docs/scale.md):
- extraction: contrast pairs go round-robin to ranks; each rank sums its pairs'
  (positive − negative) keys and values; the sums and the pair count are all-reduced, so
  the mean is exact whatever the split (float32 summation order aside, ≤ 1e-5);
- eval and tune: the batches of each method's pending questions go round-robin to ranks
  (whole batches, so greedy generations are the same tokens as in one process); each rank
  appends to its own shard of the results cache, rank 0 merges the shards and writes the
  report; CAA's residual directions are summed like the cache vectors.

Commands that run as one process (`kvsl run`, `serve`, `teach`) call `refuse_launcher`
first (KVS317), since every rank would do the same work and write the same outputs.

torch is imported inside the functions that reduce or gather, so reading the launcher's
variables (and refusing) costs no torch import.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from kvsl.lang.diagnostics import KvslError
from kvsl.lang.source import Span

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    """This process's place among the launched processes (rank 0 of 1 without a launcher)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.world_size}" if self.active else "one process"


def _env_error(message: str) -> KvslError:
    return KvslError.one(
        "KVS315",
        message,
        Span.whole_file("<environment>"),
        help="launch with `torchrun --nproc-per-node N` or `accelerate launch`, which set "
        "RANK, WORLD_SIZE and LOCAL_RANK together; or unset them for one process",
    )


def dist_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    """Read RANK / WORLD_SIZE / LOCAL_RANK; KVS315 when they are set but inconsistent.

    >>> dist_env({})
    DistEnv(rank=0, world_size=1, local_rank=0)
    >>> dist_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}).is_main
    False
    """
    env = os.environ if environ is None else environ
    if not env.get("WORLD_SIZE"):
        if env.get("RANK") not in (None, "", "0"):
            raise _env_error(f"RANK={env['RANK']} is set but WORLD_SIZE is not")
        return DistEnv()
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise _env_error(
            "RANK, WORLD_SIZE and LOCAL_RANK must be integers, not "
            f"{env.get('RANK')!r}, {env.get('WORLD_SIZE')!r}, {env.get('LOCAL_RANK')!r}"
        ) from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise _env_error(f"RANK={rank} does not fit WORLD_SIZE={world}")
    return DistEnv(rank, world, local)


def refuse_launcher(command: str, environ: Mapping[str, str] | None = None) -> None:
    """KVS317 when a one-process command is started by a launcher as several processes.

    Checked before anything loads or joins a process group, so every rank stops at once
    (exit 2) instead of each doing the same work and writing the same outputs.
    """
    env = dist_env(environ)
    if env.active:
        raise KvslError.usage(
            "KVS317",
            f"`kvsl {command}` runs as one process, but a launcher started {env.world_size} "
            f"(WORLD_SIZE={env.world_size}): every process would do the same work and write "
            "the same output",
            help=f"run `kvsl {command} ...` without torchrun / accelerate launch (for a model "
            "larger than one device: `--device-map auto`); `kvsl build`, `eval` and `tune` "
            "are the commands that split their work across processes",
        )


def init_distributed(device: str | None = None) -> DistEnv:
    """Join the process group when launched as several processes; a no-op for one.

    `device` is where this process computes (None: the CPU): NCCL for CUDA, else gloo.
    Idempotent: build and eval in one process join once.
    """
    env = dist_env()
    if not env.active:
        return env
    import torch.distributed as dist

    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            raise _env_error("WORLD_SIZE > 1 but MASTER_ADDR / MASTER_PORT are not set")
        backend = "nccl" if device is not None and device.startswith("cuda") else "gloo"
        try:
            dist.init_process_group(backend=backend)
        except (RuntimeError, ValueError) as err:
            raise _env_error(f"could not join the process group ({backend}): {err}") from None
        atexit.register(leave_group)
    return env


def leave_group() -> None:
    """Destroy the process group, if this process joined one (run at exit).

    Left to the interpreter's teardown, gloo's threads can be destroyed while still
    joinable, and the process then aborts ("terminate called without an active exception",
    SIGABRT) after its work is done: a rank that finishes before rank 0 writes its
    report failed a whole torchrun run that way. No barrier first: on an error exit the
    other ranks may be inside a different collective, and a barrier would wait for them.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: str | None, env: DistEnv | None = None) -> str | None:
    """`cuda` → `cuda:LOCAL_RANK` under a launcher (one GPU per process); others unchanged."""
    env = env or dist_env()
    if env.active and device == "cuda":
        return f"cuda:{env.local_rank}"
    return device


def _group_ready() -> bool:
    if not dist_env().active:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def shard(items: Sequence[T], offset: int = 0) -> list[T]:
    """This rank's share: the items whose `offset + index` is `rank` modulo the world size
    (all of them in one process). `offset` continues a round-robin over several lists.

    >>> shard([1, 2, 3])  # one process
    [1, 2, 3]
    """
    env = dist_env()
    if not _group_ready():
        return list(items)
    return list(items[(env.rank - offset) % env.world_size :: env.world_size])


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over ranks (the tensor itself in one process), on its device."""
    if not _group_ready():
        return tensor
    import torch.distributed as dist

    work = tensor
    if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
        work = tensor.to(f"cuda:{dist_env().local_rank}")
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(tensor.device)


def all_gather(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order ([value] in one process)."""
    if not _group_ready():
        return [value]
    import torch.distributed as dist

    gathered: list[Any] = [None] * dist_env().world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier() -> None:
    """Wait for every rank (nothing in one process)."""
    if _group_ready():
        import torch.distributed as dist

        dist.barrier()


def is_main() -> bool:
    """Whether this process writes reports and artifacts (rank 0, or the only process)."""
    return dist_env().is_main
