"""End to end: pygls's client drives the real `kvsl lsp` process over stdio.

Each test starts a server in a temporary folder, opens real files, and ends with
`shutdown` + `exit` (the session helper asserts the process exits with status 0).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from lsp_support import VALID, run, session, write_spec
from lsprotocol import types as lsp
from pygls.uris import from_fs_path, to_fs_path

from kvsl.builtin import builtin_spec, spec_description
from kvsl.lang.fmt import format_text
from kvsl.lang.models import EMBEDDED_MODEL_LAYERS
from kvsl.lang.schema import BLOCK_KEYS
from kvsl.styles import BUILTIN_STYLES


def apply(text: str, edits: list[lsp.TextEdit]) -> str:
    """Apply LSP edits (UTF-16 positions) to a text, last first."""
    from kvsl.lsp.positions import LineIndex

    index = LineIndex(text)
    spans = sorted(
        (
            index.offset(e.range.start.line, e.range.start.character),
            index.offset(e.range.end.line, e.range.end.character),
            e.new_text,
        )
        for e in edits
    )
    for start, end, new in reversed(spans):
        text = text[:start] + new + text[end:]
    return text


def position_of(text: str, needle: str, shift: int = 0) -> tuple[int, int]:
    """0-based line and UTF-16 character of `needle` (plus `shift` characters) in text."""
    offset = text.index(needle) + shift
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return line, len(text[start:offset].encode("utf-16-le")) // 2


def test_initialize_advertises_the_features(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with session(tmp_path) as client:
            caps = client.capabilities
            assert client.server_info.name == "kvsl"
            assert caps.hover_provider and caps.definition_provider
            assert caps.document_formatting_provider and caps.code_action_provider
            assert '"' in caps.completion_provider.trigger_characters
            assert "kvsl.explain" in caps.execute_command_provider.commands

    run(scenario())


def test_an_error_appears_on_change_and_clears_when_fixed(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            assert list(await client.wait_for(uri, lambda d: True)) == []
            line, character = position_of(VALID, "pairs")
            client.edit(uri, 2, (line, character), (line, character + 5), "pairz")
            found = await client.wait_for(uri, lambda d: len(d) > 0)
            codes = sorted(d.code for d in found)
            assert codes == ["KVS104"]  # not also "missing `pairs`" (KVS106)
            unknown = next(d for d in found if d.code == "KVS104")
            assert unknown.severity == lsp.DiagnosticSeverity.Error
            assert unknown.range == lsp.Range(
                lsp.Position(line, character), lsp.Position(line, character + 5)
            )
            assert "did you mean `pairs`?" in unknown.message
            href = unknown.code_description.href
            assert href.startswith("file://")
            assert Path(to_fs_path(href)) == tmp_path / ".cache" / "explain" / "KVS104.md"
            explained = Path(to_fs_path(href)).read_text(encoding="utf-8")
            assert explained.startswith("# KVS104: unknown key")
            client.edit(uri, 3, (line, character), (line, character + 5), "pairs")
            assert list(await client.wait_for(uri, lambda d: len(d) == 0)) == []
            assert client.publications[-1].version == 3

    run(scenario())


def test_a_second_span_becomes_related_information(tmp_path: Path) -> None:
    text = VALID.replace("    shots = 1\n", "    shots = 1\n    pairs = 5\n")
    spec = write_spec(tmp_path, text)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            found = await client.wait_for(uri, lambda d: len(d) > 0)
            duplicate = next(d for d in found if d.code == "KVS105")
            assert duplicate.range.start == lsp.Position(*position_of(text, "pairs = 5"))
            (related,) = duplicate.related_information
            assert related.message == "first set here" and related.location.uri == uri
            assert related.location.range.start == lsp.Position(*position_of(text, "pairs = 4"))

    run(scenario())


def test_warnings_keep_their_severity(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, VALID.replace("  contrast {", "  steer { key = 1 }\n  contrast {"))

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            found = await client.wait_for(uri, lambda d: len(d) > 0)
            assert [(d.code, d.severity) for d in found] == [
                ("KVS123", lsp.DiagnosticSeverity.Warning)
            ]

    run(scenario())


def test_errors_in_an_extended_file_are_published_there_and_withdrawn(tmp_path: Path) -> None:
    base = tmp_path / "base.kvs"
    base.write_text('base "b" {\n  steer { valeu = 4 }\n}\n', encoding="utf-8")
    text = VALID.replace("  description", '  extends = "base.kvs"\n  description')
    spec = write_spec(tmp_path, text)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            base_uri = from_fs_path(str(base))
            found = await client.wait_for(base_uri, lambda d: len(d) > 0)
            assert [d.code for d in found] == ["KVS104"]
            assert found[0].range.start == lsp.Position(1, 10)
            assert list(await client.wait_for(uri, lambda d: True)) == []
            client.replace(uri, VALID, 2)  # no more `extends`: the base's errors go
            assert list(await client.wait_for(base_uri, lambda d: len(d) == 0)) == []

    run(scenario())


def test_an_unsaved_base_is_checked_from_the_editor(tmp_path: Path) -> None:
    base = tmp_path / "base.kvs"
    base.write_text('base "b" {\n  contrast { pairs = 4 }\n}\n', encoding="utf-8")
    text = VALID.replace("    pairs = 4\n", "").replace(
        "  description", '  extends = "base.kvs"\n  description'
    )
    spec = write_spec(tmp_path, text)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            spec_uri = client.open(spec)
            base_uri = client.open(base)
            assert list(await client.wait_for(spec_uri, lambda d: True)) == []
            # Edit the base without saving: the spec that extends it is checked again,
            # against the editor's text, and its error points back into the base.
            client.edit(base_uri, 2, (1, 21), (1, 22), "1")
            (found,) = await client.wait_for(spec_uri, lambda d: len(d) > 0)
            assert found.code == "KVS110"
            assert found.range.start == lsp.Position(*position_of(text, "1\n"))
            (related,) = found.related_information
            assert related.location.uri == base_uri and related.message == "`pairs` is 1 here"
            assert related.location.range.start == lsp.Position(1, 21)

    run(scenario())


def test_a_file_created_on_disk_clears_its_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    (tmp_path / "traces.jsonl").unlink()

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            found = await client.wait_for(uri, lambda d: len(d) > 0)
            assert [d.code for d in found] == ["KVS115"]
            write_spec(tmp_path)  # writes the trace file again
            change = lsp.FileEvent(
                from_fs_path(str(tmp_path / "traces.jsonl")), lsp.FileChangeType.Created
            )
            client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams([change]))
            assert list(await client.wait_for(uri, lambda d: len(d) == 0)) == []

    run(scenario())


def test_positions_count_utf16_units_on_non_ascii_lines(tmp_path: Path) -> None:
    text = 'style "tiny" {\n  description = "😀 é 漢字"  pairz = 1\n' + VALID.split("\n", 2)[2]
    spec = write_spec(tmp_path, text)

    async def scenario(encodings: list[str] | None, units: str) -> None:
        async with session(tmp_path, encodings=encodings) as client:
            uri = client.open(spec)
            found = await client.wait_for(uri, lambda d: len(d) > 0)
            (unknown,) = [d for d in found if d.code == "KVS104"]
            line = text.split("\n")[1]
            before = line[: line.index("pairz")]
            width = len(before.encode(units)) // (2 if units == "utf-16-le" else 4)
            assert unknown.range == lsp.Range(lsp.Position(1, width), lsp.Position(1, width + 5))
            hover = await client.hover(uri, 1, width + 2)
            assert hover is not None and "KVS104" in hover.contents.value
            assert hover.range == unknown.range

    run(scenario(None, "utf-16-le"))
    run(scenario(["utf-32"], "utf-32-le"))


def test_hover_reads_the_checkers_schema(tmp_path: Path) -> None:
    text = VALID.replace("    shots = 1\n", "    shots = 1\n    select = nearest\n")
    text = text.replace("  contrast {", "  steer {\n    layers = [1..4, -1]\n  }\n  contrast {")
    spec = write_spec(tmp_path, text)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            pairs = await client.hover(uri, *position_of(text, "pairs", 1))
            assert BLOCK_KEYS["contrast"]["pairs"].doc in pairs.contents.value
            assert "integer" in pairs.contents.value and "required" in pairs.contents.value
            select = await client.hover(uri, *position_of(text, "nearest", 1))
            value = select.contents.value
            assert "`random`, `nearest`" in value and "default: `random`" in value
            count = EMBEDDED_MODEL_LAYERS["smollm2-135m"]
            whole = await client.hover(uri, *position_of(text, "[1..4"))
            assert f"({count} layers" in whole.contents.value
            assert f"layers 1..4, {count - 1} (5 layers)" in whole.contents.value
            last = await client.hover(uri, *position_of(text, "-1]", 1))
            assert f"layers {count - 1} (1 layer)" in last.contents.value

    run(scenario())


def test_hover_layers_of_a_local_model_from_its_config(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"num_hidden_layers": 4}), encoding="utf-8")
    text = VALID.replace(
        "  description", '  model = "./model"\n  steer { layers = [1..] }\n  description'
    )
    spec = write_spec(tmp_path, text)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            found = await client.hover(uri, *position_of(text, "1..]"))
            assert "on `./model` (4 layers, 0..3): layers 1..3 (3 layers)" in found.contents.value

    run(scenario())


def test_hover_a_style_name_shows_its_description(tmp_path: Path) -> None:
    name = next(iter(BUILTIN_STYLES))
    description = spec_description(builtin_spec(name))
    text = VALID.replace('"tiny"', f'"{name}"')
    spec = write_spec(tmp_path, text)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            builtin = await client.hover(uri, 0, 8)
            assert description in builtin.contents.value
            client.replace(uri, VALID, 2)
            own = await client.hover(uri, 0, 8)
            assert "A tiny style." in own.contents.value

    run(scenario())


def labels(items: object) -> list[str]:
    if isinstance(items, lsp.CompletionList):
        items = items.items
    return [item.label for item in items]  # type: ignore[attr-defined]


def test_completion_keys_values_styles_and_paths(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "mine.j2").write_text("{{ question }}", encoding="utf-8")
    (tmp_path / "other.kvs").write_text(VALID, encoding="utf-8")
    spec = write_spec(tmp_path)

    async def complete(client, uri: str, text: str, line: int, character: int) -> list[str]:
        client.replace(uri, text, client.version)
        client.version += 1
        params = lsp.CompletionParams(
            lsp.TextDocumentIdentifier(uri), lsp.Position(line, character)
        )
        return labels(await client.request(lsp.TEXT_DOCUMENT_COMPLETION, params))

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            client.version = 2
            in_contrast = VALID.replace("    pairs = 4\n", "    \n    pairs = 4\n")
            found = await complete(client, uri, in_contrast, 4, 4)
            assert {"pairs", "shots", "select", "seed"} <= set(found) and "layers" not in found
            in_style = VALID.replace("  contrast {", "  \n  contrast {")
            found = await complete(client, uri, in_style, 2, 2)
            assert {"description", "model", "steer", "generate"} <= set(found)
            assert "pairs" not in found
            for key, block, expected in [
                ("select", "contrast", ["random", "nearest"]),
                ("mode", "generate", ["greedy", "sample"]),
                ("position", "extract", ["last_token"]),
                ("precision", "extract", ["fp32", "bf16"]),
            ]:
                text = VALID.replace(
                    "  contrast {", f"  {block} {{\n    {key} = \n  }}\n  contrast {{"
                )
                found = await complete(client, uri, text, 3, 7 + len(key))
                assert found == expected, key
            partial = 'style "st'
            assert set(await complete(client, uri, partial, 0, len(partial))) == set(BUILTIN_STYLES)
            text = 'style "s" {\n  teacher {\n    template = "templates/'
            assert await complete(client, uri, text, 2, 27) == ["mine.j2"]
            text = 'style "s" {\n  extends = "'
            found = await complete(client, uri, text, 1, 13)
            assert found[:2] == ["other.kvs", "tiny.kvs"] and "templates/" in found
            text = 'style "s" {\n  contrast {\n    traces = "tr'
            assert await complete(client, uri, text, 2, 16) == ["traces.jsonl"]

    run(scenario())


def test_formatting_goes_through_kvsl_fmt_and_refuses_broken_files(tmp_path: Path) -> None:
    messy = 'style "tiny"{description="A tiny style."   # why\ncontrast{traces="traces.jsonl" pairs=4 shots=1}}'
    spec = write_spec(tmp_path, messy)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            params = lsp.DocumentFormattingParams(
                lsp.TextDocumentIdentifier(uri),
                lsp.FormattingOptions(tab_size=2, insert_spaces=True),
            )
            edits = await client.request(lsp.TEXT_DOCUMENT_FORMATTING, params)
            result = apply(messy, edits)
            assert result == format_text(messy)[0] and "# why" in result
            client.replace(uri, result, 2)
            assert not await client.request(lsp.TEXT_DOCUMENT_FORMATTING, params)
            client.replace(uri, 'style "tiny" { contrast { pairs = }', 3)
            assert not await client.request(lsp.TEXT_DOCUMENT_FORMATTING, params)

    run(scenario())


def test_definition_opens_extended_template_and_trace_files(tmp_path: Path) -> None:
    (tmp_path / "base.kvs").write_text('base "b" {\n}\n', encoding="utf-8")
    (tmp_path / "t.j2").write_text("{{ question }}", encoding="utf-8")
    text = (
        'style "tiny" {\n  extends = "base.kvs"\n  description = "A tiny style."\n'
        '  teacher {\n    model = "m"\n    template = "t.j2"\n  }\n'
        '  contrast {\n    traces = "traces.jsonl"\n    pairs = 4\n    shots = 1\n  }\n}\n'
    )
    spec = write_spec(tmp_path, text)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            for needle, name in [
                ("base.kvs", "base.kvs"),
                ("t.j2", "t.j2"),
                ("traces.jsonl", "traces.jsonl"),
            ]:
                params = lsp.DefinitionParams(
                    lsp.TextDocumentIdentifier(uri), lsp.Position(*position_of(text, needle, 1))
                )
                found = await client.request(lsp.TEXT_DOCUMENT_DEFINITION, params)
                assert found.uri == from_fs_path(str(tmp_path / name))
            params = lsp.DefinitionParams(lsp.TextDocumentIdentifier(uri), lsp.Position(9, 6))
            assert await client.request(lsp.TEXT_DOCUMENT_DEFINITION, params) is None

    run(scenario())


async def quick_fixes(client, uri: str, diagnostic: lsp.Diagnostic) -> list[lsp.CodeAction]:
    params = lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), diagnostic.range, lsp.CodeActionContext([diagnostic])
    )
    return await client.request(lsp.TEXT_DOCUMENT_CODE_ACTION, params)


def test_code_actions_fix_a_misspelt_key_and_add_a_missing_one(tmp_path: Path) -> None:
    text = VALID.replace("pairs", "pairz").replace("    shots = 1\n", "")
    spec = write_spec(tmp_path, text)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            found = await client.wait_for(uri, lambda d: len(d) > 0)
            unknown = next(d for d in found if d.code == "KVS104")
            (action,) = await quick_fixes(client, uri, unknown)
            assert (
                action.title == "replace with `pairs`"
                and action.kind == lsp.CodeActionKind.QuickFix
            )
            fixed = apply(text, action.edit.changes[uri])
            assert fixed == VALID.replace("    shots = 1\n", "")
            client.replace(uri, fixed, 2)
            found = await client.wait_for(uri, lambda d: [x.code for x in d] == ["KVS106"])
            (action,) = await quick_fixes(client, uri, found[0])
            assert action.title == "add `shots`"
            fixed = apply(fixed, action.edit.changes[uri])
            assert "    pairs = 4\n    shots = 2\n  }" in fixed
            client.replace(uri, fixed, 3)
            assert list(await client.wait_for(uri, lambda d: len(d) == 0)) == []

    run(scenario())


def test_explain_command_returns_the_registry_text(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with session(tmp_path) as client:
            params = lsp.ExecuteCommandParams(command="kvsl.explain", arguments=["kvs104"])
            text = await client.request(lsp.WORKSPACE_EXECUTE_COMMAND, params)
            assert text.startswith("# KVS104: unknown key")

    run(scenario())


GARBAGE = [
    "",
    "{{{{",
    "}}}}",
    'style "',
    '"""',
    "\0\0\0",
    "\ud800 lone surrogate",
    "[" * 200,
    "style " * 300,
    'style "s" { steer { layers = [1..-1, 99..] at [] { value = 1e999 } } }',
    'style "s" { teacher { template = """{% for %}""" } }',
    'style "s" { extends = "/" }',
    'style "s" { extends = "tiny.kvs" }',
    "😀" * 50,
    "x" * 200_000,
]


def test_the_server_survives_garbage_and_partial_edits(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    rng = random.Random(13)
    pieces = ['"', "{", "}", "[", "]", "=", "..", "\n", "#", "😀", "é", "\\", "pairs", "style", " "]

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            await client.wait_for(uri, lambda d: True)
            version = 1
            for garbage in GARBAGE:
                version += 1
                client.replace(uri, garbage, version)
                await poke(client, uri, rng)
            for _ in range(150):  # random incremental edits at random (even invalid) places
                version += 1
                line, char = rng.randint(0, 12), rng.randint(0, 40)
                end = (line + rng.randint(0, 2), rng.randint(0, 40))
                client.edit(uri, version, (line, char), end, "".join(rng.choices(pieces, k=3)))
                if version % 10 == 0:
                    await poke(client, uri, rng)
            version += 1
            client.replace(uri, VALID, version)
            assert list(await client.wait_for(uri, lambda d: len(d) == 0)) == []
            hover = await client.hover(uri, 4, 5)
            assert hover is not None and "N, the number of contrast pairs" in hover.contents.value
            assert not [log for log in client.logs if "internal error" in log], client.logs[:1]

    run(scenario())


async def poke(client, uri: str, rng: random.Random) -> None:
    """Every request at a random place: each must answer (a result or an empty one)."""
    position = lsp.Position(rng.randint(0, 5), rng.randint(0, 30))
    doc = lsp.TextDocumentIdentifier(uri)
    await client.hover(uri, position.line, position.character)
    await client.request(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionParams(doc, position))
    await client.request(lsp.TEXT_DOCUMENT_DEFINITION, lsp.DefinitionParams(doc, position))
    options = lsp.FormattingOptions(tab_size=2, insert_spaces=True)
    await client.request(lsp.TEXT_DOCUMENT_FORMATTING, lsp.DocumentFormattingParams(doc, options))
    whole = lsp.Range(lsp.Position(0, 0), lsp.Position(99, 0))
    await client.request(
        lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionParams(doc, whole, lsp.CodeActionContext([]))
    )
    await client.request(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, lsp.SemanticTokensParams(doc))


def test_document_symbols_outline_blocks_and_keys(tmp_path: Path) -> None:
    text = VALID.replace(
        "  contrast {", "  steer {\n    at [1..4] { value = 4 }\n  }\n  contrast {"
    )
    spec = write_spec(tmp_path, text)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            uri = client.open(spec)
            params = lsp.DocumentSymbolParams(lsp.TextDocumentIdentifier(uri))
            (style,) = await client.request(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL, params)
            assert (style.name, style.detail, style.kind) == (
                "style",
                '"tiny"',
                lsp.SymbolKind.Namespace,
            )
            assert [c.name for c in style.children] == ["description", "steer", "contrast"]
            steer = style.children[1]
            (at,) = steer.children
            assert (at.name, at.detail, at.children[0].name) == ("at", "[1..4]", "value")
            pairs = style.children[2].children[1]
            assert (pairs.name, pairs.detail, pairs.kind) == ("pairs", "4", lsp.SymbolKind.Property)
            assert pairs.selection_range.start == lsp.Position(*position_of(text, "pairs"))
            client.replace(uri, "style {", 2)
            assert not await client.request(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL, params)

    run(scenario())


def decode_semantic_tokens(data: list[int], legend: lsp.SemanticTokensLegend) -> list[tuple]:
    """LSP's relative encoding back to (line, start, length, type, modifiers)."""
    found = []
    line = start = 0
    for i in range(0, len(data), 5):
        delta_line, delta_start, length, kind, bits = data[i : i + 5]
        line += delta_line
        start = start + delta_start if delta_line == 0 else delta_start
        modifiers = [m for b, m in enumerate(legend.token_modifiers) if bits >> b & 1]
        found.append((line, start, length, legend.token_types[kind], modifiers))
    return found


def test_semantic_tokens_colour_blocks_keys_values_and_comments(tmp_path: Path) -> None:
    text = (
        '# a tiny style 😀\nstyle "tiny" {\n  description = "A tiny style é😀."\n'
        '  contrast {\n    traces = "traces.jsonl"\n    pairs = 4  # four\n    shots = 1\n'
        '    select = random\n  }\n  steer { at [1..4] { value = 4.5 } }\n}\n'
    )
    spec = write_spec(tmp_path, text)

    async def scenario() -> None:
        async with session(tmp_path) as client:
            legend = client.capabilities.semantic_tokens_provider.legend
            assert client.capabilities.semantic_tokens_provider.full
            uri = client.open(spec)
            params = lsp.SemanticTokensParams(lsp.TextDocumentIdentifier(uri))
            result = await client.request(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, params)
            found = decode_semantic_tokens(result.data, legend)
            assert found[:6] == [
                (0, 0, 17, "comment", []),  # the emoji is two UTF-16 units
                (1, 0, 5, "keyword", []),
                (1, 6, 6, "type", ["declaration"]),  # the style's name
                (2, 2, 11, "property", []),
                (2, 14, 1, "operator", []),
                (2, 16, 19, "string", []),  # "A tiny style é😀." in UTF-16 units
            ]
            assert (5, 4, 5, "property", []) in found  # pairs
            assert (5, 12, 1, "number", []) in found
            assert (5, 15, 6, "comment", []) in found
            assert (7, 13, 6, "enumMember", []) in found  # random
            assert (9, 2, 5, "keyword", []) in found and (9, 10, 2, "keyword", []) in found
            assert (9, 15, 2, "operator", []) in found  # ..
            assert (9, 30, 3, "number", []) in found
            # a broken edit still colours what it can, and never fails
            client.replace(uri, 'style "s" {\n  pairs: 4\n  "unterminated\n', 2)
            result = await client.request(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, params)
            found = decode_semantic_tokens(result.data, legend)
            assert [t[3] for t in found] == ["keyword", "type", "keyword", "number"]

    run(scenario())
