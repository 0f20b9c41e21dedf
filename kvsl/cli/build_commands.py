"""`kvsl` commands for the build wing (build, inspect) (registered on kvsl.cli.app)."""

from __future__ import annotations

from kvsl.cli import app  # noqa: F401
