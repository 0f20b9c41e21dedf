"""One entry of the diagnostic-code registry (`kvsl.lang.codes` merges them).

Its own module so that the phase tables (`codes_frontend.py`, `codes_runtime.py`, ...) and
the registry that merges them import it one way: the tables import this, the registry
imports the tables, and nothing imports the registry back.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvsl.lang.diagnostics import Severity


@dataclass(frozen=True)
class Code:
    code: str  # "KVS104"
    title: str  # short, lowercase: "unknown key"
    severity: Severity  # the default severity this code is reported with
    explanation: str  # a paragraph: what it means and why kvsl reports it
    bad: str  # an example that triggers it (spec text, or a command line for run-time codes)
    good: str  # the same example, fixed
