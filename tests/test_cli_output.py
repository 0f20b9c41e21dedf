"""A report that cannot be written ends with KVS019 and exit 3, never a traceback, for the
commands that print through rich or `print` rather than `kvsl.cli.output.write`
(`kvsl styles`, `kvsl inspect`); the front-end commands are in tests/lang/test_lang_hostile.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "specs" / "vectors" / "step-by-step.safetensors"


def kvsl_to(stdout: object, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kvsl", *args],
        env=env,
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize(
    "args",
    [("styles",), ("styles", "--json"), ("inspect", str(SHIPPED)), ("inspect", "--json", str(SHIPPED))],
    ids=" ".join,
)
def test_a_full_disk_is_kvs019_and_exit_3(args: tuple[str, ...]) -> None:
    with open("/dev/full", "w") as full:
        result = kvsl_to(full, *args)
    assert result.returncode == 3, result.stderr
    assert b"error[KVS019]: cannot write the output" in result.stderr
    assert b"Traceback" not in result.stderr


def test_the_same_commands_print_normally() -> None:
    result = kvsl_to(subprocess.PIPE, "styles")
    assert result.returncode == 0 and b"step-by-step" in result.stdout
