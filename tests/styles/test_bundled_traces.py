"""The bundled trace sets (specs/traces/*.jsonl) and teacher templates (templates/*.j2).

These files are data the project ships so that `kvsl build specs/<style>.kvs` works offline;
the checks here are what makes them trustworthy demonstrations:

- schema: every file loads with `kvsl.formats.traces.load_traces` (ids unique, required keys);
- coverage: at least 40 traces, the four domains (arithmetic, science, commonsense,
  physical) each at least 8 times, no question repeated within a file;
- answers: multiple-choice questions carry a well-formed `Choices:` block whose labels run
  A, B, C... and contain the answer; every arithmetic trace carries a `check` expression
  that a tiny safe evaluator computes equal to the answer;
- voice: no step says "The answer is" (kvsl appends that sentence itself), and the steps
  have the shape of their style (a rule per file in `STYLE_SHAPES`).

Every templates/*.j2 must render in Jinja2's sandbox with strict undefined variables given
exactly the six variables the teacher passes, and ask for `<step>` and `<answer>` tags.
"""

from __future__ import annotations

import ast
import operator
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvsl.formats.traces import Trace, load_traces

ROOT = Path(__file__).resolve().parents[2]
TRACE_DIR = ROOT / "specs" / "traces"
TEMPLATE_DIR = ROOT / "templates"
TRACE_FILES = sorted(TRACE_DIR.glob("*.jsonl"))
TEMPLATE_FILES = sorted(TEMPLATE_DIR.glob("*.j2"))
# Small files that illustrate the spec syntax (specs/_example_syntax.kvs), not built-in
# styles: they must load and read well, but the bundled-set rules (size, domains, shape)
# do not apply to them. Any other file must be a style with a rule in STYLE_SHAPES.
DEMO_TRACE_FILES = {"example.jsonl"}

MIN_TRACES = 40
MIN_PER_DOMAIN = 8
MIN_STEPS, MAX_STEPS = 2, 8  # a chain, not a one-liner; a demo, not an essay
DOMAINS = ("arithmetic", "science", "commonsense", "physical")
# Option counts of the benchmark formats the domains imitate (ARC, CommonsenseQA, PIQA).
OPTIONS_PER_DOMAIN = {"science": 4, "commonsense": 5, "physical": 2}
CHOICES_SEPARATOR = "\n\nChoices:\n"
CHOICE_LINE = re.compile(r"^([A-Z]): (\S.*)$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
TEMPLATE_VARIABLES = {"question", "answer", "choices", "style", "description", "domain"}


# --- a tiny safe arithmetic evaluator: numbers, + - * / // % **, parentheses -------------

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def safe_eval(expression: str) -> float:
    """Evaluate plain arithmetic; anything else (names, calls, attributes) is rejected.

    >>> safe_eval("(12 - 5) * 3")
    21
    """

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        raise ValueError(f"not plain arithmetic: {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval"))


def test_safe_eval_accepts_arithmetic_and_rejects_the_rest() -> None:
    assert safe_eval("(12 - 5) * 3") == 21
    assert safe_eval("10 - (3 * 2.5 + 1.75)") == pytest.approx(0.75)
    assert safe_eval("150 // 12 + 2 ** 3 % 5 - -1") == 16
    for bad in ("__import__('os')", "x + 1", "abs(-3)", "[1][0]", "True + 1", "'a' * 3"):
        with pytest.raises(ValueError):
            safe_eval(bad)


# --- per-style shape rules, keyed by trace file name ------------------------------------
# Each rule returns None when a trace has its style's shape, else a short reason.

Shape = Callable[[Trace], str | None]
CAUSAL_WORD = re.compile(r"\b(if|then|therefore|because)\b", re.IGNORECASE)


def _step_by_step(trace: Trace) -> str | None:
    for number, step in enumerate(trace.steps, start=1):
        if not step.startswith(f"{number}. "):
            return f"step {number} does not start with `{number}. `: {step!r}"
    return None


def _strategy_execute(trace: Trace) -> str | None:
    first, *rest = trace.steps
    if not first.startswith("Strategy: "):
        return f"first step does not start with `Strategy: `: {first!r}"
    if not rest:
        return "a strategy with no execution steps"
    for number, step in enumerate(rest[:-1], start=1):
        if not step.startswith(f"Step {number}: "):
            return f"execution step {number} does not start with `Step {number}: `: {step!r}"
    last = rest[-1]
    if not re.match(rf"^(Step {len(rest)}|Check|Conclusion): ", last):
        return f"last step is neither `Step {len(rest)}:`, `Check:` nor `Conclusion:`: {last!r}"
    return None


def _causal_chain(trace: Trace) -> str | None:
    # A shared opener, as for analogical: the vector mostly sets the answer's first token.
    if not trace.steps[0].startswith("Because "):
        return f"first step does not open with `Because `: {trace.steps[0]!r}"
    linked = sum(1 for step in trace.steps if CAUSAL_WORD.search(step))
    if linked * 4 < len(trace.steps) * 3:  # at least three steps in four carry a link
        return f"only {linked} of {len(trace.steps)} steps say if/then/because/therefore"
    if not any(re.search(r"\btherefore\b", step, re.IGNORECASE) for step in trace.steps):
        return "no step draws the conclusion with `therefore`"
    return None


def _annotated_deduction(trace: Trace) -> str | None:
    if not trace.steps[0].startswith("[Fact] "):  # a shared opener (see _causal_chain)
        return f"first step does not open with `[Fact] `: {trace.steps[0]!r}"
    arrows = sum(1 for step in trace.steps if "→" in step)
    if arrows * 2 < len(trace.steps):  # most steps read "[Premise] ... → [Conclusion] ..."
        return f"only {arrows} of {len(trace.steps)} steps carry a `→` deduction"
    return None


def _analogical(trace: Trace) -> str | None:
    # Every trace opens the same way: the steering vector is read at the token before the
    # answer, so a shared opener is what it learns to start ("This is just like" taught the
    # embedded model only "This ...", see docs/styles.md, "Tuning notes").
    if not trace.steps[0].startswith("Just like "):
        return f"first step does not open with `Just like `: {trace.steps[0]!r}"
    text = " ".join(trace.steps[1:]).lower()
    if not any(phrase in text for phrase in ("just like", "similar to", "is like", "just as", "here")):
        return "the analogy is not carried back (`similar to`, `just as`, `here`) in a later step"
    return None


STYLE_SHAPES: dict[str, Shape] = {
    "step_by_step.jsonl": _step_by_step,
    "strategy_execute.jsonl": _strategy_execute,
    "causal_chain.jsonl": _causal_chain,
    "annotated_deduction.jsonl": _annotated_deduction,
    "analogical.jsonl": _analogical,
}


# --- helpers ---------------------------------------------------------------------------


def split_choices(question: str) -> tuple[str, list[tuple[str, str]]] | str:
    """`(stem, [(label, text), ...])` of a multiple-choice question, or why it is malformed."""
    if question.count(CHOICES_SEPARATOR) != 1:
        return "no single `\\n\\nChoices:\\n` block"
    stem, block = question.split(CHOICES_SEPARATOR)
    if not stem.strip():
        return "empty question text before `Choices:`"
    options: list[tuple[str, str]] = []
    for line in block.split("\n"):
        match = CHOICE_LINE.match(line)
        if match is None:
            return f"choice line is not `X: text`: {line!r}"
        options.append((match.group(1), match.group(2)))
    labels = [label for label, _ in options]
    expected = [chr(ord("A") + i) for i in range(len(options))]
    if labels != expected:
        return f"labels {labels} are not consecutive from A"
    return stem, options


def _id(path: Path) -> str:
    return path.name


STYLE_TRACE_FILES = [path for path in TRACE_FILES if path.name not in DEMO_TRACE_FILES]


@pytest.mark.parametrize("path", TRACE_FILES, ids=_id)
def test_every_trace_file_loads_and_leaves_the_answer_sentence_to_kvsl(path: Path) -> None:
    traces = load_traces(path)  # raises KvslError listing every bad line
    assert traces, f"{path.name} is empty"
    said = [t.id for t in traces if any("the answer is" in s.lower() for s in t.steps)]
    assert not said, f"{path.name}: steps say `The answer is` (kvsl appends it): {said}"


@pytest.fixture(scope="module", params=STYLE_TRACE_FILES, ids=_id)
def bundled(request: pytest.FixtureRequest) -> tuple[str, list[Trace]]:
    path: Path = request.param
    return path.name, load_traces(path)


def _problems(traces: list[Trace], check: Callable[[Trace], str | None]) -> list[str]:
    return [f"{t.id}: {reason}" for t in traces if (reason := check(t)) is not None]


# --- trace file tests -----------------------------------------------------------------


def test_the_three_core_styles_are_bundled() -> None:
    names = {path.name for path in TRACE_FILES}
    assert {"step_by_step.jsonl", "strategy_execute.jsonl", "causal_chain.jsonl"} <= names


def test_every_bundled_file_has_a_shape_rule() -> None:
    missing = [path.name for path in STYLE_TRACE_FILES if path.name not in STYLE_SHAPES]
    assert not missing, f"add a shape rule to STYLE_SHAPES for {missing}"


def test_enough_traces_with_unique_ids_and_questions(bundled: tuple[str, list[Trace]]) -> None:
    name, traces = bundled
    assert len(traces) >= MIN_TRACES, f"{name}: {len(traces)} traces, want >= {MIN_TRACES}"
    ids = [t.id for t in traces]
    assert None not in ids, f"{name}: every bundled trace needs an id"
    assert len(set(ids)) == len(ids)
    repeated = [q for q, n in Counter(t.question for t in traces).items() if n > 1]
    assert not repeated, f"{name}: repeated questions {repeated[:3]}"


def test_ids_share_one_prefix_and_are_numbered(bundled: tuple[str, list[Trace]]) -> None:
    name, traces = bundled
    prefixes = {re.sub(r"-\d{3}$", "", t.id or "") for t in traces}
    assert len(prefixes) == 1, f"{name}: ids should read `<prefix>-NNN`, got {prefixes}"
    assert all(re.fullmatch(r"[a-z]+-\d{3}", t.id or "") for t in traces)


def test_domains_are_mixed(bundled: tuple[str, list[Trace]]) -> None:
    name, traces = bundled
    counts = Counter(t.domain for t in traces)
    assert set(counts) <= set(DOMAINS), f"{name}: unknown domains {set(counts) - set(DOMAINS)}"
    for domain in DOMAINS:
        assert counts[domain] >= MIN_PER_DOMAIN, f"{name}: {counts[domain]} {domain} traces"


def test_multiple_choice_blocks_are_well_formed(bundled: tuple[str, list[Trace]]) -> None:
    name, traces = bundled

    def check(trace: Trace) -> str | None:
        if trace.domain not in OPTIONS_PER_DOMAIN:
            return None
        parsed = split_choices(trace.question)
        if isinstance(parsed, str):
            return parsed
        _, options = parsed
        if len(options) != OPTIONS_PER_DOMAIN[trace.domain]:
            return f"{len(options)} options, {trace.domain} questions have {OPTIONS_PER_DOMAIN[trace.domain]}"
        if trace.answer not in {label for label, _ in options}:
            return f"answer {trace.answer!r} is not one of the labels"
        if len({text.lower() for _, text in options}) != len(options):
            return "two options have the same text"
        return None

    problems = _problems(traces, check)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_correct_labels_are_spread_out(bundled: tuple[str, list[Trace]]) -> None:
    """A demo set whose answer is always "A" would teach the label, not the reasoning."""
    name, traces = bundled
    for domain, n_options in OPTIONS_PER_DOMAIN.items():
        answers = Counter(t.answer for t in traces if t.domain == domain)
        if sum(answers.values()) >= 2 * n_options:
            assert len(answers) == n_options, f"{name}: {domain} answers only use {set(answers)}"


def test_arithmetic_answers_match_their_check(bundled: tuple[str, list[Trace]]) -> None:
    name, traces = bundled

    def check(trace: Trace) -> str | None:
        if trace.domain != "arithmetic":
            return None
        if "Choices:" in trace.question:
            return "an arithmetic question should not be multiple choice"
        if not NUMBER.match(trace.answer):
            return f"answer {trace.answer!r} is not a plain number"
        expression = trace.extra.get("check")
        if not isinstance(expression, str):
            return "no `check` expression"
        try:
            value = safe_eval(expression)
        except (ValueError, SyntaxError, ZeroDivisionError) as err:
            return f"check {expression!r} does not evaluate: {err}"
        if abs(value - float(trace.answer)) > 1e-9:
            return f"check {expression!r} = {value}, answer is {trace.answer}"
        return None

    problems = _problems(traces, check)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_steps_leave_the_answer_sentence_to_kvsl(bundled: tuple[str, list[Trace]]) -> None:
    name, traces = bundled

    def check(trace: Trace) -> str | None:
        if any("the answer is" in step.lower() for step in trace.steps):
            return "a step says `The answer is` (kvsl appends it)"
        if any(not step.strip() or "\n" in step for step in trace.steps):
            return "a step is empty or spans several lines"
        if not MIN_STEPS <= len(trace.steps) <= MAX_STEPS:
            return f"{len(trace.steps)} steps, want {MIN_STEPS} to {MAX_STEPS}"
        return None

    problems = _problems(traces, check)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_steps_have_the_shape_of_their_style(bundled: tuple[str, list[Trace]]) -> None:
    name, traces = bundled
    shape = STYLE_SHAPES.get(name)
    if shape is None:
        pytest.fail(f"no shape rule for {name} in STYLE_SHAPES")
    problems = _problems(traces, shape)
    assert not problems, f"{name}:\n" + "\n".join(problems)


# --- shape rules catch what they should -------------------------------------------------


def _trace(*steps: str) -> Trace:
    return Trace(question="q", steps=steps, answer="1", id="x-001")


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("step_by_step.jsonl", ("1. a.", "2. b."), ("1. a.", "3. b.")),
        ("strategy_execute.jsonl", ("Strategy: p.", "Step 1: a.", "Check: c."), ("Step 1: a.",)),
        ("causal_chain.jsonl", ("Because a, b.", "If b, then c.", "Therefore c."),
         ("A.", "B.", "Therefore c.")),
        ("causal_chain.jsonl", ("Because a, b.", "If b, then c.", "Therefore c."),
         ("If a, then b.", "Because b, c.", "Therefore c.")),
        ("annotated_deduction.jsonl", ("[Fact] a → [C] b",), ("[Fact] a, so b",)),
        ("annotated_deduction.jsonl", ("[Fact] a → [C] b",), ("[P] a → [C] b",)),
        ("analogical.jsonl", ("Just like a seesaw, a balance levels.", "Here the masses match."),
         ("This is just like a seesaw.", "Here the masses match.")),
    ],
)
def test_shape_rules(name: str, good: tuple[str, ...], bad: tuple[str, ...]) -> None:
    assert STYLE_SHAPES[name](_trace(*good)) is None
    assert STYLE_SHAPES[name](_trace(*bad)) is not None


# --- teacher templates ------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    label: str
    text: str


TEMPLATE_CONTEXTS = {
    "multiple-choice": {
        "question": "Which material conducts heat best?",
        "answer": "B",
        "choices": [Choice("A", "wood"), Choice("B", "copper"), Choice("C", "cork")],
        "style": "a-style",
        "description": "A description of the style.",
        "domain": "science",
    },
    "open": {
        "question": "Ann has 3 boxes of 4 pens. How many pens does she have?",
        "answer": "12",
        "choices": [],
        "style": "a-style",
        "description": "A description of the style.",
        "domain": None,
    },
    "unknown-answer": {  # the teacher passes "" when a question source has no answer
        "question": "Why do leaves change color in autumn?",
        "answer": "",
        "choices": [],
        "style": "a-style",
        "description": "A description of the style.",
        "domain": "science",
    },
}
@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda path: path.name)
@pytest.mark.parametrize("case", sorted(TEMPLATE_CONTEXTS))
def test_template_renders_in_the_sandbox(path: Path, case: str) -> None:
    from jinja2 import StrictUndefined, meta
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    source = path.read_text(encoding="utf-8")
    unknown = meta.find_undeclared_variables(env.parse(source)) - TEMPLATE_VARIABLES
    assert not unknown, f"{path.name} uses variables the teacher does not pass: {unknown}"

    context = TEMPLATE_CONTEXTS[case]
    text = env.from_string(source).render(**context)
    assert str(context["question"]) in text
    assert str(context["answer"]) in text
    if context["choices"]:
        assert "B: copper" in text
    assert "<step>" in text and "</step>" in text, "the teacher parses <step>...</step>"
    assert "<answer>" in text and "</answer>" in text, "the teacher parses <answer>...</answer>"


# --- the built-in specs that use these files --------------------------------------------

SPEC_PATH_KEY = re.compile(r'^\s*(template|traces)\s*=\s*"([^"]+)"', re.MULTILINE)


@pytest.mark.parametrize("path", STYLE_TRACE_FILES, ids=_id)
def test_each_bundled_style_has_a_spec_naming_its_files(path: Path) -> None:
    """specs/<style>.kvs names traces/<style>.jsonl and ../templates/<style>.j2, which exist.

    Read with a regex on purpose: this pins the file layout; `kvsl check` (tested with the
    front end) checks everything else about the spec.
    """
    spec = ROOT / "specs" / f"{path.stem}.kvs"
    assert spec.is_file(), f"no spec {spec.name} for the bundled traces {path.name}"
    named = dict(SPEC_PATH_KEY.findall(spec.read_text(encoding="utf-8")))
    assert (spec.parent / named["traces"]).resolve() == path.resolve()
    template = (spec.parent / named["template"]).resolve()
    assert template == (TEMPLATE_DIR / f"{path.stem}.j2").resolve()
    assert template.is_file(), f"{spec.name} names a missing template {named['template']}"
