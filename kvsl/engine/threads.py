"""Apply the thread rule (`kvsl.base.threads`) to torch: one call for every command.

`kvsl build`, `run`, `eval` (and `tune`, `serve`) call `configure_threads(--threads)` before
loading a model and print the returned choice in their first status line.
"""

from __future__ import annotations

import contextlib

import torch

from kvsl.base.threads import ThreadChoice, ThreadsError, choose_threads
from kvsl.lang.diagnostics import KvslError


def configure_threads(requested: int | None = None) -> ThreadChoice:
    """Set torch's intra-op threads by the rule; KVS313 for a count below 1.

    >>> str(configure_threads(1))
    '1 thread (--threads)'
    """
    try:
        choice = choose_threads(requested)
    except ThreadsError as err:
        raise KvslError.usage(
            "KVS313",
            str(err),
            help="pass `--threads N` with N ≥ 1, or unset KVSL_THREADS for the default",
        ) from None
    torch.set_num_threads(choice.count)
    # Only possible before the first parallel region; later calls keep torch's pool.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(choice.count)
    return choice
