"""Calibration on a dev set: `kvsl tune` as a library (`run_tune`), so a server can call it.

Modules: `grid` (the request, the settings searched, the dev-split guard), `search`
(successive halving, the objective), `report` (JSON, markdown, plot), `write` (the chosen
values into the spec through the formatter), `run` (the whole command).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TuneRequest", "run_tune"]


def __getattr__(name: str) -> Any:
    # Lazy: importing kvsl.tune does not import torch or the eval.
    if name == "TuneRequest":
        from kvsl.tune.grid import TuneRequest

        return TuneRequest
    if name == "run_tune":
        from kvsl.tune.run import run_tune

        return run_tune
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
