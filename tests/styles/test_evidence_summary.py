"""The built-in styles' held-out figures, as `kvsl styles` and `kvsl run` show them.

`scripts/style_evidence.py --summary specs/vectors/evidence.json` writes them beside the
shipped vectors from the same run that writes docs/style_evidence.md; the first test keeps
the two in step, the others check that the figures reach users and that a broken file
never breaks a command.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kvsl.base import locations
from kvsl.builtin import EVIDENCE_FILE, builtin_evidence, evidence_note
from kvsl.cli import app
from kvsl.styles import BUILTIN_STYLES

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "specs" / "vectors" / EVIDENCE_FILE
DOC = ROOT / "docs" / "style_evidence.md"


def _goal_rows() -> dict[str, tuple[float, float, bool]]:
    """style → (steered, plain, all goals met), from the doc's goals table."""
    rows = {}
    goals = DOC.read_text(encoding="utf-8").split("## Goals", 1)[1]
    for line in goals.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[0] in BUILTIN_STYLES:
            steered, plain = (float(re.findall(r"[\d.]+", c)[0]) for c in cells[1:3])
            rows[cells[0]] = (steered, plain, cells[6] == "✓")
    return rows


def test_the_summary_matches_the_evidence_page() -> None:
    figures = builtin_evidence()
    rows = _goal_rows()
    assert set(figures) == set(rows) == set(BUILTIN_STYLES)
    for style, (steered, plain, met) in rows.items():
        assert round(figures[style].steered, 2) == steered, style
        assert round(figures[style].plain, 2) == plain, style
        assert figures[style].goals_met is met, style
    page = DOC.read_text(encoding="utf-8")
    assert f"{figures['step-by-step'].questions} held-out questions" in page
    assert "--summary specs/vectors/evidence.json" in page  # the same run wrote both


def test_kvsl_styles_shows_each_styles_held_out_figures() -> None:
    result = CliRunner().invoke(app, ["styles"])
    assert result.exit_code == 0, result.output
    for name, figures in builtin_evidence().items():
        assert f"adherence {figures.plain:.2f} plain → {figures.steered:.2f} steered" in result.output
        if not figures.goals_met:
            block = result.output.split(name, 1)[1].split("\n\n", 1)[0]
            assert "below the 0.6 goal" in block
    listed = json.loads(CliRunner().invoke(app, ["styles", "--json"]).output)
    assert all(row["held_out"]["model"] == "smollm2-135m" for row in listed)


def test_run_notes_a_builtin_style_that_misses_its_goals() -> None:
    folder = ROOT / "specs"
    for name, info in BUILTIN_STYLES.items():
        note = evidence_note(folder / info.spec_file)
        assert (note is None) == builtin_evidence()[name].goals_met, name
        if note is not None:
            assert f"`{name}`" in note and "docs/style_evidence.md" in note


def test_a_copy_of_a_builtin_spec_gets_no_note(tmp_path: Path) -> None:
    missing = min(BUILTIN_STYLES.values(), key=lambda i: builtin_evidence()[i.name].steered)
    copy = tmp_path / missing.spec_file
    shutil.copy(ROOT / "specs" / missing.spec_file, copy)
    assert evidence_note(ROOT / "specs" / missing.spec_file) is not None
    assert evidence_note(copy) is None  # a user's spec: the shipped figures do not describe it


@pytest.mark.parametrize(
    "text",
    ["", "{not json", "[]", '{"model": 1}', '{"model": "m", "questions": 4, "styles": {"x": 3}}'],
)
def test_a_broken_summary_shows_nothing_and_breaks_nothing(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = tmp_path / "pkg"
    shutil.copytree(ROOT / "specs", packaged / "specs")
    shutil.copytree(ROOT / "templates", packaged / "templates")
    (packaged / "specs" / "vectors" / EVIDENCE_FILE).write_text(text, encoding="utf-8")
    monkeypatch.setattr(locations, "PACKAGED_DIR", packaged)
    assert builtin_evidence() == {}
    result = CliRunner().invoke(app, ["styles"])
    assert result.exit_code == 0 and "held out" not in result.output
    assert evidence_note(packaged / "specs" / "annotated_deduction.kvs") is None
