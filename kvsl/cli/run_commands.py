"""`kvsl` commands for the run wing (run) (registered on kvsl.cli.app)."""

from __future__ import annotations

from kvsl.cli import app  # noqa: F401
