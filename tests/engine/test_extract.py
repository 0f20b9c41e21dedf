"""Extraction: exact against a naive reference, prefix sharing, batching with left padding."""

from __future__ import annotations

import pytest
import torch
from tiny_models import make_plan

from kvsl.engine.contrast import build_contrast_pairs, tokenize_pairs
from kvsl.engine.extract import extract_vectors, layer_cosines
from kvsl.engine.models import cache_kwarg, loaded_from_objects
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import ModelRef


def naive_vectors(model, tokenizer, plan):
    """The paper's loop: full model (LM head included), batch 1, full prompts, read the cache."""
    from transformers import DynamicCache

    pairs = tokenize_pairs(build_contrast_pairs(plan), tokenizer)
    keys, values = None, None
    with torch.inference_mode():
        for pair in pairs:
            last = []
            for ids in (pair.positive, pair.negative):
                cache = DynamicCache(config=model.config)
                model(torch.tensor([list(ids)]), use_cache=True, **{cache_kwarg(model): cache})
                last.append(
                    (
                        torch.stack([layer.keys[0, :, -1] for layer in cache.layers]),
                        torch.stack([layer.values[0, :, -1] for layer in cache.layers]),
                    )
                )
            dk, dv = last[0][0] - last[1][0], last[0][1] - last[1][1]
            keys = dk if keys is None else keys + dk
            values = dv if values is None else values + dv
    assert keys is not None and values is not None
    return keys / len(pairs), values / len(pairs)


@pytest.fixture(params=["llama", "qwen2"])
def loaded(request, tiny_loaded_llama, tiny_loaded_qwen2):
    return tiny_loaded_llama if request.param == "llama" else tiny_loaded_qwen2


def test_matches_naive_reference(loaded, tiny_traces):
    plan = make_plan(tiny_traces, pairs=4, shots=2)
    vectors = extract_vectors(loaded, plan, progress=False)
    ref_keys, ref_values = naive_vectors(loaded.model, loaded.tokenizer, plan)
    assert sorted(vectors.keys) == [0, 1]
    for layer in range(2):
        assert vectors.keys[layer].shape == (2, 16)
        assert vectors.keys[layer].dtype == torch.float32
        torch.testing.assert_close(vectors.keys[layer], ref_keys[layer], atol=1e-5, rtol=0)
        torch.testing.assert_close(vectors.values[layer], ref_values[layer], atol=1e-5, rtol=0)
    # the vectors are not trivially zero above layer 0
    assert vectors.values[1].abs().max() > 1e-3


def test_layer0_value_difference_is_exactly_zero(loaded, tiny_traces):
    # The last prompt token is the same in both prompts and layer-0 values depend on that
    # token alone (no position): the difference must vanish exactly.
    vectors = extract_vectors(loaded, make_plan(tiny_traces, pairs=3, shots=1), progress=False)
    assert torch.count_nonzero(vectors.values[0]) == 0
    assert vectors.keys[0].abs().max() > 0  # keys carry RoPE position, which differs


def test_prefix_sharing_equals_full_prompts(loaded, tiny_traces):
    plan = make_plan(tiny_traces, pairs=4, shots=2)
    pairs = tokenize_pairs(build_contrast_pairs(plan), loaded.tokenizer)
    assert all(p.shared > 10 for p in pairs)  # there is something to share
    shared = extract_vectors(loaded, plan, progress=False, share_prefix=True)
    full = extract_vectors(loaded, plan, progress=False, share_prefix=False)
    assert shared.manifest["stats"]["computed_tokens"] < full.manifest["stats"]["computed_tokens"]
    for layer in range(2):
        torch.testing.assert_close(shared.keys[layer], full.keys[layer], atol=1e-5, rtol=0)
        torch.testing.assert_close(shared.values[layer], full.values[layer], atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch_size", [2, 3, 8])
def test_batched_left_padding_equals_one_by_one(loaded, tiny_traces, batch_size):
    plan = make_plan(tiny_traces, pairs=5, shots=2)
    pairs = tokenize_pairs(build_contrast_pairs(plan), loaded.tokenizer)
    lengths = {len(p.positive) for p in pairs} | {len(p.negative) for p in pairs}
    assert len(lengths) > 3  # prompts of different lengths: padding really happens
    one = extract_vectors(loaded, plan, progress=False, batch_size=1, share_prefix=False)
    batched = extract_vectors(loaded, plan, progress=False, batch_size=batch_size)
    assert batched.manifest["stats"]["batch_size"] == batch_size
    for layer in range(2):
        torch.testing.assert_close(batched.keys[layer], one.keys[layer], atol=1e-5, rtol=0)
        torch.testing.assert_close(batched.values[layer], one.values[layer], atol=1e-5, rtol=0)


def test_bf16_is_close_to_fp32(tiny_loaded_llama, tiny_traces):
    fp32 = extract_vectors(tiny_loaded_llama, make_plan(tiny_traces), progress=False)
    bf16 = extract_vectors(
        tiny_loaded_llama, make_plan(tiny_traces, precision="bf16"), progress=False
    )
    assert bf16.manifest["compute_dtype"] == "bfloat16 (autocast)"
    assert bf16.keys[1].dtype == torch.float32
    cosines = layer_cosines(bf16, fp32)
    assert cosines[0][1] == 1.0  # both exactly zero
    assert min(min(pair) for pair in cosines.values()) > 0.95
    assert bf16.keys[1].ne(fp32.keys[1]).any()  # it really ran in bf16


def test_bf16_model_extracts(tiny_llama, tiny_traces):
    import copy

    model, tokenizer = tiny_llama
    bf16_model = copy.deepcopy(model).to(torch.bfloat16)
    loaded = loaded_from_objects(bf16_model, tokenizer, ModelRef("tiny-llama", "directory", "/t"))
    vectors = extract_vectors(loaded, make_plan(tiny_traces, precision="bf16"), progress=False)
    assert vectors.manifest["compute_dtype"] == "bfloat16"
    assert vectors.values[1].dtype == torch.float32


def test_manifest_describes_the_extraction(tiny_loaded_llama, tiny_traces):
    plan = make_plan(tiny_traces, pairs=4, shots=1)
    vectors = extract_vectors(tiny_loaded_llama, plan, progress=False)
    manifest = vectors.manifest
    assert manifest["vector_hash"] == plan.vector_hash
    assert manifest["pairs"] == 4 and manifest["shots"] == 1
    assert manifest["position"] == {
        "convention": "last_token",
        "offset_token": "\n",
        "offset_token_id": tiny_loaded_llama.tokenizer.encode("\n", add_special_tokens=False)[0],
        "prefix": "",
    }
    assert manifest["geometry"] == {"num_layers": 2, "kv_heads": 2, "head_dim": 16}
    assert manifest["coefficients"] == {"1": [0.0, 6.0]}
    assert manifest["model"] == tiny_loaded_llama.identity


def test_multi_token_offset_is_kvs305(tiny_loaded_llama, tiny_traces):
    import dataclasses

    plan = make_plan(tiny_traces)
    plan = dataclasses.replace(plan, extract=dataclasses.replace(plan.extract, offset_token="ab"))
    with pytest.raises(KvslError) as caught:
        extract_vectors(tiny_loaded_llama, plan, progress=False)
    assert caught.value.diagnostics[0].code == "KVS305"


def test_progress_bar_runs(tiny_loaded_llama, tiny_traces):
    import io

    from rich.console import Console

    out = io.StringIO()
    extract_vectors(
        tiny_loaded_llama, make_plan(tiny_traces, pairs=2), console=Console(file=out, width=100)
    )
    assert "2/2" in out.getvalue()
