"""Diagnostic codes KVS450-KVS499, owned by `kvsl run` and steering (plain data; see kvsl.lang.codes)."""

from __future__ import annotations

from kvsl.lang.codes import Code  # noqa: F401  (used once entries are added)
from kvsl.lang.diagnostics import Severity  # noqa: F401

RUN_CODES: tuple["Code", ...] = ()
