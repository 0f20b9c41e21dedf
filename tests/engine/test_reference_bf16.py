"""kvsl in bf16 (`--precision bf16`, `extract { precision = bf16 }`) against the reference.

bf16 rounds every cached key and value to 8 significant bits, and a padded batch rounds
differently from a prompt alone, so bf16 tokens are not the fp32 reference's, nor even
the same across batchings. What must hold, and is tested on the tiny word Llama:

- `kvsl build` of a bf16 spec: vectors within bf16 rounding of the fp32 reference's
  (each entry within 2^-6 of the largest cached key / value, i.e. 4 units of bf16
  rounding of it, and a cosine >= 0.999 per layer), and not equal to them (bf16 ran);
- `kvsl run --precision bf16`, one prompt at a time: the reference run on the same bf16
  model, with the same vectors (kvsl adds c·S computed in float32 and cast to the cache's
  dtype, as the reference does), token for token, steered and `--compare`'s plain column;
- coefficient 0 is kvsl's own plain bf16 generation bit for bit: `--value 0` in padded
  batches, an empty edit through the steered path (prefill `T`, edit nothing, feed `o`)
  against one pass over `T + [o]` in the same batch, and `kvsl.steered` at coefficient 0
  around `model.generate` against the same `generate` unsteered.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import reference_steering as ref
import torch
from tiny_models import PAD_ID, word_model
from typer.testing import CliRunner
from word_workspace import MODEL_SEED, stacked, style_spec, text_of, write_workspace

import kvsl
from kvsl.cli import app
from kvsl.engine.artifact import load_artifact
from kvsl.engine.contrast import build_contrast_pairs
from kvsl.engine.generate import generate_batch
from kvsl.engine.models import kv_geometry
from kvsl.engine.steer import resolve_edit
from kvsl.lang import load_plan
from kvsl.lang.plan import GenerationSettings

PROMPTS = ["w1 w2 w3 w4 w5 w6 w7 w8", "w9", "w70 w71 w72 w73 w74 w75 w76 w77 w78", "w82 w83"]
MAX_NEW = 8
ON_THIS_CPU = ["--device", "cpu", "--threads", "1"]
BF16_UNIT = 2.0**-8  # bf16's unit roundoff: 8 significant bits


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bf16-reference")
    model, tokenizer = write_workspace(root)
    spec = style_spec(root, "bf", precision="bf16", max_new_tokens=MAX_NEW)
    _cli("build", spec, "--quiet", *ON_THIS_CPU)
    [artifact] = (root / ".kvsl" / "artifacts").glob("bf-*.safetensors")
    return {
        "root": root,
        "spec": spec,
        "artifact": artifact,
        "model": model,
        "tokenizer": tokenizer,
    }


def _cli(*args: Any) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _pairs(workspace: dict[str, Any]) -> list[tuple[list[int], list[int]]]:
    tokenizer = workspace["tokenizer"]
    pairs = []
    for pair in build_contrast_pairs(load_plan(workspace["spec"])):
        demos = [{"question": d.question, "steps": d.steps, "answer": d.answer} for d in pair.demos]
        positive, negative = ref.contrast_messages(pair.target.question, demos)
        pairs.append(
            (ref.chat_prompt_ids(tokenizer, positive), ref.chat_prompt_ids(tokenizer, negative))
        )
    return pairs


def test_bf16_vectors_are_the_fp32_reference_within_bf16_rounding(workspace):
    vectors = load_artifact(workspace["artifact"])
    assert vectors.manifest["precision"] == "bf16"
    keys, values = stacked(vectors)
    pairs = _pairs(workspace)
    expected_keys, expected_values = ref.extract(workspace["model"], pairs)
    # what is rounded: the cached keys and values the differences are taken of
    cached = [ref.last_position_kv(workspace["model"], ids) for pair in pairs for ids in pair]
    for got, expected, part in ((keys, expected_keys, 0), (values, expected_values, 1)):
        scale = max(float(kv[part].abs().max()) for kv in cached)
        torch.testing.assert_close(got, expected, atol=4 * BF16_UNIT * scale, rtol=0)
        assert not torch.equal(got, expected)  # it really ran in bf16
        for layer in range(1, vectors.num_layers):  # layer 0's values are exactly 0
            cosine = torch.nn.functional.cosine_similarity(
                got[layer].flatten(), expected[layer].flatten(), dim=0
            )
            assert cosine >= 0.999, (part, layer, float(cosine))
    assert float(values[0].abs().max()) == 0.0


def _bf16_model() -> Any:
    """The workspace's model as `--precision bf16` loads it: the fp32 weights cast."""
    return word_model("llama", seed=MODEL_SEED).to(torch.bfloat16)


def _run(workspace: dict[str, Any], *flags: Any) -> list[dict[str, str]]:
    prompts = [arg for p in PROMPTS for arg in ("--prompt", p)]
    result = _cli(
        "run", workspace["spec"], *prompts, "--precision", "bf16", "--compare",
        "--format", "json", *ON_THIS_CPU, *flags,
    )  # fmt: skip
    return json.loads(result.stdout)["results"]


def test_bf16_run_one_prompt_at_a_time_equals_the_reference_on_the_bf16_model(workspace):
    records = _run(workspace, "--batch-size", 1)
    model, tokenizer = _bf16_model(), workspace["tokenizer"]
    keys, values = stacked(load_artifact(workspace["artifact"]))
    offset = ref.offset_id(tokenizer)
    coefficients = {1: (0.0, 300.0), 2: (0.0, 300.0)}
    prompts = [ref.chat_prompt_ids(tokenizer, _user(p)) for p in PROMPTS]
    steered = [
        ref.steered_greedy(model, p, offset, keys, values, coefficients, MAX_NEW) for p in prompts
    ]
    plain = [ref.plain_greedy(model, [*p, offset], MAX_NEW) for p in prompts]
    assert steered != plain
    assert [r["steered"] for r in records] == [text_of(tokenizer, ids) for ids in steered]
    assert [r["plain"] for r in records] == [text_of(tokenizer, ids) for ids in plain]


def test_bf16_coefficient_zero_is_kvsl_plain_bf16_bit_for_bit(workspace):
    records = _run(workspace, "--value", 0, "--batch-size", 3)  # padded batches of 3 and 1
    assert [r["steered"] for r in records] == [r["plain"] for r in records]
    # the steered path with an empty edit (T, nothing added, then o) against one pass over
    # T + [o], all four prompts left-padded into one batch
    model, tokenizer = _bf16_model(), workspace["tokenizer"]
    vectors = load_artifact(workspace["artifact"])
    empty = resolve_edit(vectors, {1: (0.0, 0.0), 2: (0.0, 0.0)}, kv_geometry(model))
    assert empty.is_empty
    prompts = [ref.chat_prompt_ids(tokenizer, _user(p)) for p in PROMPTS]
    settings = GenerationSettings(max_new_tokens=MAX_NEW)
    offset = ref.offset_id(tokenizer)
    edited = generate_batch(
        model, tokenizer, prompts, settings=settings, offset_id=offset, edit=empty
    )
    plain = generate_batch(model, tokenizer, prompts, settings=settings, offset_id=offset)
    assert [list(r) for r in edited] == [list(r) for r in plain]
    # `kvsl.steered` at coefficient 0 around the caller's own `generate` (the prefill split
    # in two passes) against the same `generate` unsteered
    inputs = kvsl.steering_inputs(tokenizer, PROMPTS, vectors)
    options = {"max_new_tokens": MAX_NEW, "do_sample": False, "pad_token_id": PAD_ID}
    with kvsl.steered(model, vectors, {1: (0.0, 0.0), 2: (0.0, 0.0)}, tokenizer=tokenizer):
        steered = model.generate(**inputs, **options)
    assert torch.equal(steered, model.generate(**inputs, **options))
