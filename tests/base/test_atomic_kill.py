"""`private_dir`: a folder a killed process was filling (a model conversion, an offload
folder) is removed by the next caller for the same name, and only a dead process's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from kvsl.base.atomic import _prefix, private_dir


def test_a_killed_processes_folder_is_removed_by_the_next_caller(tmp_path: Path) -> None:
    target = tmp_path / "models" / "smollm2-abc"
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom kvsl.base.atomic import private_dir\n"
         "folder = private_dir(sys.argv[1])\n(folder / 'model.safetensors').write_bytes(b'half')\n"
         "print(folder.name, flush=True)\ntime.sleep(60)\n", str(target)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        orphan = target.parent / child.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert (orphan / "model.safetensors").exists()  # what a kill leaves
    live = target.parent / f"{_prefix(target, os.getpid())}keep.tmp"
    other_host = target.parent / f".{target.name}.elsewhere-{child.pid}.x.tmp"
    other_name = target.parent / f".other.{_prefix(target, child.pid)[1:]}x.tmp"
    for folder in (live, other_host, other_name):
        folder.mkdir()
    mine = private_dir(target)
    assert mine.is_dir() and not list(mine.iterdir()) and not target.exists()
    assert not orphan.exists()
    assert live.is_dir() and other_host.is_dir() and other_name.is_dir()
    # The next caller keeps this (live) process's folder.
    private_dir(target)
    assert mine.is_dir()
