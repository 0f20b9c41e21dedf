"""Regenerate the golden diagnostics: `python tests/regen_golden.py` (from the repo root).

For every front-end code KVSnnn there is a fixture under tests/fixtures/diagnostics/:

- `KVSnnn.kvs` (a file, or for KVS002 a directory): compiled with `compile_spec`;
- `KVSnnn/` with a `command` file: `check PATH...` (check_paths), `compile PATH`
  (compile_spec), `explain CODE` (the `kvsl explain` usage error), `write` (KVS019,
  the output on a full disk) or `stdin [PATH]` (`kvsl check -` with that file's bytes on
  standard input, or nothing), paths relative to that directory; without a `command` file the directory is checked as a whole.

Three codes need a condition a committed file cannot hold: KVS001 (unreadable: reading is
made to fail with EACCES, since root can read any file), KVS005 (too large: the limit
is lowered to 64 bytes instead of committing a megabyte) and KVS023 (a folder too large
to walk: the limit is lowered to 2 folders).

The outputs are tests/golden/KVSnnn.txt (human, no colour) and KVSnnn.json. The golden
test (tests/lang/test_golden.py) calls `produce` and compares; golden files are never
edited by hand.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path("tests/fixtures/diagnostics")
GOLDEN = Path("tests/golden")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kvsl.lang import check_paths, compile_spec  # noqa: E402
from kvsl.lang.codes import CODES  # noqa: E402
from kvsl.lang.diagnostics import Diagnostic  # noqa: E402
from kvsl.lang.render import render_diagnostics  # noqa: E402


def frontend_codes() -> list[str]:
    """The codes that come from a spec (KVS0xx-KVS2xx): each has a fixture."""
    return [code for code in CODES if code[3] in "012"]


@contextmanager
def _condition(code: str, path: Path) -> Iterator[None]:
    if code == "KVS001":
        real = os.open

        def unreadable(name: str, *args: object, **kwargs: object) -> int:
            if os.path.exists(name) and os.path.samefile(name, path):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(name))
            return real(name, *args, **kwargs)  # type: ignore[arg-type]

        with mock.patch.object(os, "open", unreadable):
            yield
    elif code == "KVS005":
        with mock.patch("kvsl.lang.reading.MAX_SPEC_BYTES", 64):
            yield
    elif code == "KVS023":  # too many folders: 2 rather than committing 20,001
        with mock.patch("kvsl.lang.walk.MAX_WALK_FOLDERS", 2):
            yield
    else:
        yield


def fixture_path(code: str) -> Path:
    for candidate in (FIXTURES / f"{code}.kvs", FIXTURES / code):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no fixture for {code} in {FIXTURES}")


def produce(code: str) -> list[Diagnostic]:
    """The diagnostics of one code's fixture (run from the repository root)."""
    path = fixture_path(code)
    with _condition(code, path):
        if path.suffix == ".kvs":
            return compile_spec(str(path))[1]
        command = path / "command"
        if not command.exists():
            return check_paths([str(path)])
        verb, *args = command.read_text(encoding="utf-8").split()
        if verb == "check":
            return check_paths([str(path / arg) for arg in args])
        if verb == "compile":
            return compile_spec(str(path / args[0]))[1]
        if verb == "write":  # the output is a full disk (a condition, not a file)
            from kvsl.cli.output import output_error

            return output_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))).diagnostics
        if verb == "stdin":  # `kvsl check -`, the file's bytes (or nothing) on stdin
            import io

            from kvsl.lang.reading import read_stdin

            data = (path / args[0]).read_bytes() if args else b""
            return check_paths(["-"], read_stdin(io.BytesIO(data)))
        if verb == "explain":
            from kvsl.cli.lang_commands import unknown_code_diagnostic

            return [unknown_code_diagnostic(args[0])]
        raise ValueError(f"{command}: unknown verb {verb!r}")


def render_pair(code: str) -> tuple[str, str]:
    """(human, json) golden text of one code."""
    diagnostics = produce(code)
    human = render_diagnostics(diagnostics, format="human", color=False) + "\n"
    data = render_diagnostics(diagnostics, format="json") + "\n"
    return human, data


def main() -> None:
    os.chdir(ROOT)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    expected = set()
    for code in frontend_codes():
        human, data = render_pair(code)
        for suffix, text in ((".txt", human), (".json", data)):
            target = GOLDEN / f"{code}{suffix}"
            expected.add(target)
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                target.write_text(text, encoding="utf-8")
                print(f"wrote {target}")
    for stale in sorted(set(GOLDEN.glob("KVS*")) - expected):
        if stale.suffix in (".txt", ".json") and stale.stem[3] in "012":
            stale.unlink()
            print(f"removed {stale}")


if __name__ == "__main__":
    main()
