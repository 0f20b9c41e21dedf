"""Diagnostics: what every phase of kvsl reports to the user.

A diagnostic has a code (see `kvsl.lang.codes`), a severity, a message (lowercase, no
trailing period, names in backticks), a primary span, optional secondary labels and help.
Back-end phases raise `KvslError` carrying diagnostics; the CLI renders them and exits
with the matching `ExitCode` instead of showing a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Self

from kvsl.lang.source import Span


class ExitCode(IntEnum):
    CLEAN = 0  # nothing to report (warnings allowed unless --warnings-as-errors)
    ERRORS = 1  # the input has errors
    USAGE = 2  # the command line is wrong
    ENVIRONMENT = 3  # environment or run-time failure (model missing, server down, ...)


# Where flags and arguments are reported: there is no file to point into.
COMMAND_LINE = Span.whole_file("<command line>")


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

    @classmethod
    def one(
        cls,
        code: str,
        message: str,
        span: Span,
        *,
        help: str | None = None,
        labels: tuple[Label, ...] = (),
        exit_code: ExitCode = ExitCode.ERRORS,
    ) -> Self:
        """The error of a single `Severity.ERROR` diagnostic, the usual way to fail.

        Unlike the bare constructor (whose default is `ENVIRONMENT`), the exit code
        defaults to `ERRORS`: most failures are something wrong in what the user gave;
        pass `exit_code=ExitCode.USAGE` or `ExitCode.ENVIRONMENT` when it is not.

        >>> err = KvslError.one("KVS400", "artifact `a.st` does not exist",
        ...                     Span.whole_file("a.st"), help="build it with `kvsl build SPEC`")
        >>> err.exit_code, err.diagnostics[0].severity, str(err)
        (<ExitCode.ERRORS: 1>, <Severity.ERROR: 'error'>, 'KVS400: artifact `a.st` does not exist')
        """
        diagnostic = Diagnostic(code, Severity.ERROR, message, span, labels=labels, help=help)
        return cls([diagnostic], exit_code)

    @classmethod
    def usage(cls, code: str, message: str, *, help: str | None = None) -> Self:
        """A bad command-line flag or argument: located at `<command line>`, exit code 2.

        >>> KvslError.usage("KVS610", "unknown eval method `x`").exit_code
        <ExitCode.USAGE: 2>
        """
        return cls.one(code, message, COMMAND_LINE, help=help, exit_code=ExitCode.USAGE)

    def __str__(self) -> str:
        return "; ".join(f"{d.code}: {d.message}" for d in self.diagnostics)
