"""Diagnostic codes KVS3xx-KVS4xx, owned by the engine (plain data; see kvsl.lang.codes)."""

from __future__ import annotations

from kvsl.lang.codes import Code  # noqa: F401  (used once entries are added)
from kvsl.lang.diagnostics import Severity  # noqa: F401

RUNTIME_CODES: tuple["Code", ...] = ()
