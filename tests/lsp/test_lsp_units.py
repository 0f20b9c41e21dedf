"""The server's parts without a client: positions, cursor contexts, schema views, fixes,
the TextMate grammar, the CLI entry and the import boundary."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lsp_support import ROOT, VALID, server_env

from kvsl.lang.codes import CODES
from kvsl.lang.schema import BLOCK_KEYS, OVERRIDE_KEYS, STYLE_KEYS
from kvsl.lang.source import SourceFile
from kvsl.lsp.analysis import analyze_document
from kvsl.lsp.cursor import completion_context, open_blocks
from kvsl.lsp.features import fixes
from kvsl.lsp.positions import LineIndex, span_range
from kvsl.lsp.schema import _defaults, key_info, keys_of, required_keys

GRAMMAR = ROOT / "editors" / "vscode" / "syntaxes" / "kvs.tmLanguage.json"


# --- positions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "units"),
    [("a = 1", 4), ("é = 1", 4), ("😀 = 1", 5), ("漢字😀😀 = 1", 9)],
)
def test_columns_become_utf16_units(line: str, units: int) -> None:
    text = f"x\n{line}\n"
    source = SourceFile("a.kvs", text)
    offset = text.index("1")
    index = LineIndex(text)
    assert index.position(offset) == (1, units)
    assert index.offset(1, units) == offset
    start, end = span_range(source.span(offset, offset + 1), index.line_text)
    assert start == (1, units) and end == (1, units + 1)


def test_positions_past_the_end_are_clamped() -> None:
    index = LineIndex("ab\ncd")
    assert index.offset(7, 0) == 5 and index.offset(0, 99) == 2 and index.offset(-1, 0) == 0
    assert index.position(99) == (1, 2)


def test_a_span_without_file_text_uses_its_columns() -> None:
    source = SourceFile("a.kvs", "abc")
    assert span_range(source.span(1, 2), None) == ((0, 1), (0, 2))


# --- cursor ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "what", "blocks", "key", "partial"),
    [
        ('style "s" {\n  con', "key", ["style"], None, "con"),
        (
            'style "s" {\n  steer {\n    at [1..4] {\n      val',
            "key",
            ["style", "steer", "at"],
            None,
            "val",
        ),
        ('style "s" { contrast { select = ne', "value", ["style", "contrast"], "select", "ne"),
        (
            'style "s" {\n  teacher {\n    template = "../te',
            "string",
            ["style", "teacher"],
            "template",
            "../te",
        ),
        (
            'style "s" {\n  # a } and { in a comment\n  steer {\n    ',
            "key",
            ["style", "steer"],
            None,
            "",
        ),
        ('style "s" {\n  description = "{ not a block"\n  ', "key", ["style"], None, ""),
        ('style "s" { steer { layers = [1, ', "value", ["style", "steer"], "layers", ""),
        ('style "ste', "style_name", [], "style", "ste"),
        ('style "s" {\n  x = 1 # pai', "none", ["style"], None, ""),
    ],
)
def test_completion_context(
    text: str, what: str, blocks: list[str], key: str | None, partial: str
) -> None:
    context = completion_context(text, len(text))
    assert (context.what, context.blocks, context.key, context.partial) == (
        what,
        blocks,
        key,
        partial,
    )


def test_open_blocks_ignores_stray_braces() -> None:
    assert open_blocks("}}} style { a {", 15) == ["style", "a"]


# --- schema ----------------------------------------------------------------------------


def test_every_key_has_the_schemas_doc_in_its_hover() -> None:
    tables = {"style": STYLE_KEYS, "at": OVERRIDE_KEYS, **BLOCK_KEYS}
    for block, keys in tables.items():
        assert keys_of(block) is keys
        for key, spec in keys.items():
            info = key_info(block, key)
            assert info is not None and info.spec is spec
            assert spec.doc in info.markdown()


def test_defaults_are_the_lowered_ones() -> None:
    from kvsl.lang.plan import ExtractPlan, GeneratePlan, SteerPlan

    defaults = _defaults()
    assert defaults[("generate", "max_new_tokens")] == str(GeneratePlan().max_new_tokens)
    assert defaults[("extract", "precision")] == ExtractPlan().precision
    assert defaults[("steer", "value")] == f"{SteerPlan().value:g}"
    assert defaults[("steer", "layers")] == "[1..]" and defaults[("generate", "mode")] == "greedy"
    for block, key in defaults:
        assert key in keys_of(block)
    assert required_keys() >= {("contrast", "pairs"), ("style", "description")}
    assert not set(defaults) & required_keys()


# --- fixes -----------------------------------------------------------------------------


def test_a_missing_block_is_added_inside_the_style(tmp_path: Path) -> None:
    path = tmp_path / "s.kvs"
    text = 'style "s" {\n  description = "x"\n}\n'
    analysis = analyze_document(str(path), text)
    (fix,) = [f for f in fixes(analysis) if "contrast" in f.title]
    fixed = text[: fix.start] + fix.new_text + text[fix.end :]
    assert fixed == 'style "s" {\n  description = "x"\n  contrast { pairs = 40  shots = 2 }\n}\n'


def test_a_choice_typo_is_replaced_in_quotes_when_quoted(tmp_path: Path) -> None:
    path = tmp_path / "s.kvs"
    text = VALID.replace("    shots = 1\n", '    shots = 1\n    select = "randm"\n')
    (fix,) = fixes(analyze_document(str(path), text))
    assert text[fix.start : fix.end] == '"randm"' and fix.new_text == '"random"'


# --- TextMate grammar ------------------------------------------------------------------


def _rules(grammar: dict, patterns: list[dict]) -> list[dict]:
    out = []
    for rule in patterns:
        if "include" in rule:
            out += _rules(grammar, [grammar["repository"][rule["include"][1:]]])
        elif "patterns" in rule and "match" not in rule and "begin" not in rule:
            out += _rules(grammar, rule["patterns"])
        else:
            out.append(rule)
    return out


def scopes(line: str) -> list[tuple[str, str]]:
    """(scope, text) of one line, scanned as a TextMate engine would (first match wins)."""
    grammar = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    rules = _rules(grammar, grammar["patterns"])
    found, position = [], 0
    while position < len(line):
        best = None
        for rule in rules:
            match = re.compile(rule.get("match") or rule["begin"]).search(line, position)
            if match and (best is None or match.start() < best[1].start()):
                best = (rule, match)
        if best is None:
            break
        rule, match = best
        if "begin" in rule:
            end = re.compile(rule["end"]).search(line, match.end())
            stop = end.end() if end else len(line)
            found.append((rule["name"], line[match.start() : stop]))
            position = stop
            continue
        if "name" in rule:
            found.append((rule["name"], match.group()))
        for group, capture in rule.get("captures", {}).items():
            if match.group(int(group)) is not None:
                found.append((capture["name"], match.group(int(group))))
        position = max(match.end(), position + 1)
    return found


def test_the_grammar_is_valid_json_with_compilable_patterns() -> None:
    grammar = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    assert grammar["scopeName"] == "source.kvs"
    for rule in _rules(grammar, grammar["patterns"]):
        for key in ("match", "begin", "end"):
            if key in rule:
                re.compile(rule[key])
    package = json.loads((ROOT / "editors" / "vscode" / "package.json").read_text(encoding="utf-8"))
    (contributed,) = package["contributes"]["grammars"]
    assert contributed["scopeName"] == grammar["scopeName"]
    assert (ROOT / "editors" / "vscode" / contributed["path"]).resolve() == GRAMMAR
    json.loads(
        (ROOT / "editors" / "vscode" / "language-configuration.json").read_text(encoding="utf-8")
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("# Shared defaults", [("comment.line.number-sign.kvs", "# Shared defaults")]),
        (
            'style "step-by-step" {',
            [("entity.name.section.kvs", "style"), ("string.quoted.double.kvs", '"step-by-step"')],
        ),
        ("  steer {", [("entity.name.section.kvs", "steer")]),
        (
            "    at [1..4] { value = 4 }",
            [("entity.name.section.kvs", "at"), ("keyword.operator.range.kvs", "..")],
        ),
        (
            "    pairs = 40  # N",
            [
                ("variable.other.property.kvs", "pairs"),
                ("constant.numeric.kvs", "40"),
                ("comment.line.number-sign.kvs", "# N"),
            ],
        ),
        ("    value = -4.5e0", [("constant.numeric.kvs", "-4.5e0")]),
        (
            "    layers = [1..]",
            [("constant.numeric.integer.kvs", "1"), ("keyword.operator.range.kvs", "..")],
        ),
        ('    offset_token = "\\n"', [("string.quoted.double.kvs", '"\\n"')]),
        (
            '    template = """{{ question }}"""',
            [("string.quoted.triple.kvs", '"""{{ question }}"""')],
        ),
        ("    select = random", [("constant.language.kvs", "random")]),
        ('    x = "# not a comment"', [("string.quoted.double.kvs", '"# not a comment"')]),
    ],
)
def test_the_grammar_scopes_sample_lines(line: str, expected: list[tuple[str, str]]) -> None:
    found = scopes(line)
    for item in expected:
        assert item in found, (line, found)
    if "not a comment" in line:
        assert not any(scope.startswith("comment") for scope, _ in found)


def test_every_builtin_spec_line_is_covered_by_the_grammar() -> None:
    for spec in sorted((ROOT / "specs").glob("*.kvs")):
        for line in spec.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.strip().startswith(("}", '"""')):
                assert scopes(line), (spec.name, line)


# --- the command and the import boundary -----------------------------------------------


def test_the_server_imports_no_back_end() -> None:
    code = (
        "import sys\n"
        "import kvsl.lsp, kvsl.lsp.server, kvsl.cli.lsp_fast\n"
        "kvsl.lsp.server.create_server()\n"
        "from kvsl.lsp.schema import _defaults, required_keys; _defaults(); required_keys()\n"
        "heavy = ('torch', 'transformers', 'openai', 'typer', 'kvsl.engine', 'kvsl.eval', 'kvsl.teacher')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=server_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_lsp_wing_imports_only_the_front_end() -> None:
    allowed = ("kvsl.lang", "kvsl.lsp", "kvsl.styles", "kvsl.base", "kvsl.builtin")
    for module in (ROOT / "kvsl" / "lsp").glob("*.py"):
        for name in re.findall(r"^\s*(?:from|import) (kvsl[\w.]*)", module.read_text(), re.M):
            assert name == "kvsl" or name.startswith(allowed), (module.name, name)


def test_kvsl_lsp_help_and_the_code_registry() -> None:
    from typer.testing import CliRunner

    from kvsl.cli import app

    result = CliRunner().invoke(app, ["lsp", "--help"])
    assert result.exit_code == 0 and "--debounce-ms" in result.output
    assert CliRunner().invoke(app, ["lsp", "--debounce-ms", "-1"]).exit_code == 2
    assert CODES["KVS900"].title == "the language server cannot start"


def test_the_fast_path_leaves_odd_command_lines_to_typer() -> None:
    from kvsl.cli.lsp_fast import fast_lsp

    assert fast_lsp(["--help"]) is None
    assert fast_lsp(["--debounce-ms", "x"]) is None
    assert fast_lsp(["--debounce-ms=-1"]) is None
    assert fast_lsp(["--tcp"]) is None


def test_without_pygls_kvsl_lsp_exits_3_with_kvs900() -> None:
    code = (
        "import sys; sys.modules['pygls'] = None; sys.modules['pygls.lsp.server'] = None\n"
        "sys.argv = ['kvsl', 'lsp']\n"
        "from kvsl.cli import main; main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=server_env(), timeout=60
    )
    assert result.returncode == 3
    assert "error[KVS900]" in result.stderr and "Traceback" not in result.stderr


def test_notifications_leave_no_futures_behind() -> None:
    """pygls 2.1 keeps each notification's future forever; KvslProtocol drops it."""
    from kvsl.lsp.server import create_server

    protocol = create_server().protocol

    def generator_handler():  # the shape of pygls's built-in didChange
        yield from ()

    for i in range(100):
        protocol._execute_handler(f"n{i}", generator_handler, protocol._check_handler_result)
    assert protocol._request_futures == {}


def test_layer_counts_without_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kvsl.lsp.schema import model_layers

    def decl_of(model: str):
        text = VALID.replace("  description", f'  model = "{model}"\n  description')
        return analyze_document(str(tmp_path / "s.kvs"), text).decl

    assert model_layers(decl_of("smollm2-135m")) == ("smollm2-135m", 30)
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"text_config": {"num_hidden_layers": 7}}')
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert model_layers(decl_of("org/tiny")) == ("org/tiny", 7)
    assert model_layers(decl_of("org/absent")) is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    assert model_layers(decl_of("./broken")) is None


def test_bounds_and_choices_in_key_hover() -> None:
    top_p = key_info("generate", "top_p")
    assert top_p is not None and "number in (0, 1]" in top_p.markdown()
    assert "default: `0.9`" in top_p.markdown()
    shots = key_info("contrast", "shots")
    assert shots is not None and "integer, >= 0" in shots.markdown()
    assert key_info("contrast", "nope") is None and key_info("nope", "pairs") is None


def test_semantic_tokens_split_long_strings_per_line_and_count_units() -> None:
    from kvsl.lsp.highlight import encode, semantic_tokens

    text = 'style "s" {\n  template = """a\n😀b\n"""\n  layers = [1.., all]\n}\n'
    found = [(t.line, t.start, t.length, t.kind) for t in semantic_tokens(text)]
    assert found == [
        (0, 0, 5, "keyword"),
        (0, 6, 3, "type"),
        (1, 2, 8, "property"),
        (1, 11, 1, "operator"),
        (1, 13, 4, "string"),  # one piece per line of the long string
        (2, 0, 3, "string"),  # the emoji is two UTF-16 units
        (3, 0, 3, "string"),
        (4, 2, 6, "property"),
        (4, 9, 1, "operator"),
        (4, 12, 1, "number"),
        (4, 13, 2, "operator"),
        (4, 17, 3, "enumMember"),
    ]
    utf32 = semantic_tokens(text, units=len)
    assert [t.length for t in utf32 if t.line == 2] == [2]
    data = encode(semantic_tokens(text))
    assert data[:10] == [0, 0, 5, 0, 0, 0, 6, 3, 5, 1]
    assert len(data) == 5 * len(found)
    assert semantic_tokens("x" * 300_000) == []  # larger than any spec: not coloured


def test_path_completion_offers_only_names_a_spec_can_hold(tmp_path: Path) -> None:
    """A file name that is not UTF-8 (b"\\xff.jsonl") or holds a control character cannot
    be written in a spec, and as a label it would break the JSON reply: not offered."""
    import os

    from kvsl.lsp.features import path_items

    (tmp_path / "traces.jsonl").write_text("")
    (tmp_path / "é.jsonl").write_text("")
    os.close(os.open(os.path.join(os.fsencode(tmp_path), b"\xff.jsonl"), os.O_CREAT | os.O_WRONLY))
    (tmp_path / "tab\there.jsonl").write_text("")
    items = path_items(str(tmp_path), "", (".jsonl",))
    labels = [item.label for item in items]
    assert labels == ["traces.jsonl", "é.jsonl"]
    json.dumps([item.label for item in items]).encode("utf-8")  # every label encodes
