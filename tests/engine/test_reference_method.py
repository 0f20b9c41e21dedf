"""kvsl against an independent reference implementation of the method.

The reference (tests/support/reference_steering.py) builds contrast prompts, extracts and
steers one prompt at a time with plain transformers (a `DynamicCache` edited by hand, a
hand-written greedy loop). On tiny random models of six architectures (Llama, Qwen2,
Mistral with a sliding window, Gemma, Gemma 2 hybrid, Phi-3; 3 layers, GQA, fp32, the word
tokenizer so that a text names its tokens one for one), kvsl must give:

- the same positive / negative prompt ids for each of its contrast pairs (with and without
  a system prompt and a prefix), and the same steering input `T + [o]`;
- the same vectors (<= 1e-5), from `kvsl build` and from the Python API, one pair at a time
  and in left-padded batches whose size does not divide N, with and without prefix sharing;
- the same steered greedy tokens, from the Python API (kept-full batches of prompts of
  different lengths, rows leaving early at a stop string), the engine's static left-padded
  batch, `kvsl.steered` around the caller's own `generate`, and `kvsl run`, for c_v > 0,
  c_k > 0, a layer subset, a repetition penalty, and coefficient 0 (= plain generation
  from `T + [o]`).

kvsl's pair *selection* (which traces are targets and demos, seeded) is its own convention:
the reference takes kvsl's choice and builds everything from the traces' text itself.
The embedded SmolLM2-135M test (marked `embedded`) does the same on the shipped traces.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import reference_steering as ref
import torch
from tiny_models import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    TINY_TRACES,
    WORD_LAYERS,
    WORDS,
    byte_tokenizer,
    make_plan,
    random_vectors,
    tiny_model,
    word_tokenizer,
)
from typer.testing import CliRunner
from word_workspace import WORD_TRACES

import kvsl
from kvsl.cli import app
from kvsl.engine.artifact import load_artifact
from kvsl.engine.contrast import ContrastPair, build_contrast_pairs, tokenize_pairs
from kvsl.engine.extract import extract_vectors
from kvsl.engine.generate import generate_batch
from kvsl.engine.models import LoadedModel, kv_geometry, loaded_from_objects
from kvsl.engine.steer import resolve_edit
from kvsl.engine.vectors import SteeringVectors
from kvsl.lang.plan import GenerationSettings, ModelRef, Plan

_GQA = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": WORD_LAYERS,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
}
WINDOW = 8  # sliding window (tokens) of the windowed models: every prompt is longer
# Architectures beside tiny_model's Llama and Qwen2: transformers model type → config fields.
OTHER_ARCHS: dict[str, tuple[str, dict[str, Any]]] = {
    "mistral-window": ("mistral", {**_GQA, "sliding_window": WINDOW}),
    "gemma": ("gemma", {**_GQA, "head_dim": 16}),
    "gemma2-hybrid": ("gemma2", {**_GQA, "head_dim": 16, "sliding_window": WINDOW}),
    "phi3": ("phi3", _GQA),
}
ARCHS = ["llama", "qwen2", *OTHER_ARCHS]

PAIRS, SHOTS = 5, 2  # N = 5: no batch size below tried divides it
# Prompts of different lengths (templated: 3 tokens + the words), two longer than WINDOW.
PROMPTS = [
    "w1 w2 w3 w4 w5 w6 w7 w8",
    "w9",
    "w70 w71 w72 w73 w74 w75 w76 w77 w78 w79 w80 w81",
    "w82 w83 w84",
]
MAX_NEW = 8


def _model(arch: str) -> Any:
    if arch in ("llama", "qwen2"):
        return tiny_model(arch, vocab_size=len(WORDS), num_layers=WORD_LAYERS, seed=3)
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type, fields = OTHER_ARCHS[arch]
    if model_type not in CONFIG_MAPPING:
        pytest.skip(f"transformers here has no `{model_type}`")
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(WORDS),
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        tie_word_embeddings=False,
        **fields,
    )
    torch.manual_seed(3)
    return AutoModelForCausalLM.from_config(config).eval()


# The CLI in fp32 on the CPU, as the reference runs (`auto` picks bf16 on AMX CPUs and a GPU).
ON_THIS_CPU = ["--device", "cpu", "--precision", "fp32", "--threads", 1]


def _cli(*args: Any) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _spec_text(model_dir: Path, batch_size: int, system_prompt: str = "", prefix: str = "") -> str:
    system = f'    system_prompt = "{system_prompt}"\n' if system_prompt else ""
    prefixed = f'    prefix = "{prefix}"\n' if prefix else ""
    return (
        'style "reference" {\n  description = "kvsl against the reference"\n'
        f'  model = "{model_dir}"\n'
        f'  contrast {{\n    traces = "traces.jsonl"\n    pairs = {PAIRS}\n'
        f"    shots = {SHOTS}\n    select = random\n    seed = 0\n{system}  }}\n"
        f"  extract {{\n    batch_size = {batch_size}\n    precision = fp32\n{prefixed}  }}\n"
        "  steer {\n    layers = [1..]\n    key = 0\n    value = 6\n  }\n"
        f"  generate {{\n    max_new_tokens = {MAX_NEW}\n    mode = greedy\n  }}\n}}\n"
    )


@pytest.fixture(scope="module", params=ARCHS)
def case(request, tmp_path_factory) -> dict[str, Any]:
    """One architecture: its model directory, spec (batch 2), `kvsl build` artifact, plan."""
    arch = request.param
    root = tmp_path_factory.mktemp(arch)
    model, tokenizer = _model(arch), word_tokenizer()
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    (root / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in WORD_TRACES), encoding="utf-8"
    )
    spec = root / "reference.kvs"
    spec.write_text(_spec_text(root / "model", batch_size=2), encoding="utf-8")
    plan = Plan.from_dict(json.loads(_cli("plan", spec, "--format", "json").stdout))
    loaded = loaded_from_objects(model, tokenizer, ModelRef(arch, "directory", str(root / "model")))
    artifact = None
    # transformers gives a Qwen2 directory its own tokenizer class, which drops the word
    # tokenizer's pre-tokenizer: the CLI (which loads the directory) is tested on the others
    if _round_trips(root / "model", tokenizer):
        _cli("build", spec, "--quiet", *ON_THIS_CPU)
        [artifact] = (root / ".kvsl" / "artifacts").glob("*.safetensors")
    return {"arch": arch, "spec": spec, "artifact": artifact, "plan": plan, "loaded": loaded}


def _round_trips(model_dir: Path, tokenizer: Any) -> bool:
    from transformers import AutoTokenizer

    text = " ".join(WORDS[7:]) + "\n"
    return AutoTokenizer.from_pretrained(model_dir)(text).input_ids == tokenizer(text).input_ids


def _artifact(case: dict[str, Any]) -> Path:
    if case["artifact"] is None:
        pytest.skip(f"`{case['arch']}`'s model directory does not load the word tokenizer")
    return case["artifact"]


def _reference_pair(tokenizer: Any, pair: ContrastPair) -> tuple[list[int], list[int]]:
    """The reference's prompt ids for kvsl's choice of target and demos."""
    demos = [{"question": d.question, "steps": d.steps, "answer": d.answer} for d in pair.demos]
    positive, negative = ref.contrast_messages(pair.target.question, demos)
    return ref.chat_prompt_ids(tokenizer, positive), ref.chat_prompt_ids(tokenizer, negative)


def _reference_vectors(case: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    loaded: LoadedModel = case["loaded"]
    pairs = build_contrast_pairs(case["plan"])
    assert len(pairs) == PAIRS
    return ref.extract(loaded.model, [_reference_pair(loaded.tokenizer, p) for p in pairs])


def _stacked(vectors: SteeringVectors) -> tuple[torch.Tensor, torch.Tensor]:
    """(layers, kv_heads, head_dim) keys and values of kvsl's vectors."""
    layers = range(vectors.num_layers)
    return (
        torch.stack([vectors.keys[i] for i in layers]),
        torch.stack([vectors.values[i] for i in layers]),
    )


def _assert_same_vectors(vectors: SteeringVectors, expected: tuple[torch.Tensor, torch.Tensor]):
    keys, values = _stacked(vectors)
    assert keys.shape == expected[0].shape == (WORD_LAYERS, 2, 16)
    torch.testing.assert_close(keys, expected[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(values, expected[1], atol=1e-5, rtol=0)
    # not trivially zero: the demos' steps reach the last prompt token above layer 0
    assert expected[1][1:].abs().max() > 1e-4


def test_contrast_prompts_are_the_chat_template_of_k_demos_and_the_question(case):
    tokenizer = case["loaded"].tokenizer
    pairs = build_contrast_pairs(case["plan"])
    for pair, tokenized in zip(pairs, tokenize_pairs(pairs, tokenizer), strict=True):
        assert len(pair.demos) == SHOTS and pair.target not in pair.demos
        positive, negative = _reference_pair(tokenizer, pair)
        assert list(tokenized.positive) == positive
        assert list(tokenized.negative) == negative
        assert positive != negative
    # what kvsl feeds a steered generation: T (chat template, generation prompt) + [o]
    inputs = kvsl.steering_inputs(
        tokenizer, PROMPTS[0], random_vectors(kv_geometry(case["loaded"].model))
    )
    expected = [*ref.chat_prompt_ids(tokenizer, _user(PROMPTS[0])), ref.offset_id(tokenizer)]
    assert inputs["input_ids"][0].tolist() == expected


# Byte-level traces whose text the word tokenizer would blur: punctuation, spaces, a
# multi-line step, an answer that already ends with a period, a system prompt.
BYTE_TRACES = [
    *TINY_TRACES,
    {"id": "e1", "question": "Half of 7?", "steps": ["7 / 2 = 3.5."], "answer": "3.5."},
    {"id": "e2", "question": " Spaces? ", "steps": ["One.\nTwo, on a new line."], "answer": " B "},
]


def test_contrast_prompts_byte_for_byte(tmp_path):
    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps(t) + "\n" for t in BYTE_TRACES), encoding="utf-8")
    plan = make_plan(traces, pairs=len(BYTE_TRACES), shots=3, seed=2)
    plan = replace(plan, contrast=replace(plan.contrast, system_prompt="Be brief."))
    tokenizer = byte_tokenizer()
    pairs = build_contrast_pairs(plan)
    for pair, tokenized in zip(pairs, tokenize_pairs(pairs, tokenizer), strict=True):
        demos = [{"question": d.question, "steps": d.steps, "answer": d.answer} for d in pair.demos]
        positive, negative = ref.contrast_messages(pair.target.question, demos, "Be brief.")
        assert list(tokenized.positive) == ref.chat_prompt_ids(tokenizer, positive)
        assert list(tokenized.negative) == ref.chat_prompt_ids(tokenizer, negative)
    texts = {tokenizer.decode(t.positive) for t in tokenize_pairs(pairs, tokenizer)}
    assert any("The answer is 3.5.<|im_end|>" in text for text in texts)


def test_built_vectors_equal_the_reference_mean_differences(case):
    """`kvsl build` (batches of 2 for N = 5) against the reference, one pair at a time."""
    _assert_same_vectors(load_artifact(_artifact(case)), _reference_vectors(case))


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("share_prefix", [True, False])
def test_api_vectors_equal_the_reference_in_any_batching(case, batch_size, share_prefix):
    vectors = extract_vectors(
        case["loaded"],
        case["plan"],
        batch_size=batch_size,
        share_prefix=share_prefix,
        progress=False,
    )
    _assert_same_vectors(vectors, _reference_vectors(case))


def _user(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


# (c_k, c_v) per steered layer: c_v > 0 on [1..], c_k > 0 too, a subset with layer 0, zero.
COEFFICIENTS = {
    "value": {1: (0.0, 4.0), 2: (0.0, 4.0)},
    "key-and-value": {1: (3.0, 2.0), 2: (3.0, -2.0)},
    "layers-0-and-2": {0: (1.0, 3.0), 2: (0.0, -6.0)},
    "zero": {1: (0.0, 0.0), 2: (0.0, 0.0)},
}


def _reference_generations(
    loaded: LoadedModel,
    vectors: SteeringVectors,
    coefficients: dict[int, tuple[float, float]],
    *,
    prompts: list[str] = PROMPTS,
    max_new: int = MAX_NEW,
    repetition_penalty: float = 1.0,
) -> list[list[int]]:
    """The reference's steered greedy tokens for each of `prompts` as a user turn."""
    keys, values = _stacked(vectors)
    offset = ref.offset_id(loaded.tokenizer, vectors.offset_token)
    return [
        ref.steered_greedy(
            loaded.model,
            ref.chat_prompt_ids(loaded.tokenizer, _user(p)),
            offset,
            keys,
            values,
            coefficients,
            max_new,
            repetition_penalty=repetition_penalty,
        )
        for p in prompts
    ]


def _text(tokenizer: Any, ids: list[int]) -> str:
    """What a generation's token ids read as (end of sequence dropped)."""
    return tokenizer.decode([i for i in ids if i != EOS_ID], skip_special_tokens=True)


@pytest.mark.parametrize("name", sorted(COEFFICIENTS))
def test_steered_generations_equal_the_reference_token_for_token(case, name):
    loaded: LoadedModel = case["loaded"]
    coefficients = COEFFICIENTS[name]
    vectors = random_vectors(kv_geometry(loaded.model), seed=7, scale=2.0)
    expected = _reference_generations(loaded, vectors, coefficients)
    plain = [
        ref.plain_greedy(
            loaded.model,
            [*ref.chat_prompt_ids(loaded.tokenizer, _user(p)), ref.offset_id(loaded.tokenizer)],
            MAX_NEW,
        )
        for p in PROMPTS
    ]
    if name == "zero":
        assert expected == plain  # the reference's own identity
    else:
        assert expected != plain  # the edit changes something, so the comparison means it
    # the Python API: batches of 2 kept full, prompts of different lengths
    texts = kvsl.generate(
        loaded.model,
        loaded.tokenizer,
        PROMPTS,
        vectors,
        coefficients=coefficients,
        max_new_tokens=MAX_NEW,
        batch_size=2,
    )
    assert texts == [_text(loaded.tokenizer, ids) for ids in expected]
    # the engine's static batch: all four prompts left-padded into one
    edit = resolve_edit(vectors, coefficients, kv_geometry(loaded.model))
    rows = generate_batch(
        loaded.model,
        loaded.tokenizer,
        [ref.chat_prompt_ids(loaded.tokenizer, _user(p)) for p in PROMPTS],
        settings=GenerationSettings(max_new_tokens=MAX_NEW),
        offset_id=ref.offset_id(loaded.tokenizer),
        edit=edit,
    )
    assert [list(r) for r in rows] == expected
    # `kvsl.steered` around the caller's own `model.generate` (left-padded T + [o])
    inputs = kvsl.steering_inputs(loaded.tokenizer, PROMPTS, vectors)
    with kvsl.steered(loaded.model, vectors, coefficients, tokenizer=loaded.tokenizer):
        out = loaded.model.generate(
            **inputs, max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=PAD_ID
        )
    new_tokens = out[:, inputs["input_ids"].shape[1] :].tolist()
    assert [row[: len(ids)] for row, ids in zip(new_tokens, expected, strict=True)] == expected


def test_rows_that_stop_early_leave_the_batch_without_changing_the_others(case):
    """A stop string ends some rows after a few tokens: in `kvsl.generate`'s kept-full
    batches the next prompt joins while the others go on, and every text is still the
    reference's, cut before the stop string."""
    loaded: LoadedModel = case["loaded"]
    vectors = random_vectors(kv_geometry(loaded.model), seed=7, scale=2.0)
    coefficients = COEFFICIENTS["value"]
    prompts = PROMPTS + [f"{p} w100" for p in PROMPTS]
    full = [
        _text(loaded.tokenizer, ids)
        for ids in _reference_generations(
            loaded, vectors, coefficients, prompts=prompts, max_new=2 * MAX_NEW
        )
    ]
    # the stop: a word some rows generate early, others late or never
    words = [w for text in full for w in text.split()[1:]]
    stop = max(
        set(words), key=lambda w: (sum(w in text for text in full) < len(full), words.count(w))
    )
    assert any(stop not in text for text in full) and any(stop in text for text in full)
    texts = kvsl.generate(
        loaded.model,
        loaded.tokenizer,
        prompts,
        vectors,
        coefficients=coefficients,
        max_new_tokens=2 * MAX_NEW,
        batch_size=3,
        stop=[stop],
    )
    assert texts == [text.split(stop)[0] for text in full]


def test_repetition_penalty_counts_the_prompt_as_the_reference_does(case):
    """transformers' repetition penalty (`generate { repetition_penalty }`) over T + [o] and
    what is generated, in plain and steered decoding alike."""
    loaded: LoadedModel = case["loaded"]
    vectors = random_vectors(kv_geometry(loaded.model), seed=7, scale=2.0)
    coefficients = COEFFICIENTS["key-and-value"]
    expected = _reference_generations(loaded, vectors, coefficients, repetition_penalty=1.5)
    texts = kvsl.generate(
        loaded.model,
        loaded.tokenizer,
        PROMPTS,
        vectors,
        coefficients=coefficients,
        max_new_tokens=MAX_NEW,
        batch_size=2,
        repetition_penalty=1.5,
    )
    assert texts == [_text(loaded.tokenizer, ids) for ids in expected]
    unpenalised = _reference_generations(loaded, vectors, coefficients)
    assert expected != unpenalised  # the penalty changes something here


@pytest.mark.parametrize(
    ("flags", "coefficients"),
    [
        (["--value", "300"], {1: (0.0, 300.0), 2: (0.0, 300.0)}),
        (["--key", "200", "--value", "0", "--layers=-1"], {2: (200.0, 0.0)}),
        (["--value", "0"], {1: (0.0, 0.0), 2: (0.0, 0.0)}),
    ],
)
def test_kvsl_run_equals_the_reference(case, flags, coefficients):
    """`kvsl run ARTIFACT` with the built vectors (small on a random model, hence the
    large coefficients) against the reference steering with the same vectors."""
    loaded: LoadedModel = case["loaded"]
    artifact = _artifact(case)
    prompt_flags = [arg for p in PROMPTS for arg in ("--prompt", p)]
    result = _cli(
        "run",
        artifact,
        *prompt_flags,
        *flags,
        "--compare",
        "--format",
        "json",
        "--batch-size",
        3,
        *ON_THIS_CPU,
    )
    records = json.loads(result.stdout)["results"]
    expected = _reference_generations(loaded, load_artifact(artifact), coefficients)
    assert [r["steered"] for r in records] == [_text(loaded.tokenizer, ids) for ids in expected]
    # `--compare`'s plain column: T + [o] without the edit, in the same batches
    offset = ref.offset_id(loaded.tokenizer)
    plain = [
        ref.plain_greedy(
            loaded.model, [*ref.chat_prompt_ids(loaded.tokenizer, _user(p)), offset], MAX_NEW
        )
        for p in PROMPTS
    ]
    assert [r["plain"] for r in records] == [_text(loaded.tokenizer, ids) for ids in plain]
    assert (expected == plain) == all(c == (0.0, 0.0) for c in coefficients.values())


def test_kvsl_run_spec_applies_its_per_range_coefficients_as_the_reference(case):
    """`kvsl run SPEC` with the spec's own coefficients: value 300 on [1..], and an
    `at [-1..-1]` block that sets both coefficients of the last layer."""
    loaded: LoadedModel = case["loaded"]
    artifact = _artifact(case)
    spec = case["spec"].parent / "per-range.kvs"
    spec.write_text(
        case["spec"]
        .read_text(encoding="utf-8")
        .replace("value = 6\n", "value = 300\n    at [-1..-1] { key = 100  value = -300 }\n"),
        encoding="utf-8",
    )
    prompt_flags = [arg for p in PROMPTS for arg in ("--prompt", p)]
    result = _cli("run", spec, *prompt_flags, "--format", "json", *ON_THIS_CPU)
    data = json.loads(result.stdout)
    assert data["coefficients"] == {"1": [0.0, 300.0], "2": [100.0, -300.0]}
    coefficients = {1: (0.0, 300.0), 2: (100.0, -300.0)}
    expected = _reference_generations(loaded, load_artifact(artifact), coefficients)
    texts = [r["steered"] for r in data["results"]]
    assert texts == [_text(loaded.tokenizer, ids) for ids in expected]


def test_system_prompt_and_prefix_reach_prompts_vectors_and_steering(case):
    """`contrast { system_prompt }` and `extract { prefix }` (the paper's prefix variant):
    in every contrast prompt, in the vectors, and in every generation with those vectors."""
    loaded: LoadedModel = case["loaded"]
    tokenizer = loaded.tokenizer
    spec = case["spec"].parent / "system-prefix.kvs"
    spec.write_text(
        _spec_text(
            case["spec"].parent / "model", batch_size=2, system_prompt="w99 w98", prefix="w90 w91"
        ),
        encoding="utf-8",
    )
    plan = Plan.from_dict(json.loads(_cli("plan", spec, "--format", "json").stdout))
    pairs = build_contrast_pairs(plan)
    expected_pairs = []
    for pair, tokenized in zip(
        pairs, tokenize_pairs(pairs, tokenizer, plan.extract.prefix), strict=True
    ):
        demos = [{"question": d.question, "steps": d.steps, "answer": d.answer} for d in pair.demos]
        positive, negative = ref.contrast_messages(pair.target.question, demos, "w99 w98")
        expected = (
            ref.chat_prompt_ids(tokenizer, positive, "w90 w91"),
            ref.chat_prompt_ids(tokenizer, negative, "w90 w91"),
        )
        assert (list(tokenized.positive), list(tokenized.negative)) == expected
        assert expected[0][-2:] == tokenizer("w90 w91").input_ids
        expected_pairs.append(expected)
    vectors = extract_vectors(loaded, plan, batch_size=2, progress=False)
    _assert_same_vectors(vectors, ref.extract(loaded.model, expected_pairs))
    # steering with these vectors: T has the system prompt and the prefix, then [o]
    coefficients = {1: (0.0, 300.0), 2: (0.0, 300.0)}
    keys, values = _stacked(vectors)
    offset = ref.offset_id(tokenizer)
    messages = [[{"role": "system", "content": "w99 w98"}, *_user(p)] for p in PROMPTS]
    expected_ids = [
        ref.steered_greedy(
            loaded.model,
            ref.chat_prompt_ids(tokenizer, m, "w90 w91"),
            offset,
            keys,
            values,
            coefficients,
            MAX_NEW,
        )
        for m in messages
    ]
    texts = kvsl.generate(
        loaded.model,
        tokenizer,
        PROMPTS,
        vectors,
        coefficients=coefficients,
        max_new_tokens=MAX_NEW,
        batch_size=3,
    )
    assert texts == [_text(tokenizer, ids) for ids in expected_ids]


SHIPPED_TRACES = Path(__file__).resolve().parents[2] / "specs" / "traces" / "step_by_step.jsonl"


@pytest.mark.embedded
def test_embedded_model_equals_the_reference(tmp_path):
    """SmolLM2-135M: 3 pairs x 2 shots of the shipped step-by-step traces, vectors in
    batches of 2 against the reference's, then one steered answer (the shipped spec's
    value 5 on layers 1.., repetition penalty 1.1) token for token."""
    from kvsl.engine.models import embedded_gguf_path, load_model
    from kvsl.lang import load_plan
    from kvsl.lang.diagnostics import KvslError

    try:
        embedded_gguf_path("smollm2-135m")
    except KvslError as err:
        pytest.skip(str(err))
    spec = tmp_path / "embedded.kvs"
    spec.write_text(
        _spec_text(Path("unused"), batch_size=2)
        .replace('model = "unused"', 'model = "smollm2-135m"')
        .replace('"traces.jsonl"', json.dumps(str(SHIPPED_TRACES)))
        .replace(f"pairs = {PAIRS}", "pairs = 3")
        .replace("value = 6", "value = 5"),
        encoding="utf-8",
    )
    plan = load_plan(spec)
    loaded = load_model(plan.model, device="cpu")
    model, tokenizer = loaded.model, loaded.tokenizer
    pairs = build_contrast_pairs(plan)
    expected_pairs = [_reference_pair(tokenizer, pair) for pair in pairs]
    assert [
        (list(t.positive), list(t.negative)) for t in tokenize_pairs(pairs, tokenizer)
    ] == expected_pairs
    vectors = extract_vectors(loaded, plan, progress=False)
    expected_keys, expected_values = ref.extract(model, expected_pairs)
    keys, values = _stacked(vectors)
    # fp32 sums over ~350-token prompts of a 576-wide model: keys reach |12|
    torch.testing.assert_close(keys, expected_keys, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(values, expected_values, atol=1e-5, rtol=1e-6)

    prompt = "Which gas do plants absorb from the air? A: oxygen B: nitrogen C: carbon dioxide"
    prompt_ids = ref.chat_prompt_ids(tokenizer, _user(prompt))
    offset = ref.offset_id(tokenizer)
    coefficients = {layer: (0.0, 5.0) for layer in range(1, vectors.num_layers)}
    expected = ref.steered_greedy(
        model, prompt_ids, offset, keys, values, coefficients, 20, repetition_penalty=1.1
    )
    [text] = kvsl.generate(
        model, tokenizer, prompt, vectors, max_new_tokens=20, repetition_penalty=1.1
    )  # the spec's own coefficients, recorded with the vectors
    assert text == _text(tokenizer, expected)
    plain = ref.plain_greedy(model, [*prompt_ids, offset], 20, repetition_penalty=1.1)
    assert expected != plain
