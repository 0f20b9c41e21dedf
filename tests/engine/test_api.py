"""The public Python API: `kvsl.generate`, `kvsl.steered`, `kvsl.steering_inputs`, re-exports."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
import tiny_models as tiny
import torch

import kvsl
from kvsl.engine.generate import TokenStreamer, chat_prompt
from kvsl.lang.diagnostics import KvslError

COEFFICIENTS = {1: (0.0, 6.0), 2: (0.0, 6.0)}


@pytest.fixture(scope="module")
def model():
    return tiny.word_model("qwen2")


@pytest.fixture(scope="module")
def tok():
    return tiny.word_tokenizer()


def _hf_generate(model, ids: list[int], n: int = 10) -> list[int]:
    tensor = torch.tensor([ids])
    out = model.generate(tensor, attention_mask=torch.ones_like(tensor), max_new_tokens=n,
                         do_sample=False, pad_token_id=0)[0, len(ids) :].tolist()
    return out[: out.index(2)] if 2 in out else out


def test_import_kvsl_does_not_import_torch():
    code = "import sys, kvsl; assert callable(kvsl.__getattr__); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_reexports():
    from kvsl.engine.artifact import load_artifact
    from kvsl.engine.vectors import SteeringVectors

    assert kvsl.load_artifact is load_artifact
    assert kvsl.SteeringVectors is SteeringVectors
    assert kvsl.generate is kvsl.steering.generate
    with pytest.raises(AttributeError):
        _ = kvsl.no_such_name


def test_without_vectors_is_plain_generation_from_the_chat_prompt(model, tok):
    [text] = kvsl.generate(model, tok, "w1 w2 w3", max_new_tokens=10)
    assert text == tok.decode(_hf_generate(model, chat_prompt(tok, "w1 w2 w3")),
                              skip_special_tokens=True)


def test_zero_coefficients_equal_plain_generation_with_the_offset_token(model, tok):
    vectors = tiny.word_vectors(scale=3.0)
    texts = kvsl.generate(model, tok, tiny.WORD_PROMPTS, vectors, coefficients={1: (0.0, 0.0)},
                          max_new_tokens=10)
    expected = [
        tok.decode(_hf_generate(model, [*chat_prompt(tok, p), 7]), skip_special_tokens=True)
        for p in tiny.WORD_PROMPTS
    ]
    assert texts == expected
    steered = kvsl.generate(model, tok, tiny.WORD_PROMPTS, vectors, coefficients=COEFFICIENTS,
                            max_new_tokens=10)
    assert steered != expected


def test_coefficients_default_to_the_manifest_and_are_required_otherwise(model, tok):
    vectors = tiny.word_vectors(scale=3.0)
    recorded = replace(vectors, manifest={"coefficients": {"1": [0.0, 6.0], "2": [0.0, 6.0]}})
    assert kvsl.generate(model, tok, "w4 w5", recorded, max_new_tokens=8) == kvsl.generate(
        model, tok, "w4 w5", vectors, coefficients=COEFFICIENTS, max_new_tokens=8
    )
    with pytest.raises(KvslError) as err:
        kvsl.generate(model, tok, "w4 w5", vectors, max_new_tokens=8)
    assert err.value.diagnostics[0].code == "KVS461"


def test_steered_context_manager_with_steering_inputs_equals_generate(model, tok):
    vectors = tiny.word_vectors(scale=3.0)
    expected = kvsl.generate(model, tok, tiny.WORD_PROMPTS, vectors, coefficients=COEFFICIENTS,
                             max_new_tokens=10)
    inputs = kvsl.steering_inputs(tok, tiny.WORD_PROMPTS, vectors)
    assert bool((inputs["input_ids"][:, -1] == 7).all())  # every row ends with the offset token
    with kvsl.steered(model, vectors, COEFFICIENTS, tokenizer=tok) as edit:
        assert edit.layers == [1, 2]
        out = model.generate(**inputs, max_new_tokens=10, do_sample=False, pad_token_id=0)
    texts = [tok.decode(row, skip_special_tokens=True)
             for row in out[:, inputs["input_ids"].shape[1] :].tolist()]
    assert texts == expected
    assert "forward" not in model.__dict__


def test_streamer_writes_what_generate_returns(model, tok):
    written: list[str] = []
    [text] = kvsl.generate(model, tok, "w9", tiny.word_vectors(), coefficients=COEFFICIENTS,
                           max_new_tokens=8, streamer=TokenStreamer(tok, write=written.append))
    assert "".join(written) == text + "\n"
