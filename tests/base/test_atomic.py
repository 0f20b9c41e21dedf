"""`kvsl.base.atomic.atomic_path`: complete or absent, never a stray temporary, permissions kept."""

from __future__ import annotations

import os
import stat

import pytest

from kvsl.base.atomic import atomic_path


def test_success_replaces_the_file_and_leaves_nothing_else(tmp_path) -> None:
    target = tmp_path / "a.json"
    target.write_text("old")
    with atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary != target
        temporary.write_text("new")
        assert target.read_text() == "old"  # untouched until the block succeeds
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path, error) -> None:
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(error), atomic_path(target, fsync=True) as temporary:
        temporary.write_text("half")
        raise error()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_permissions_of_the_replaced_file_are_kept(tmp_path) -> None:
    target = tmp_path / "spec.kvs"
    target.write_text("x")
    os.chmod(target, 0o640)
    with atomic_path(target) as temporary:
        temporary.write_text("y")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_new_file_gets_the_usual_permissions_not_private_ones(tmp_path) -> None:
    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "new.json") as temporary:
            temporary.write_text("{}")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644


def test_a_writer_that_recreates_the_temporary_still_gives_the_usual_permissions(tmp_path) -> None:
    # safetensors' save_file replaces the file at the path it is given; the mode must be
    # set on whatever file is there when the block ends.
    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "new.bin") as temporary:
            temporary.unlink()
            fd = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
            os.write(fd, b"x")
            os.close(fd)
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o644


# --- what is not a regular file is never replaced -----------------------------------------
# `kvsl traces import --force --out /dev/null` (as root) replaced the null device with a
# regular file; a FIFO was replaced the same way, and `kvsl fmt` on a symlinked spec wrote
# the new text over the link. A FIFO stands for every special file here (tests create no
# devices).


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_before_the_block_and_left_as_it_is(tmp_path) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    ran = False
    with pytest.raises(OSError, match="not a regular file"), atomic_path(fifo):
        ran = True
    assert not ran and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.fifo"]


def test_a_folder_is_refused_before_the_block(tmp_path) -> None:
    with pytest.raises(IsADirectoryError), atomic_path(tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_symlink_is_written_through(tmp_path) -> None:
    real = tmp_path / "real" / "spec.kvs"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.kvs"
    link.symlink_to(real)
    with atomic_path(link) as temporary:
        assert temporary.parent == real.parent  # beside the file it replaces: one rename
        temporary.write_text("new")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(p.name for p in real.parent.iterdir()) == ["spec.kvs"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path) -> None:
    """SIGKILL leaves the temporary file beside the target (no `finally` runs); the next
    write of that target removes it, and only it: a live writer's file, another host's
    and other files stay."""
    import os
    import signal
    import subprocess
    import sys

    from kvsl.base.atomic import _prefix, atomic_path

    target = tmp_path / "artifact.safetensors"
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom kvsl.base.atomic import atomic_path\n"
         "with atomic_path(sys.argv[1]) as t:\n    t.write_bytes(b'half')\n"
         "    print(t.name, flush=True)\n    time.sleep(60)\n", str(target)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    orphan = tmp_path / child.stdout.readline().strip()  # type: ignore[union-attr]
    assert orphan.exists()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert orphan.exists() and not target.exists()  # what a kill leaves

    live = tmp_path / f"{_prefix(target, os.getpid())}keep.tmp"
    other_host = tmp_path / f".{target.name}.elsewhere-{child.pid}.x.tmp"
    unrelated = tmp_path / f".{target.name}.notes"
    for path in (live, other_host, unrelated):
        path.write_text("x")
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert not orphan.exists()
    assert live.exists() and other_host.exists() and unrelated.exists()
