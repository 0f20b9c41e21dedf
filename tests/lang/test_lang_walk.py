"""A folder named to `kvsl check` / `kvsl fmt` is walked within bounds (kvsl.lang.walk).

`kvsl fmt FOLDER` must never rewrite a file outside FOLDER (a linked `.kvs` whose target
lies elsewhere once was), must not wander into virtual environments or `node_modules`,
and must stop, changing nothing, when a folder is too large or is `/`
(KVS023, exit 2). Every test works in its own temporary folder: never point these
commands at a real folder (`/` is only listed, never formatted).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.lang import spec_files

MESSY = 'style "x" {description="d"}\n'
TIDY = 'style "x" {\n  description = "d"\n}\n'
runner = CliRunner()


def _messy(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MESSY, encoding="utf-8")
    return path


def test_fmt_of_a_folder_never_writes_through_a_link_out_of_it(tmp_path: Path) -> None:
    outside = _messy(tmp_path / "outside" / "theirs.kvs")
    named = tmp_path / "named"
    mine = _messy(named / "mine.kvs")
    (named / "out.kvs").symlink_to(outside)
    (named / "in.kvs").symlink_to(mine)  # a link that stays inside is formatted
    result = runner.invoke(app, ["fmt", str(named)])
    assert result.exit_code == 0, result.output
    assert outside.read_text(encoding="utf-8") == MESSY
    assert (named / "out.kvs").is_symlink() and (named / "in.kvs").is_symlink()
    assert mine.read_text(encoding="utf-8") == TIDY
    assert "out.kvs" not in result.output
    # reading changes nothing: `kvsl check` of the folder still covers the linked spec
    assert str(named / "out.kvs") in spec_files([str(named)])[0]
    assert str(named / "out.kvs") not in spec_files([str(named)], writing=True)[0]
    # named directly, the link is the user's choice: written through, the link kept
    assert runner.invoke(app, ["fmt", str(named / "out.kvs")]).exit_code == 0
    assert outside.read_text(encoding="utf-8") == TIDY and (named / "out.kvs").is_symlink()


def test_a_linked_folder_is_not_entered(tmp_path: Path) -> None:
    outside = _messy(tmp_path / "elsewhere" / "theirs.kvs")
    named = tmp_path / "named"
    _messy(named / "mine.kvs")
    (named / "linked").symlink_to(outside.parent, target_is_directory=True)
    assert spec_files([str(named)]) == ([str(named / "mine.kvs")], [])


@pytest.mark.parametrize(
    "skipped", [".hidden", "node_modules", "__pycache__", "lib/site-packages", "venv", "env"]
)
def test_tool_folders_and_virtualenvs_are_skipped(tmp_path: Path, skipped: str) -> None:
    kept = _messy(tmp_path / "specs" / "a.kvs")
    hidden = _messy(tmp_path / skipped / "b.kvs")
    if skipped in ("venv", "env"):  # any name: a virtual environment has a pyvenv.cfg
        (tmp_path / skipped / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    files, diagnostics = spec_files([str(tmp_path)])
    assert files == [str(kept)] and diagnostics == []
    runner.invoke(app, ["fmt", str(tmp_path)])
    assert hidden.read_text(encoding="utf-8") == MESSY
    assert kept.read_text(encoding="utf-8") == TIDY
    # named itself, a skipped folder is walked: the user asked for it
    assert spec_files([str(tmp_path / skipped)])[0] == [str(hidden)]


def test_a_folder_too_large_stops_with_kvs023_and_formats_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kvsl.lang.walk.MAX_WALK_FOLDERS", 3)
    specs = [_messy(tmp_path / f"d{i}" / "s.kvs") for i in range(5)]
    beside = _messy(tmp_path.parent / f"{tmp_path.name}-beside.kvs")
    try:
        result = runner.invoke(app, ["fmt", str(tmp_path), str(beside)])
        assert result.exit_code == 2, result.output
        assert "error[KVS023]" in result.output and "Traceback" not in result.output
        assert all(s.read_text(encoding="utf-8") == MESSY for s in specs)
        assert beside.read_text(encoding="utf-8") == TIDY  # what was named beside it is done
        checked = runner.invoke(app, ["check", str(tmp_path)])
        assert checked.exit_code == 2 and "error[KVS023]" in checked.output
    finally:
        beside.unlink()


def test_the_root_is_never_walked_and_a_small_home_is_walked_as_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kvsl fmt /` by mistake would reformat every checkout on the machine (test fixtures
    included): KVS023, exit 2, nothing read or written; `/` is only listed here, read-only.
    A home folder is bounded by the folder cap alone: tests and containers often make a
    project folder the home (HOME=tmp), and `kvsl check .` there must work."""
    files, diagnostics = spec_files(["/"])
    assert files == [] and [d.code for d in diagnostics] == ["KVS023"]
    assert "`/` is the file system's root" in diagnostics[0].message
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = _messy(tmp_path / "project" / "s.kvs")
    result = runner.invoke(app, ["fmt", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert spec.read_text(encoding="utf-8") == TIDY
