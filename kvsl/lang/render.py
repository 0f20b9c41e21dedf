"""Rendering diagnostics (placeholder: the front end replaces this with the full
human / JSON / GitHub / SARIF renderers; keep the `render_diagnostics` signature)."""

from __future__ import annotations

import json

from kvsl.lang.diagnostics import Diagnostic


def render_diagnostics(
    diagnostics: list[Diagnostic], *, format: str = "human", color: bool = False
) -> str:
    if format == "json":
        return json.dumps([d.to_dict() for d in diagnostics], indent=2, sort_keys=True)
    lines = []
    for d in diagnostics:
        lines.append(f"{d.severity.value}[{d.code}]: {d.message}")
        lines.append(f" --> {d.span.path}:{d.span.line}:{d.span.column}")
        if d.help:
            lines.append(f"  = help: {d.help}")
    return "\n".join(lines)
