"""Names, paths and file lines kvsl prints are text, never rich markup.

rich reads `[...]` in a printed string as markup: `[bold]` vanished from the output and
`[/x]` (a closing tag that matches nothing) raised MarkupError, a traceback after the work
was done. A folder named `runs[/old]`, a trace line quoting `[/INST]`, a style described
as `[draft]` all reached a console. Every console kvsl makes now prints text as text
(`markup=False`; the build's coloured words are `rich.text.Text`).
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kvsl.base.progress import progress_display
from kvsl.cli import app

GOOD = {"question": "2+2?", "steps": ["2 and 2 make 4."], "answer": "4"}


def test_traces_import_prints_brackets_in_paths_and_lines_as_they_are(tmp_path) -> None:
    folder = tmp_path / "runs[" / "old]"  # the path reads `.../runs[/old]/...`
    folder.mkdir(parents=True)
    source = folder / "t.jsonl"
    bad = json.dumps({"question": "[/INST] [bold]why?", "steps": []})
    source.write_text(bad + "\n" + json.dumps(GOOD) + "\n", encoding="utf-8")
    out = folder / "out[bold].jsonl"
    result = CliRunner().invoke(app, ["traces", "import", str(source), "--out", str(out),
                                      "--skip-bad"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "[/INST] [bold]why?" in result.stderr  # the bad line, quoted under KVS521
    assert f"wrote 1 trace to {out}" in result.stderr.replace("\n", "")
    assert out.exists()


def test_a_progress_description_is_text() -> None:
    from rich.console import Console

    console = Console(record=True, width=200, force_terminal=False)
    with progress_display(console) as display:
        display.add_task("building `s[/x]` [bold]", total=1, completed=1)
    assert "building `s[/x]` [bold]" in console.export_text()
