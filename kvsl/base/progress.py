"""The one progress display every long-running kvsl command uses (rich, on stderr)."""

from __future__ import annotations

from typing import Any


def progress_display(console: Any = None, *extra_columns: str, transient: bool = False) -> Any:
    """A `rich.progress.Progress`: description, bar, done/total, extra text, elapsed, ETA.

    `extra_columns` are rich `TextColumn` templates shown after the count, e.g.
    `"pairs"` or `"{task.fields[written]} written"`. Imported lazily: rich is not paid for
    by commands that never show progress (`kvsl check`). A `transient` display is erased
    when it ends (`kvsl run`, whose output follows it).
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}", markup=False),  # a style or file name is text
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(template) for template in extra_columns),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True, markup=False),
        transient=transient,
    )
