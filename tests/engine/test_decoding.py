"""Decoding controls: transformers' own logits processors, one settings type, fair comparisons.

`repetition_penalty`, `no_repeat_ngram_size`, `min_new_tokens` and `top_k` are
GenerationConfig fields; these tests check that kvsl hands them to transformers (the output
equals transformers' own `generate` with the same arguments), that coefficient 0 still
reproduces plain generation token for token with a penalty set, and that plain and steered
generations of one command share the settings.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
import tiny_models as tiny
import torch
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.engine.generate import GenerationSettings, chat_prompt, generate_batch
from kvsl.engine.steer import resolve_edit
from kvsl.lang import load_plan
from kvsl.lang.plan import DECODING_CONTROLS, Plan

OFFSET = 7  # "\n" in the tiny vocabulary
PENALISED = GenerationSettings(max_new_tokens=16, repetition_penalty=1.8, no_repeat_ngram_size=3)


@pytest.fixture(scope="module")
def tok():
    return tiny.word_tokenizer()


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def model(request):
    return tiny.word_model(request.param)


def _reference(model, rows, **kwargs):
    """transformers' own greedy `generate` over T + [o], one prompt at a time."""
    outs = []
    for row in rows:
        ids = torch.tensor([[*row, OFFSET]])
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=0, **kwargs
        )
        new = out[0, ids.shape[1] :].tolist()
        outs.append(new[: new.index(2)] if 2 in new else new)
    return outs


def test_controls_are_transformers_own_and_coefficient_zero_stays_plain(model, tok):
    rows = [chat_prompt(tok, p) for p in tiny.WORD_PROMPTS]
    expected = _reference(
        model, rows, max_new_tokens=16, repetition_penalty=1.8, no_repeat_ngram_size=3
    )
    unpenalised = _reference(model, rows, max_new_tokens=16)
    assert expected != unpenalised  # the penalty does change this model's output
    zero = resolve_edit(tiny.word_vectors(), {1: (0.0, 0.0), 2: (0.0, 0.0)})
    for row, want in zip(rows, expected, strict=True):
        plain = generate_batch(model, tok, [row], settings=PENALISED, offset_id=OFFSET)
        steered_at_zero = generate_batch(
            model, tok, [row], settings=PENALISED, offset_id=OFFSET, edit=zero
        )
        assert plain == steered_at_zero == [want]


def test_no_repeat_ngram_and_min_new_tokens_hold(tok):
    model = tiny.word_model("llama")
    rows = [chat_prompt(tok, p) for p in tiny.WORD_PROMPTS]
    edit = resolve_edit(tiny.word_vectors(scale=4.0), {1: (0.0, 8.0), 2: (0.0, 8.0)})
    settings = GenerationSettings(max_new_tokens=24, no_repeat_ngram_size=2, min_new_tokens=20)
    for out in generate_batch(model, tok, rows, settings=settings, offset_id=OFFSET, edit=edit):
        bigrams = list(pairwise(out))
        assert len(bigrams) == len(set(bigrams))
        assert len(out) >= 20


def test_payload_and_plan_hash_are_unchanged_while_the_controls_are_off(tmp_path):
    base = GenerationSettings(max_new_tokens=8, seed=2)
    # The eval cache key part of settings without controls: exactly what it always was.
    assert base.payload() == {"max_new_tokens": 8, "seed": 2, "sample": False}
    assert base.for_run(1, runs=2).payload() == {
        "max_new_tokens": 8,
        "seed": 3,
        "sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
    }
    penalised = GenerationSettings(max_new_tokens=8, seed=2, repetition_penalty=1.2)
    assert penalised.payload()["repetition_penalty"] == 1.2
    assert set(DECODING_CONTROLS) <= set(GenerationSettings.__dataclass_fields__)

    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps(t) + "\n" for t in tiny.TINY_TRACES), encoding="utf-8")
    spec = tmp_path / "s.kvs"
    spec.write_text(tiny.tiny_spec("smollm2-135m"), encoding="utf-8")
    plain_plan = load_plan(spec)
    # The hash of a plan without controls leaves them out (plans written before keep theirs).
    data = plain_plan.to_dict()
    for key in ("vector_hash", "plan_hash", "spec_path"):
        data.pop(key)
    for name in DECODING_CONTROLS:
        data["generate"].pop(name)  # type: ignore[union-attr]
    # Likewise the query-pool and prefix fields at their defaults (kvsl.lang.plan).
    for block, fields in (
        ("contrast", ("questions", "questions_sha256", "question_format")),
        ("extract", ("prefix",)),
    ):
        for name in fields:
            data[block].pop(name)  # type: ignore[union-attr]
    from kvsl.lang.plan import _digest

    assert plain_plan.plan_hash == _digest(data)
    text = spec.read_text(encoding="utf-8").rstrip().removesuffix("}")
    spec.write_text(
        text + "  generate {\n    repetition_penalty = 1.15\n    no_repeat_ngram_size = 4\n"
        "    min_new_tokens = 3\n    mode = sample\n    top_k = 20\n  }\n}\n",
        encoding="utf-8",
    )
    tuned = load_plan(spec)
    assert (tuned.generate.repetition_penalty, tuned.generate.no_repeat_ngram_size) == (1.15, 4)
    assert (tuned.generate.min_new_tokens, tuned.generate.top_k) == (3, 20)
    assert tuned.plan_hash != plain_plan.plan_hash
    assert tuned.vector_hash == plain_plan.vector_hash  # decoding never touches the vectors
    assert Plan.from_dict(tuned.to_dict()) == tuned


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("repetition_penalty = 0", "KVS109"),
        ('repetition_penalty = "high"', "KVS107"),
        ("no_repeat_ngram_size = 2.5", "KVS107"),
        ("no_repeat_ngram_size = -1", "KVS109"),
        ("max_new_tokens = 8\n    min_new_tokens = 9", "KVS135"),
        ("repetition_penalty = 0.9", "KVS136"),
        ("no_repeat_ngram_size = 1", "KVS137"),
        ("top_k = 5", "KVS125"),
    ],
)
def test_the_checker_codes_bad_controls(tmp_path, body, code):
    from kvsl.lang import compile_spec

    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in tiny.TINY_TRACES), encoding="utf-8"
    )
    spec = tmp_path / "s.kvs"
    text = tiny.tiny_spec("smollm2-135m").rstrip().removesuffix("}")
    spec.write_text(text + f"  generate {{\n    {body}\n  }}\n}}\n", encoding="utf-8")
    _, diagnostics = compile_spec(spec)
    assert code in {d.code for d in diagnostics}


# --- kvsl run: flags, and plain and steered share the settings ---------------------------


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("decoding")
    model, tokenizer = tiny.make_tiny_model("llama")
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    (root / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in tiny.TINY_TRACES), encoding="utf-8"
    )
    (root / "s.kvs").write_text(
        tiny.tiny_spec(root / "model", pairs=3, max_new_tokens=10), encoding="utf-8"
    )
    return root


def _run(*args: str):
    return CliRunner().invoke(app, ["run", *map(str, args)])


def test_run_flags_reach_both_columns_of_compare(spec_dir, monkeypatch):
    import kvsl.engine.offline as offline

    seen: list[GenerationSettings] = []
    real = offline.generate_texts

    def spy(*args, **kwargs):
        seen.append(kwargs["settings"])
        return real(*args, **kwargs)

    monkeypatch.setattr(offline, "generate_texts", spy)
    result = _run(spec_dir / "s.kvs", "--prompt", "Why is the sky blue?", "--compare",
                  "--repetition-penalty", "1.3", "--no-repeat-ngram-size", "3",
                  "--min-new-tokens", "2", "--format", "json")
    assert result.exit_code == 0, result.output
    assert len(seen) == 2 and seen[0] == seen[1]  # steered, then plain: one settings value
    assert (seen[0].repetition_penalty, seen[0].no_repeat_ngram_size) == (1.3, 3)
    generation = json.loads(result.stdout)["generation"]
    assert generation["repetition_penalty"] == 1.3 and generation["min_new_tokens"] == 2


def test_run_value_zero_with_a_penalty_is_plain(spec_dir):
    result = _run(spec_dir / "s.kvs", "--prompt", "Why is the sky blue?", "--compare",
                  "--value", "0", "--repetition-penalty", "1.5", "--format", "json")
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)["results"]
    assert record["steered"] == record["plain"]


@pytest.mark.parametrize(
    "args",
    [
        ["--repetition-penalty", "0"],
        ["--no-repeat-ngram-size", "-1"],
        ["--min-new-tokens", "-2"],
        ["--min-new-tokens", "50", "--max-new-tokens", "8"],
    ],
)
def test_run_bad_control_flags_exit_2(spec_dir, args):
    result = _run(spec_dir / "s.kvs", "--prompt", "Hi", *args)
    assert result.exit_code == 2, result.output
    assert "[KVS457]" in result.stderr


# --- kvsl eval: every method decodes alike --------------------------------------------------


def test_eval_methods_share_the_decoding_and_take_the_spec_controls(spec_dir, tmp_path):
    from kvsl.eval.pipeline import EvalRequest, effective_decode

    fixtures = Path(__file__).parents[1] / "eval" / "fixtures"
    spec = spec_dir / "s.kvs"
    tuned = tmp_path / "tuned.kvs"
    text = spec.read_text(encoding="utf-8").replace(
        "mode = greedy", "mode = greedy\n    repetition_penalty = 1.25"
    )
    tuned.write_text(text.replace('"traces.jsonl"', f'"{spec_dir / "traces.jsonl"}"'), "utf-8")
    plan = load_plan(tuned)
    request = EvalRequest(target=str(tuned), benchmark=None, data=None,
                          spec_controls=tuple(DECODING_CONTROLS))
    assert effective_decode(request, plan).repetition_penalty == 1.25
    given = EvalRequest(target=str(tuned), benchmark=None, data=None,
                        decode=GenerationSettings(repetition_penalty=1.1),
                        spec_controls=("no_repeat_ngram_size",))
    assert effective_decode(given, plan).repetition_penalty == 1.1  # the flag wins

    result = CliRunner().invoke(app, [
        "eval", str(tuned), "--data", str(fixtures / "gsm8k.jsonl"), "--methods", "plain,cache",
        "--max-new-tokens", "3", "--limit", "2", "--out", str(tmp_path / "out"),
        "--no-repeat-ngram-size", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["decoding"]["repetition_penalty"] == 1.25  # from the spec
    assert report["decoding"]["no_repeat_ngram_size"] == 3  # from the flag
    bad = CliRunner().invoke(app, [
        "eval", str(tuned), "--data", str(fixtures / "gsm8k.jsonl"), "--methods", "plain",
        "--repetition-penalty", "-1"])
    assert bad.exit_code == 2 and "KVS612" in bad.output


def test_sampling_has_no_hidden_top_k(tok):
    """An unset `top_k` means no top-k at all, not generate's default of 50 (or the model's).

    On this 128-word model with flat, hot logits a top-50 cut changes what is sampled, while
    a top-k of the whole vocabulary cuts nothing: the unset case must equal the latter.
    """
    model = tiny.word_model("llama")
    rows = [chat_prompt(tok, p) for p in tiny.WORD_PROMPTS]
    vocab = model.config.vocab_size

    def sampled(top_k: int) -> list[list[int]]:
        settings = GenerationSettings(
            max_new_tokens=24, sample=True, temperature=3.0, top_p=1.0, seed=7, top_k=top_k
        )
        return generate_batch(model, tok, rows, settings=settings, offset_id=OFFSET)

    unset = sampled(0)
    assert unset == sampled(vocab)
    assert unset != sampled(50)
