"""Diagnostic codes KVS300-KVS449, owned by models, extraction and artifacts (plain data; see kvsl.lang.codes)."""

from __future__ import annotations

from kvsl.lang.codes import Code  # noqa: F401  (used once entries are added)
from kvsl.lang.diagnostics import Severity  # noqa: F401

RUNTIME_CODES: tuple["Code", ...] = ()
