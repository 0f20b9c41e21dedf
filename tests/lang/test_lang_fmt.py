"""The formatter: canonical, idempotent, comment-preserving, meaning-preserving."""

from __future__ import annotations

from pathlib import Path

import pytest
from lang_support import FIXTURE_SPECS, SPECS

from kvsl.lang.fmt import escape_string, format_text
from kvsl.lang.parser import decode_source, parse_text
from kvsl.lang.syntax import without_spans


def _parseable(paths: list[Path]) -> list[Path]:
    keep = []
    for path in paths:
        source, _ = decode_source(str(path), path.read_bytes())
        if source is not None and format_text(source.text)[0] is not None:
            keep.append(path)
    return keep


FORMATTABLE = _parseable(SPECS + FIXTURE_SPECS)


@pytest.mark.parametrize("path", FORMATTABLE, ids=lambda p: p.name)
def test_idempotent_and_round_trips(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once, _ = format_text(text)
    assert once is not None
    twice, _ = format_text(once)
    assert twice == once
    before, _ = parse_text(text)
    after, _ = parse_text(once)
    assert without_spans(after) == without_spans(before)
    comments = [c.text.rstrip() for c in before.comments]  # type: ignore[union-attr]
    assert [c.text for c in after.comments] == comments  # type: ignore[union-attr]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_repository_specs_are_formatted(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert format_text(text)[0] == text, f"run `kvsl fmt {path}`"


def test_canonical_layout() -> None:
    messy = (
        '# lead\n\n\n\nstyle   "s"{description="d"   # why\n'
        "steer{layers=[1..,  3]\n\n\n at [1..2]{value=4 key=0}\n"
        "  at [-1] {\n    # inner\n    value = 2\n  }\n}\n  empty {  }\n} # end"
    )
    expected = (
        "# lead\n\n"
        'style "s" {\n'
        '  description = "d"  # why\n'
        "  steer {\n"
        "    layers = [1.., 3]\n\n"
        "    at [1..2] { value = 4  key = 0 }\n"
        "    at [-1] {\n"
        "      # inner\n"
        "      value = 2\n"
        "    }\n"
        "  }\n"
        "  empty {}\n"
        "}  # end\n"
    )
    assert format_text(messy)[0] == expected


def test_long_lists_break() -> None:
    items = ", ".join(f'"marker number {i}"' for i in range(8))
    text = format_text(f'style "s" {{ markers = [{items}] }}')[0]
    assert text is not None
    assert '  markers = [\n    "marker number 0",\n' in text and '    "marker number 7",\n  ]\n' in text
    assert format_text(text)[0] == text


def test_comment_inside_a_list_is_kept() -> None:
    text = 'style "s" {\n  x = [1,  # one\n    2]\n}\n'
    once = format_text(text)[0]
    assert once == 'style "s" {\n  x = [1, 2]\n  # one\n}\n'
    assert format_text(once)[0] == once


@pytest.mark.parametrize("value", ["", "plain", 'q"uote', "back\\slash", "tab\tnew\nline", "\x01\x7f\u2028", "é😀"])
def test_escape_round_trip(value: str) -> None:
    spec, diagnostics = parse_text(f"x = {escape_string(value)}")
    assert diagnostics == [] and spec is not None
    assert spec.items[0].value.value == value  # type: ignore[union-attr]


def test_syntax_errors_are_not_formatted() -> None:
    text, diagnostics = format_text('style "s" {')
    assert text is None and diagnostics[0].code == "KVS013"


def test_empty_file() -> None:
    assert format_text("")[0] == ""
    assert format_text("# only a comment")[0] == "# only a comment\n"
