"""Hostile decoding flags, one test per class, across every command that takes them.

Classes (each was silently accepted):
- a sampling-only setting (`--temperature`, `--top-p`, `--top-k`: `SAMPLING_ONLY`) with
  greedy decoding, whether greedy comes from `--greedy` or from the spec's (or eval's)
  default, and `--greedy` with `--runs` > 1 (which samples anyway). The same setting in a
  spec's `generate` block is KVS125; the flags are refused by the one rule behind it
  (`GenerationSettings.problems`), before a model is loaded; `kvsl serve` refuses a
  `top_p` with greedy decoding (tests/serve/test_schemas.py);
- a prompt and `--max-new-tokens` past the model's context (`max_position_embeddings`):
  KVS463 before anything is generated, for `kvsl run` (and the Python API), `kvsl eval` and
  `kvsl tune` (the eval's generator), sharing `kvsl serve`'s check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import TINY_TRACES, make_tiny_model
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.engine.context_window import context_overflow, refuse_past_context
from kvsl.lang import compile_spec
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import SAMPLING_ONLY, GenerationSettings

SPEC = """style "hostile" {{
  description = "a style whose model cannot be loaded"
  model = "{model}"
  contrast {{
    traces = "traces.jsonl"
    pairs = 4
    shots = 1
  }}
  steer {{
    layers = [1..]
    value = 4
  }}
{generate}}}
"""
DATA = '{"question": "1+1?", "answer": "#### 2"}\n'
# One value for each sampling-only setting: a new one must be added here (checked below).
SAMPLING_VALUES = {"temperature": "0.5", "top_p": "0.5", "top_k": "5"}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "empty-model").mkdir()  # the spec checks; loading it fails (another code)
    (tmp_path / "greedy.kvs").write_text(SPEC.format(model="empty-model", generate=""))
    sampled = SPEC.format(model="empty-model", generate="  generate { mode = sample }\n")
    (tmp_path / "sampled.kvs").write_text(sampled)
    (tmp_path / "traces.jsonl").write_text("")
    (tmp_path / "g.jsonl").write_text(DATA)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(args: list[str]):
    return CliRunner().invoke(app, args)


def _flag(name: str) -> list[str]:
    return [f"--{name.replace('_', '-')}", SAMPLING_VALUES[name]]


COMMON = ["-p", "hi", "--device", "cpu", "--threads", "1"]
RUN_GREEDY_SPEC = ["run", "greedy.kvs", *COMMON]
RUN_SAMPLED_SPEC = ["run", "sampled.kvs", *COMMON]
EVAL = ["eval", "greedy.kvs", "--data", "g.jsonl", "-m", "plain", "--device", "cpu",
        "--threads", "1"]  # fmt: skip


def test_every_sampling_only_setting_has_a_case() -> None:
    assert set(SAMPLING_VALUES) == set(SAMPLING_ONLY)


@pytest.mark.parametrize("name", SAMPLING_ONLY)
def test_the_spec_warns_of_each_sampling_setting_with_greedy_decoding(
    name: str, workspace: Path
) -> None:
    """The rule the flags follow is the checker's: KVS125 for each of the same settings."""
    path = workspace / "spec.kvs"
    generate = f"  generate {{ {name} = {SAMPLING_VALUES[name]} }}\n"
    path.write_text(SPEC.format(model="empty-model", generate=generate))
    _, diagnostics = compile_spec(path)
    assert [d.code for d in diagnostics if d.code == "KVS125"] == ["KVS125"]


@pytest.mark.parametrize("name", SAMPLING_ONLY)
@pytest.mark.parametrize(
    ("command", "code"),
    [
        ([*RUN_GREEDY_SPEC, "--greedy"], "KVS457"),  # greedy by the flag
        (RUN_GREEDY_SPEC, "KVS457"),  # greedy by the spec
        ([*RUN_SAMPLED_SPEC, "--greedy"], "KVS457"),  # the flag overrides a sampling spec
        ([*EVAL, "--greedy"], "KVS612"),
        (EVAL, "KVS612"),  # eval decodes greedily unless told
    ],
)
def test_a_sampling_flag_with_greedy_decoding_is_a_usage_error(
    workspace: Path, name: str, command: list[str], code: str
) -> None:
    result = _run([*command, *_flag(name)])
    assert result.exit_code == 2, result.output
    assert f"[{code}]" in result.stderr and "has no effect with greedy decoding" in result.stderr
    assert f"`--{name.replace('_', '-')}`" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", SAMPLING_ONLY)
@pytest.mark.parametrize(
    "command",
    [
        [*RUN_GREEDY_SPEC, "--sample"],
        RUN_SAMPLED_SPEC,  # sampling by the spec
        [*EVAL, "--sample"],
        [*EVAL, "--runs", "2"],  # more than one run samples
    ],
)
def test_the_same_flag_with_sampling_gets_past_the_checks(
    workspace: Path, name: str, command: list[str]
) -> None:
    """Accepted: the command goes on to load the model, an empty directory (another code)."""
    result = _run([*command, *_flag(name)])
    assert "has no effect" not in result.stderr
    assert "[KVS457]" not in result.stderr and "[KVS612]" not in result.stderr, result.stderr


@pytest.mark.parametrize("command", [RUN_GREEDY_SPEC, EVAL])
def test_neutral_sampling_values_ask_for_nothing_and_pass(workspace: Path, command) -> None:
    result = _run([*command, "--greedy", "--top-k", "0", "--top-p", "1"])
    assert "[KVS457]" not in result.stderr and "[KVS612]" not in result.stderr, result.stderr


def test_greedy_with_several_runs_is_a_usage_error(workspace: Path) -> None:
    result = _run([*EVAL, "--greedy", "--runs", "3"])
    assert result.exit_code == 2 and "[KVS612]" in result.stderr, result.output
    assert "`--greedy` contradicts `--runs 3`" in result.stderr


def test_problems_name_only_the_given_sampling_settings() -> None:
    greedy = GenerationSettings()
    assert greedy.problems() == []  # defaults are not flags
    assert greedy.problems({"seed", "max_new_tokens"}) == []
    assert len(greedy.problems({"temperature", "top_p"})) == 2
    assert GenerationSettings(sample=True).problems(set(SAMPLING_ONLY)) == []


@pytest.mark.parametrize("maximum", [-1, 0])
def test_an_invalid_maximum_is_one_problem_not_two(maximum: int) -> None:
    """`--max-new-tokens -1` once; not also "min_new_tokens 0 exceeds it"."""
    problems = GenerationSettings(max_new_tokens=maximum).problems({"max_new_tokens"})
    assert problems == [f"`--max-new-tokens {maximum}` must be at least 1"]


def test_minimum_above_a_valid_maximum_is_named() -> None:
    problems = GenerationSettings(max_new_tokens=4, min_new_tokens=9).problems()
    assert problems == ["`--min-new-tokens 9` must not exceed `max_new_tokens` (4)"]


# --- the model's context -------------------------------------------------------------------

CONTEXT = 48  # positions of the tiny model below: generating up to it takes milliseconds


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A tiny Llama with a context of CONTEXT positions, loaded and saved as a directory."""
    model, tokenizer = make_tiny_model("llama")
    model.config.max_position_embeddings = CONTEXT
    path = tmp_path_factory.mktemp("small-context")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model, tokenizer, path


def test_context_overflow_is_exact_at_the_boundary() -> None:
    class Config:
        max_position_embeddings = 10

    class Model:
        config = Config()

    assert context_overflow(Model(), 4, 6) is None
    assert "exceed the model's context of 10 tokens" in (context_overflow(Model(), 4, 7) or "")
    assert context_overflow(object(), 10**6, 10**6) is None  # no context stated: no check


def test_generate_texts_refuses_past_the_context_and_fills_it_exactly(small) -> None:
    """The Python API and `kvsl run`: KVS463 one token past; exactly full generates."""
    from kvsl.engine.offline import generate_texts

    model, tokenizer, _ = small
    prompts = [[1, 2, 3], [1, 2, 3, 4, 5]]  # the longest is 5 tokens, 6 with the offset
    with pytest.raises(KvslError) as err:
        generate_texts(model, tokenizer, prompts, offset_id=4,
                       settings=GenerationSettings(max_new_tokens=CONTEXT - 5))  # fmt: skip
    [diagnostic] = err.value.diagnostics
    assert diagnostic.code == "KVS463" and err.value.exit_code == 2
    assert "the longest prompt (6 tokens)" in diagnostic.message
    assert diagnostic.help == f"lower `--max-new-tokens` to {CONTEXT - 6} or less"
    settings = GenerationSettings(max_new_tokens=CONTEXT - 6, min_new_tokens=CONTEXT - 6)
    texts = generate_texts(model, tokenizer, prompts, offset_id=4, settings=settings)
    assert len(texts) == 2


def test_eval_generator_refuses_past_the_context_counting_the_cot_prefix(small) -> None:
    """`kvsl eval` and `kvsl tune` (and the scripts) generate through this generator."""
    from kvsl.eval.methods import Generator, cot_method, plain_method

    model, tokenizer, _ = small
    generator = Generator(model, tokenizer, batch_size=2)
    question = "Which colour is the sky?"
    fed = len(generator.prompt_ids(question, plain_method()))
    # Plain fits exactly; CoT feeds its assistant prefix too, so the same budget overflows.
    plain = generator.generate(plain_method(), [question],
                               GenerationSettings(max_new_tokens=CONTEXT - fed))  # fmt: skip
    assert len(plain) == 1
    with pytest.raises(KvslError) as err:
        generator.generate(cot_method(), [question], GenerationSettings(max_new_tokens=CONTEXT - fed))
    assert err.value.diagnostics[0].code == "KVS463"


def test_run_eval_and_tune_refuse_past_the_context_with_a_usage_error(small, tmp_path: Path) -> None:
    _, _, path = small
    arc = tmp_path / "arc.jsonl"
    arc.write_text(json.dumps({"id": "q", "question": {"stem": "Red?", "choices": [
        {"text": "yes", "label": "A"}, {"text": "no", "label": "B"}]}, "answerKey": "A"}) + "\n")
    eval_args = ["eval", "--model", str(path), "--benchmark", "arc", "--data", str(arc),
                 "--methods", "plain", "--threads", "1", "--device", "cpu",
                 "--out", str(tmp_path / "out"), "--max-new-tokens", str(CONTEXT)]  # fmt: skip
    result = _run(eval_args)
    assert result.exit_code == 2, result.output
    assert "[KVS463]" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out" / "results.jsonl").exists() or not (
        tmp_path / "out" / "results.jsonl"
    ).read_text()  # nothing generated
    spec = tmp_path / "s.kvs"
    (tmp_path / "traces.jsonl").write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES[:4]))
    spec.write_text(SPEC.format(model=path, generate="").replace("pairs = 4", "pairs = 2"))
    result = _run(["run", str(spec), "-p", "hi", "--device", "cpu", "--threads", "1",
                   "--max-new-tokens", str(CONTEXT)])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "[KVS463]" in result.stderr and "Traceback" not in result.output
    dev = Path(__file__).parent / "tune" / "fixtures" / "dev.jsonl"
    scored = tmp_path / "scored.kvs"  # tune scores adherence: a built-in style's name
    scored.write_text(spec.read_text().replace('style "hostile"', 'style "step-by-step"'))
    result = _run(["tune", str(scored), "--dev", str(dev), "--values", "0,4", "--start", "2",
                   "--repetition-penalties", "1", "--device", "cpu", "--threads", "1",
                   "--out", str(tmp_path / "tune"), "--max-new-tokens", str(CONTEXT)])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "[KVS463]" in result.stderr and "Traceback" not in result.output


def test_refuse_past_context_words_a_prompt_that_fills_the_context_alone(small) -> None:
    model, _, _ = small
    with pytest.raises(KvslError) as err:
        refuse_past_context(model, [CONTEXT], 1)
    assert err.value.diagnostics[0].help == "shorten the prompt: it fills the model's context by itself"
