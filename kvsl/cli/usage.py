"""Command-line parse errors as coded diagnostics.

Typer (through Click) checks every flag's type and choices before a command runs; left to
itself it prints its own error box, with no diagnostic code. `KvslGroup` is the app's
command group: it lets Click parse as usual and renders what Click refuses (an unknown
option, `--limit abc`, `check --format xml`, a missing argument) as KVS318, exit 2, like
every other usage error. Everything else (`--help`, exit codes, Ctrl-C) is Typer's own.
"""

from __future__ import annotations

import sys
from typing import Any

from typer import Abort
from typer.core import TyperGroup

try:  # Typer 0.2x vendors Click as typer._click; older Typer uses Click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click import exceptions as click_errors  # type: ignore[no-redef]

from kvsl.cli.output import UNWRITABLE, escape_undecodable, path_error
from kvsl.lang.diagnostics import COMMAND_LINE, ExitCode, KvslError
from kvsl.lang.render import render_diagnostics


class KvslGroup(TyperGroup):
    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        escape_undecodable()
        try:
            # Without standalone mode Typer returns the code of any `typer.Exit` (how every
            # command reports a KvslError, and `--help`) instead of exiting, and raises
            # parse errors and Abort.
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as err:
            # `kvsl` or `kvsl traces` alone: the help, as Typer prints it.
            err.show()
            sys.exit(err.exit_code)
        except click_errors.UsageError as err:
            print(render_usage_error(err), file=sys.stderr)
            sys.exit(int(ExitCode.USAGE))
        except Abort:
            print("Aborted!", file=sys.stderr)
            sys.exit(1)
        except OSError as err:
            if err.filename is None or err.errno in UNWRITABLE:
                raise  # not about a path; a full disk is `guarded`'s KVS019
            refused = path_error(err)
            print(render_diagnostics(refused.diagnostics), file=sys.stderr)
            sys.exit(int(refused.exit_code))
        sys.exit(code if isinstance(code, int) else 0)


def render_usage_error(err: click_errors.UsageError) -> str:
    """KVS318 for what Click refused, with the command whose `--help` lists the options."""
    command = err.ctx.command_path if err.ctx is not None else "kvsl"
    diagnostic = KvslError.one(
        "KVS318",
        err.format_message(),
        COMMAND_LINE,
        help=f"`{command} --help` lists its arguments and options",
        exit_code=ExitCode.USAGE,
    ).diagnostics[0]
    return render_diagnostics([diagnostic], format="human", color=sys.stderr.isatty())
