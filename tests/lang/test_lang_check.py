"""The checker: every error in one pass, warnings, cross-file checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from lang_support import VALID, write_spec

from kvsl.lang import check_paths, compile_spec
from kvsl.lang.models import EMBEDDED_MODEL_LAYERS
from kvsl.lang.plan import EMBEDDED_MODELS

MANY_ERRORS = '''style "many" {
  descripton = "typo"
  contrast {
    traces = "traces.jsonl"
    pairs = 0
    shots = -1
    select = nearst
  }
  steer {
    layers = [5..2]
    value = 1e999
    value = 3
  }
  generate { top_p = 0 max_new_tokens = 0 temperature = -1 }
}
'''


def codes(path: Path) -> list[str]:
    return [d.code for d in compile_spec(path)[1]]


def test_every_error_in_one_pass(tmp_path: Path) -> None:
    found = codes(write_spec(tmp_path, MANY_ERRORS))
    # `descripton` is KVS104 ("did you mean `description`?"), not also a missing key KVS106.
    assert sorted(found) == sorted(
        ["KVS104", "KVS109", "KVS109", "KVS108", "KVS112", "KVS111", "KVS105",
         "KVS109", "KVS109", "KVS109"]
    )


def test_diagnostics_are_sorted_by_position(tmp_path: Path) -> None:
    diagnostics = compile_spec(write_spec(tmp_path, MANY_ERRORS))[1]
    positions = [(d.span.line, d.span.column) for d in diagnostics]
    assert positions == sorted(positions)


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID.replace("pairs = 4", "pairz = 4\n    pairs = 4"))
    (d,) = compile_spec(path)[1]
    assert (d.code, d.message, d.help) == ("KVS104", "unknown key `pairz` in `contrast`", "did you mean `pairs`?")


def test_a_misspelt_required_key_is_one_error_not_two(tmp_path: Path) -> None:
    """`pairz = 4` alone: the typo (KVS104) is the one error; `pairs` is not also missing."""
    path = write_spec(tmp_path, VALID.replace("pairs = 4", "pairz = 4"))
    (d,) = compile_spec(path)[1]
    assert (d.code, d.help) == ("KVS104", "did you mean `pairs`?")
    # A key nothing was taken for is still missing.
    path = write_spec(tmp_path, VALID.replace("pairs = 4", "banana = 4"))
    assert sorted(codes(path)) == ["KVS104", "KVS106"]


@pytest.mark.parametrize(
    ("steer", "expected"),
    [
        ("layers = [1..]", []),
        ("layers = all", ["KVS124"]),
        ("layers = [0, 3]", ["KVS124"]),
        ("layers = [-30..]", ["KVS124"]),
        ("layers = [1..29]", []),
        ("layers = [1..30]", ["KVS113"]),
        ("layers = [-31..-1]", ["KVS113"]),
        ("layers = [-1..-2]", ["KVS112"]),
        ("layers = [3..-29]", ["KVS112"]),
        ("layers = []", ["KVS112"]),
        ("layers = [1.5]", ["KVS107"]),
        ("layers = 3", []),
        ("key = 0.5", ["KVS123"]),
        ("at [1..2] { key = 1 }", ["KVS123"]),
        ("at [1..40] { value = 1 }", ["KVS113"]),
        ("at all { value = 1 }", ["KVS014"]),
        ("at { value = 1 }", ["KVS107"]),
        ("at [1] { scale = 1 }", ["KVS104"]),
    ],
)
def test_layers_and_coefficients(tmp_path: Path, steer: str, expected: list[str]) -> None:
    text = VALID.replace("\n}\n", f"\n  steer {{ {steer} }}\n}}\n")
    assert codes(write_spec(tmp_path, text)) == expected


def test_embedded_layer_table_matches_registry() -> None:
    assert set(EMBEDDED_MODEL_LAYERS) == set(EMBEDDED_MODELS)


def test_layers_are_not_bounded_for_unknown_models(tmp_path: Path) -> None:
    text = VALID.replace(
        "\n}\n", '\n  model = "Qwen/Qwen2.5-0.5B-Instruct"\n  steer { layers = [1..60] }\n}\n'
    )
    assert codes(write_spec(tmp_path, text)) == []


def test_greedy_with_sampling_settings_warns(tmp_path: Path) -> None:
    text = VALID.replace("\n}\n", "\n  generate { temperature = 0.5 }\n}\n")
    assert codes(write_spec(tmp_path, text)) == ["KVS125"]
    text = VALID.replace("\n}\n", "\n  generate { mode = sample temperature = 0.5 }\n}\n")
    assert codes(write_spec(tmp_path, text)) == []


def test_types(tmp_path: Path) -> None:
    text = VALID.replace("pairs = 4", 'pairs = "4"').replace(
        "\n}\n", "\n  teacher = 3\n  model { }\n  contrast { }\n}\n"
    )
    diagnostics = compile_spec(write_spec(tmp_path, text))[1]
    assert [d.code for d in diagnostics] == ["KVS107", "KVS107", "KVS107", "KVS105"]
    assert diagnostics[0].help == "write the number without quotes: `4`"


def test_extends_cycle_has_labels(tmp_path: Path) -> None:
    for name, other in (("a", "b"), ("b", "c"), ("c", "a")):
        (tmp_path / f"{name}.kvs").write_text(
            f'style "{name}" {{\n  extends = "{other}.kvs"\n}}\n', encoding="utf-8"
        )
    (d,) = compile_spec(tmp_path / "a.kvs")[1]
    assert d.code == "KVS118"
    assert d.message == "`extends` cycle: a.kvs → b.kvs → c.kvs → a.kvs"
    assert [label.span.path.endswith(f"{n}.kvs") for label, n in zip(d.labels, "bc", strict=True)]
    assert len(d.labels) == 2


def test_self_extension_is_a_cycle(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID.replace("style \"tiny\" {", 'style "tiny" {\n  extends = "tiny.kvs"'))
    assert codes(path) == ["KVS118"]


def test_errors_in_a_base_are_reported_in_the_base(tmp_path: Path) -> None:
    (tmp_path / "base.kvs").write_text('base "b" { steer { vlaue = 3 } }\n', encoding="utf-8")
    path = write_spec(tmp_path, VALID.replace('style "tiny" {', 'style "tiny" {\n  extends = "base.kvs"'))
    (d,) = compile_spec(path)[1]
    assert d.code == "KVS104" and d.span.path.endswith("base.kvs")


def test_duplicate_style_names_across_files(tmp_path: Path) -> None:
    write_spec(tmp_path / "one")
    write_spec(tmp_path / "two")
    (d,) = check_paths([str(tmp_path)])
    assert d.code == "KVS119" and d.labels[0].span.path.endswith("one/tiny.kvs")
    assert compile_spec(tmp_path / "one" / "tiny.kvs")[1] == []


def test_check_paths_deduplicates_shared_base_errors(tmp_path: Path) -> None:
    (tmp_path / "base.kvs").write_text('base "b" { steer { vlaue = 3 } }\n', encoding="utf-8")
    for name in ("x", "y"):
        text = VALID.replace('style "tiny" {', f'style "{name}" {{\n  extends = "base.kvs"')
        write_spec(tmp_path, text, f"{name}.kvs")
    assert [d.code for d in check_paths([str(tmp_path)])] == ["KVS104"]


def test_missing_paths_and_empty_directories(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    found = check_paths([str(tmp_path / "nope.kvs"), str(tmp_path / "empty")])
    assert sorted((d.code, d.severity.value) for d in found) == [
        ("KVS008", "error"),
        ("KVS009", "warning"),
    ]


def test_template_checks(tmp_path: Path) -> None:
    (tmp_path / "bad.j2").write_text("line one\n{% for x in choices %}{{ x.text }}\n", encoding="utf-8")
    text = VALID.replace(
        "  contrast {", '  teacher {\n    model = "m"\n    template = "bad.j2"\n  }\n  contrast {'
    )
    (d,) = compile_spec(write_spec(tmp_path, text))[1]
    assert d.code == "KVS201" and d.span.path.endswith("bad.j2") and d.span.line == 2
    assert d.labels[0].span.path.endswith("tiny.kvs")


def test_inline_template_lines_map_into_the_spec(tmp_path: Path) -> None:
    text = VALID.replace(
        "  contrast {",
        '  teacher {\n    model = "m"\n    template = """Q: {{ question }}\n{{ questoin }}"""\n  }\n  contrast {',
    )
    (d,) = compile_spec(write_spec(tmp_path, text))[1]
    assert d.code == "KVS202" and d.help is not None and "did you mean `question`" in d.help
    assert (d.span.path, d.span.line, d.span.column) == (str(tmp_path / "tiny.kvs"), 6, 4)


def test_template_string_that_is_not_a_path(tmp_path: Path) -> None:
    text = VALID.replace(
        "  contrast {", '  teacher {\n    model = "m"\n    template = "Q: {{ question }}"\n  }\n  contrast {'
    )
    (d,) = compile_spec(write_spec(tmp_path, text))[1]
    assert d.code == "KVS200" and d.help is not None and '"""' in d.help


def test_language_reference_documents_every_key() -> None:
    from lang_support import ROOT

    from kvsl.lang.schema import BLOCK_KEYS, STYLE_KEYS
    from kvsl.lang.templates import TEMPLATE_VARIABLES

    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    for key in [*STYLE_KEYS, *BLOCK_KEYS, *TEMPLATE_VARIABLES]:
        assert f"`{key}`" in text, key
    for block, keys in BLOCK_KEYS.items():
        section = text.split(f"### `{block}`", 1)[1].split("\n### ", 1)[0]
        for key in keys:
            assert f"| `{key}` |" in section, (block, key)
