"""What README.md and docs/*.md show a new user holds: their spec examples check, the
diagnostic codes they name exist, the files they point to are there.

Front end only (no model is loaded): every test here runs in well under a second.

- Every ```kvs block, and every untagged block that starts with a spec block, is checked
  as written. A whole spec (`style`/`base`) is checked in a copy of `specs/`, so its
  relative paths (`../templates/...`, `traces/...`) resolve as in the repository; a
  fragment (`contrast { ... }`, `steer { ... }`) is checked inside a minimal style. A
  block meant to show a mistake says so in a comment, `# error[KVS104]` (or
  `warning[...]`), and must produce exactly that code.
- The README's spec is the built-in step-by-step spec (comments aside).
- Every `kvsl COMMAND --option` a doc shows (code blocks and inline) names a real command
  and option, checked against the CLI's own parser tree.
- Every `KVSnnn`, range (`KVS600-608`) and group (`KVS51x`) the docs name is registered.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvsl.lang import compile_spec
from kvsl.lang.codes import CODES
from kvsl.lang.diagnostics import Severity

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SPEC_BLOCKS = ("style", "base")
FRAGMENT_BLOCKS = ("teacher", "contrast", "extract", "steer", "generate")
# Files a doc tells the user to write before its example checks (docs/teacher.md's
# `questions = "questions.jsonl"`, docs/styles.md's `template = "terse.j2"`).
USER_FILES = {
    "questions.jsonl": '{"question": "What is 2 + 3?", "answer": "5"}\n',
    "terse.j2": "Answer in one equation, then the number.\n\n{{ question }}\n",
}
MINIMAL_TEACHER = (
    'teacher { model = "gpt-4o"  template = "../templates/step_by_step.j2"'
    '  traces = "traces/step_by_step.jsonl" }'
)
MINIMAL_CONTRAST = "contrast { pairs = 8  shots = 2 }"


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    text: str

    @property
    def first_word(self) -> str:
        for line in self.text.splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                return re.split(r"[\s{\"]", stripped, maxsplit=1)[0]
        return ""

    @property
    def expected(self) -> set[str]:
        return set(re.findall(r"#.*?(?:error|warning)\[(KVS\d{3})\]", self.text))

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def spec_blocks() -> list[Block]:
    blocks = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
            block = Block(
                str(path.relative_to(ROOT)), text[: match.start()].count("\n") + 1, match.group(2)
            )
            tagged = match.group(1) == "kvs"
            if tagged or (not match.group(1) and block.first_word in SPEC_BLOCKS + FRAGMENT_BLOCKS):
                blocks.append(block)
    return blocks


BLOCKS = spec_blocks()


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's specs (traces, query pools) and templates."""
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "templates", root / "templates")
    specs = root / "specs"
    shutil.copytree(ROOT / "specs", specs, ignore=shutil.ignore_patterns("vectors", ".kvsl"))
    for name, content in USER_FILES.items():
        (specs / name).write_text(content, encoding="utf-8")
    return specs


def as_spec(block: Block) -> str:
    """The block as a whole spec: itself, or a fragment inside a minimal style."""
    if block.first_word in SPEC_BLOCKS:
        return block.text
    assert block.first_word in FRAGMENT_BLOCKS, f"{block}: not a spec or a spec block"
    parts = [block.text]
    if block.first_word != "teacher":
        parts.insert(0, MINIMAL_TEACHER)
    if block.first_word != "contrast":
        parts.insert(0, MINIMAL_CONTRAST)
    body = "\n".join(parts)
    return f'style "doc-example" {{\n  description = "a fragment from the docs"\n{body}\n}}\n'


def test_the_docs_have_spec_examples() -> None:
    docs = {block.doc for block in BLOCKS}
    assert {"README.md", "docs/language.md", "docs/teacher.md", "docs/styles.md"} <= docs
    assert len(BLOCKS) >= 7


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_every_spec_example_checks_as_documented(block: Block, spec_dir: Path) -> None:
    path = spec_dir / f"doc_{block.doc.replace('/', '_').replace('.', '_')}_{block.line}.kvs"
    path.write_text(as_spec(block), encoding="utf-8")
    _, diagnostics = compile_spec(path)
    reported = {d.code for d in diagnostics if d.severity in (Severity.ERROR, Severity.WARNING)}
    shown = "\n".join(f"{d.code} {d.span.line}:{d.span.column} {d.message}" for d in diagnostics)
    assert reported == block.expected, f"{block}:\n{shown}"


def test_the_readme_spec_is_the_built_in_step_by_step(spec_dir: Path) -> None:
    (readme,) = (b for b in BLOCKS if b.doc == "README.md" and b.first_word == "style")
    path = spec_dir / "readme_spec.kvs"
    path.write_text(readme.text, encoding="utf-8")
    shown, _ = compile_spec(path)
    shipped, _ = compile_spec(spec_dir / "step_by_step.kvs")
    assert shown is not None and shipped is not None
    # plan_hash covers every setting (generation, coefficients, markers) but not the path.
    assert shown.plan_hash == shipped.plan_hash
    assert shown.vector_hash == shipped.vector_hash


def mentioned_codes() -> dict[str, list[str]]:
    """Each code the docs name (ranges expanded), and each group (`KVS51x`), with where."""
    found: dict[str, list[str]] = {}
    pattern = re.compile(r"KVS(\d{3})(?:[-–](?:KVS)?(\d{3}))?|KVS(\d{1,2}x{1,2})\b")
    for path in [*DOCS, ROOT / "DEVELOPERS.md"]:
        text = path.read_text(encoding="utf-8")
        for match in pattern.finditer(text):
            where = f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}"
            if match.group(3):
                if len(match.group(3)) == 3:
                    found.setdefault(f"KVS{match.group(3)}", []).append(where)
                continue
            low = int(match.group(1))
            high = int(match.group(2)) if match.group(2) else low
            assert low <= high <= low + 99, f"{where}: odd range {match.group(0)}"
            for number in range(low, high + 1):
                found.setdefault(f"KVS{number:03d}", []).append(where)
    return found


def test_every_code_the_docs_name_is_registered() -> None:
    found = mentioned_codes()
    assert len(found) > 100  # the docs name most codes; a broken pattern would find none
    missing = {}
    for code, where in found.items():
        prefix = code.rstrip("x")
        known = any(c.startswith(prefix) for c in CODES) if code.endswith("x") else code in CODES
        if not known:
            missing[code] = where
    assert not missing, missing


def command_lines() -> list[tuple[str, str]]:
    """(where, text) of every shell line in a code block and every inline `kvsl ...` span."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ROOT))
        for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
            if match.group(1) not in ("", "sh", "console", "bash", "yaml"):
                continue
            first = text[: match.start()].count("\n") + 2
            lines = match.group(2).replace("\\\n", " \n").split("\n")
            found += [(f"{name}:{first + i}", line) for i, line in enumerate(lines)]
        for match in re.finditer(r"`(kvsl [^`\n]+)`", text):
            found.append((f"{name}:{text[: match.start()].count(chr(10)) + 1}", match.group(1)))
    return found


def kvsl_invocations(line: str) -> list[list[str]]:
    """The words after each `kvsl` (or `.../bin/kvsl`) that runs as a command in `line`."""
    calls = []
    for part in re.split(r"&&|\|\||[|;]|\$\(", line.split(" #")[0]):
        words = part.strip().removeprefix("$ ").split()
        starts = [i for i, w in enumerate(words) if w == "kvsl" or w.endswith("/bin/kvsl")]
        # Only a command word: after nothing but `VAR=value`s (not `pip install kvsl` or
        # a YAML `name: Check kvsl specs`).
        if starts and all("=" in w for w in words[: starts[0]]):
            calls.append(words[starts[0] + 1 :])
    return calls


def test_every_kvsl_command_and_option_the_docs_show_exists() -> None:
    """`kvsl CMD --option` as the docs spell it: a renamed flag or command fails here, not
    in a new user's shell (Typer's own parser tree, so no command body runs)."""
    import typer.main

    from kvsl.cli import app

    root = typer.main.get_command(app)  # a group: its `commands` by name
    wrong, seen = [], 0
    for where, line in command_lines():
        for words in kvsl_invocations(line):
            command = root
            while words and words[0] in getattr(command, "commands", {}):
                command = command.commands[words.pop(0)]  # type: ignore[attr-defined]
            if command is root:
                if words and re.fullmatch(r"[a-z]+", words[0]):
                    wrong.append(f"{where}: no command `kvsl {words[0]}`")
                continue
            seen += 1
            options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            for word in words:
                option = word.split("=")[0]
                if re.fullmatch(r"--[a-z][a-z0-9-]*", option) and option not in options | {"--help"}:
                    wrong.append(f"{where}: `kvsl {command.name}` has no `{option}`")
    assert seen > 50  # the docs show many commands; a broken pattern would find none
    assert not wrong, "\n".join(wrong)


def python_block(doc: str, heading: str) -> str:
    """The first ```python block of `doc` after the line `heading`."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    after = text[text.index(f"\n{heading}\n") :]
    match = re.search(r"^```python\n(.*?)^```", after, re.S | re.M)
    assert match, f"{doc}: no python block after {heading!r}"
    return match.group(1)


def test_the_styles_page_python_example_runs_on_its_own_spec(
    spec_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/styles.md, "Declaring your own style": its spec saved as `specs/terse.kvs`, its
    Python block run as written from the folder above, and the scores the page quotes."""
    from kvsl.lang import load_plan
    from kvsl.styles import score

    (terse,) = [b for b in BLOCKS if b.doc == "docs/styles.md" and '"terse-math"' in b.text]
    (spec_dir / "terse.kvs").write_text(terse.text, encoding="utf-8")
    monkeypatch.chdir(spec_dir.parent)
    exec(python_block("docs/styles.md", "## Declaring your own style"), {})
    assert capsys.readouterr().out == "1.0\n"
    plan = load_plan(spec_dir / "terse.kvs")
    assert (score("answer: 7", plan), score("seven", plan)) == (0.3333, 0.0)
    assert score("Answer: 3 + 4 = 7\n" * 30, plan) == 0.0333


def test_the_stdin_examples_run_as_written_from_the_folder_they_say(spec_dir: Path) -> None:
    """docs/language.md's `kvsl check -` lines: `git show :specs/x.kvs` is the staged file,
    fed here from the copy; from `specs/` (the block's `cd`) its relative paths resolve."""
    import subprocess
    import sys

    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    block = text[text.index("rather than what is on disk") :].split("\n\n")[1]
    lines = [line.strip() for line in block.splitlines()]
    assert lines[0] == "cd specs", block
    staged = (spec_dir / "step_by_step.kvs").read_text(encoding="utf-8")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    piped = [line for line in lines if line.startswith("git show :specs/step_by_step.kvs | kvsl ")]
    assert len(piped) == 3  # check -, fmt --check -, plan -
    for line in piped:
        words = line.split("| kvsl ")[1].split()
        done = subprocess.run(
            [sys.executable, "-m", "kvsl", *words], input=staged, cwd=spec_dir, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
