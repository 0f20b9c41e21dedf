"""Diagnostics: what every phase of kvsl reports to the user.

A diagnostic has a code (see `kvsl.lang.codes`), a severity, a message (lowercase, no
trailing period, names in backticks), a primary span, optional secondary labels and help.
Back-end phases raise `KvslError` carrying diagnostics; the CLI renders them and exits
with the matching `ExitCode` instead of showing a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from kvsl.lang.source import Span


class ExitCode(IntEnum):
    CLEAN = 0  # nothing to report (warnings allowed unless --warnings-as-errors)
    ERRORS = 1  # the input has errors
    USAGE = 2  # the command line is wrong
    ENVIRONMENT = 3  # environment or run-time failure (model missing, server down, ...)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Label:
    """A secondary span with its own short message ("first defined here")."""

    span: Span
    message: str


@dataclass(frozen=True)
class Diagnostic:
    code: str  # e.g. "KVS104"
    severity: Severity
    message: str
    span: Span
    labels: tuple[Label, ...] = ()
    help: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The one serialisation that every renderer (human, JSON, GitHub, SARIF) reads."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.span.path,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "labels": [
                {
                    "message": label.message,
                    "path": label.span.path,
                    "line": label.span.line,
                    "column": label.span.column,
                }
                for label in self.labels
            ],
            "help": self.help,
        }


@dataclass
class KvslError(Exception):
    """A user-facing failure outside the checker (model, artifact, teacher, run time).

    Raised by the back end; the CLI catches it, renders `diagnostics` and exits with
    `exit_code`. Never raised for programming errors.
    """

    diagnostics: list[Diagnostic] = field(default_factory=list)
    exit_code: ExitCode = ExitCode.ENVIRONMENT

    def __str__(self) -> str:
        return "; ".join(f"{d.code}: {d.message}" for d in self.diagnostics)
