"""`kvsl eval` against the independent reference implementation (reference_steering.py).

`kvsl eval SPEC` on the tiny word Llama (fp32, CPU) answers five questions (two with
choices, so the multiple-choice layout is in the prompt) with the `plain`, `cot`, `cache`
and `cache+cot` methods in kept-full batches of 2. Every response its results cache
records (text and token count) is the reference's greedy continuation, one question at a
time, of the prompt eval builds for that question:

- every method: the spec's system prompt, then the question as `load_benchmark` formats
  it (the stem, a blank line, `Choices:`, one `X: text` line per choice) as the user turn,
  through the chat template with the generation prompt;
- `cot`: then "Let's think step by step." (the start of the answer);
- `cache`: then the vectors' prefix (`extract { prefix }`), the offset token, and the
  edit of the spec's per-range coefficients, or of `--key` / `--value` / `--layers`
  applied as `kvsl run` applies them: `--key 0 --value 0` is coefficient 0 on every layer
  (the reference's plain `T + [o]`), `--layers` keeps the per-range values inside it;
- `cache+cot`: as `cache`, with "Let's think step by step." fed after the offset token.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import reference_steering as ref
from typer.testing import CliRunner
from word_workspace import stacked, style_spec, text_of, write_workspace

from kvsl.cli import app
from kvsl.engine.artifact import load_artifact
from kvsl.eval.methods import COT_PREFIX
from kvsl.formats.questions import load_benchmark

SYSTEM, PREFIX = "w99 w98", "w90 w91"
MAX_NEW = 10
QUESTIONS = [
    {"id": "q1", "question": "w1 w2 w3 w4 w5 w6 w7 w8", "answer": "w9"},
    {"id": "q2", "question": "w9", "answer": 3},
    {"id": "q3", "question": "w70 w71 w72", "choices": ["w80 w81", "w82"], "answer": "B"},
    {"id": "q4", "question": "w82 w83 w84 w85 w86", "answer": "w1"},
    {
        "id": "q5",
        "question": "w60 w61",
        "choices": [
            {"label": "A", "text": "w62"},
            {"label": "B", "text": "w63 w64"},
            {"label": "C", "text": "w65"},
        ],
        "answer": "C",
    },
]
# The user turns, written out from the documented layout (docs/eval.md, the paper's).
USER_TURNS = {
    "q1": "w1 w2 w3 w4 w5 w6 w7 w8",
    "q2": "w9",
    "q3": "w70 w71 w72\n\nChoices:\nA: w80 w81\nB: w82",
    "q4": "w82 w83 w84 w85 w86",
    "q5": "w60 w61\n\nChoices:\nA: w62\nB: w63 w64\nC: w65",
}
ON_THIS_CPU = ["--device", "cpu", "--precision", "fp32", "--threads", "1"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("eval-reference")
    model, tokenizer = write_workspace(root)
    spec = style_spec(
        root,
        "evalstyle",
        steer="layers = [1..]\n    key = 0\n    value = 300\n"
        "    at [-1..-1] { key = 100  value = -300 }",
        system_prompt=SYSTEM,
        prefix=PREFIX,
    )
    data = root / "questions.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return {"root": root, "spec": spec, "data": data, "model": model, "tokenizer": tokenizer}


def _eval(workspace: dict[str, Any], out: str, methods: str, *flags: str) -> dict[str, Any]:
    """Run `kvsl eval`; the report and {(method, example id): (response, tokens)}."""
    out_dir = workspace["root"] / out
    result = CliRunner().invoke(
        app,
        [
            "eval", str(workspace["spec"]), "--data", str(workspace["data"]),
            "--methods", methods, "--max-new-tokens", str(MAX_NEW), "--batch-size", "2",
            "--out", str(out_dir), "--format", "json", *ON_THIS_CPU, *flags,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    answers = {(r["method"], r["example_id"]): (r["response"], r["tokens"]) for r in records}
    return {"report": json.loads(result.stdout), "answers": answers}


def _prompt(workspace: dict[str, Any], question: str, prefix: str = "") -> list[int]:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    return ref.chat_prompt_ids(workspace["tokenizer"], messages, prefix)


def _steered(
    workspace: dict[str, Any],
    question: str,
    coefficients: dict[int, tuple[float, float]],
    after: list[int] | None = None,
) -> list[int]:
    [artifact] = (workspace["root"] / ".kvsl" / "artifacts").glob("evalstyle-*.safetensors")
    keys, values = stacked(load_artifact(artifact))
    tokenizer = workspace["tokenizer"]
    prompt = _prompt(workspace, question, PREFIX)
    offset = ref.offset_id(tokenizer)
    return ref.steered_greedy(
        workspace["model"], prompt, offset, keys, values, coefficients, MAX_NEW, after=after or []
    )


def _assert_answers(
    workspace: dict[str, Any], answers: dict[Any, Any], method: str, expected: dict[str, list[int]]
) -> None:
    for example_id, tokens in expected.items():
        text = text_of(workspace["tokenizer"], tokens)
        assert answers[(method, example_id)] == (text, len(tokens)), (method, example_id)


def test_eval_questions_are_the_documented_user_turns(workspace):
    examples = load_benchmark(workspace["data"])
    assert {e.id: e.question for e in examples} == USER_TURNS


def test_plain_cot_cache_and_cache_cot_responses_equal_the_reference(workspace):
    run = _eval(workspace, "out-spec", "plain,cot,cache,cache+cot")
    coefficients = {1: (0.0, 300.0), 2: (100.0, -300.0)}  # the spec's, per range
    assert run["report"]["coefficients"] == {str(k): list(v) for k, v in coefficients.items()}
    assert len(run["answers"]) == 4 * len(QUESTIONS)
    model, tokenizer = workspace["model"], workspace["tokenizer"]
    plain = {
        i: ref.plain_greedy(model, _prompt(workspace, q), MAX_NEW) for i, q in USER_TURNS.items()
    }
    _assert_answers(workspace, run["answers"], "plain", plain)
    cot = tokenizer(COT_PREFIX, add_special_tokens=False)["input_ids"]
    _assert_answers(
        workspace,
        run["answers"],
        "cot",
        {
            i: ref.plain_greedy(model, _prompt(workspace, q) + cot, MAX_NEW)
            for i, q in USER_TURNS.items()
        },
    )
    steered = {i: _steered(workspace, q, coefficients) for i, q in USER_TURNS.items()}
    assert steered != plain
    _assert_answers(workspace, run["answers"], "cache", steered)
    steered_cot = {i: _steered(workspace, q, coefficients, cot) for i, q in USER_TURNS.items()}
    assert steered_cot != steered
    _assert_answers(workspace, run["answers"], "cache+cot", steered_cot)


@pytest.mark.parametrize(
    ("flags", "coefficients"),
    [
        # coefficient 0 everywhere: the per-range values give way to the flags
        (["--key", "0", "--value", "0"], {1: (0.0, 0.0), 2: (0.0, 0.0)}),
        # `--layers` replaces the layers; the per-range key of the last one still applies
        (["--value", "150", "--layers=-1"], {2: (100.0, 150.0)}),
    ],
)
def test_cache_with_command_line_coefficients_equals_the_reference(workspace, flags, coefficients):
    run = _eval(workspace, "out-" + "".join(flags), "cache", *flags)
    assert run["report"]["coefficients"] == {str(k): list(v) for k, v in coefficients.items()}
    steered = {i: _steered(workspace, q, coefficients) for i, q in USER_TURNS.items()}
    if all(c == (0.0, 0.0) for c in coefficients.values()):
        offset = ref.offset_id(workspace["tokenizer"])
        plain = {
            i: ref.plain_greedy(
                workspace["model"], [*_prompt(workspace, q, PREFIX), offset], MAX_NEW
            )
            for i, q in USER_TURNS.items()
        }
        assert steered == plain
    _assert_answers(workspace, run["answers"], "cache", steered)
