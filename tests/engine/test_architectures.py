"""`kvsl build` / `kvsl run` on every decoder-only family a user may point `model =` at.

Each architecture is a tiny random model (2 layers, hidden size 64) built from its config
with the byte tokenizer of `tests/support/tiny_models.py`, saved with `save_pretrained` to a
directory, as a user's model would be. For each one that kvsl steers: `kvsl build` and
`kvsl run --compare` exit 0, the vectors are (kv_heads, head_dim) per layer as the model's
own cache holds them (1 KV head for multi-query attention), coefficient 0 reproduces plain
generation token for token, and a nonzero edit changes only the last prompt position of the
chosen layers, by exactly c·S, and reaches the next token's logits. Sliding-window and
hybrid caches (Mistral with a window, Gemma 2, Gemma 3) are exercised with prompts longer
than the window. Caches kvsl cannot edit exactly (latent attention, recurrent state) are
refused with KVS303, exit 3, no traceback. An architecture the installed transformers
lacks is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_models import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    TINY_TRACES,
    byte_tokenizer,
    random_vectors,
    tiny_spec,
)
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.engine.artifact import load_artifact
from kvsl.engine.generate import GenerationSettings, generate_batch
from kvsl.engine.geometry import cache_kwarg
from kvsl.engine.inputs import left_pad
from kvsl.engine.models import LoadedModel, load_model
from kvsl.engine.prompting import chat_messages, prompt_ids
from kvsl.engine.steer import apply_edit, prefill, resolve_edit
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import ModelRef

_GQA = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
}
_GPT2_LIKE = {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 2048}
WINDOW = 8  # sliding window (tokens): every prompt below is longer

# name → (transformers model_type, config fields, expected kv_heads)
STEERABLE: dict[str, tuple[str, dict[str, Any], int]] = {
    "gpt2": ("gpt2", _GPT2_LIKE, 4),
    "gpt_neox": ("gpt_neox", {**_GQA, "num_key_value_heads": None}, 4),
    "mistral-sliding": ("mistral", {**_GQA, "sliding_window": WINDOW}, 2),
    "gemma": ("gemma", {**_GQA, "head_dim": 16}, 2),
    "gemma2-hybrid": ("gemma2", {**_GQA, "head_dim": 16, "sliding_window": WINDOW}, 2),
    "gemma3-hybrid": (
        "gemma3_text",
        {
            **_GQA,
            "head_dim": 16,
            "sliding_window": WINDOW,
            "layer_types": ["sliding_attention", "full_attention"],
        },
        2,
    ),
    "phi3": ("phi3", _GQA, 2),
    "qwen3": ("qwen3", {**_GQA, "head_dim": 16}, 2),
    "olmo": ("olmo", _GQA, 2),
    "olmo2": ("olmo2", _GQA, 2),
    "stablelm": ("stablelm", _GQA, 2),
    "granite": ("granite", _GQA, 2),
    # Falcon's new decoder caches its 2 KV heads repeated to the 4 query heads
    "falcon": (
        "falcon",
        {**_GQA, "new_decoder_architecture": True, "num_kv_heads": 2, "num_key_value_heads": None},
        4,
    ),
    # multi-query attention: one KV head, whatever `num_kv_heads` in the config says
    "falcon-mqa": (
        "falcon",
        {**_GQA, "multi_query": True, "new_decoder_architecture": False, "num_key_value_heads": None},
        1,
    ),
    "gpt_bigcode-mqa": ("gpt_bigcode", {**_GPT2_LIKE, "multi_query": True}, 1),
}

# name → (model_type, config fields, what the KVS303 message names)
REFUSED: dict[str, tuple[str, dict[str, Any], str]] = {
    # multi-head latent attention: caches a compressed latent (16) and a rope key (8)
    "deepseek_v3-mla": (
        "deepseek_v3",
        {
            **_GQA,
            "num_key_value_heads": 4,
            "kv_lora_rank": 16,
            "q_lora_rank": 32,
            "qk_nope_head_dim": 8,
            "qk_rope_head_dim": 8,
            "v_head_dim": 12,
            "first_k_dense_replace": 2,
            "n_routed_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 32,
        },
        "values of shape",
    ),
    "mamba": ("mamba", {"hidden_size": 64, "num_hidden_layers": 2}, "LinearAttentionLayer"),
}

PROMPTS = ["Why is the sky blue?", "What is 7 * 8? Think it through."]


def _save(model_type: str, fields: dict[str, Any], path: Path, chat_template: bool = True) -> Path:
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        pytest.skip(f"transformers here has no `{model_type}`")
    tokenizer = byte_tokenizer()
    if not chat_template:
        tokenizer.chat_template = None
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        tie_word_embeddings=False,
        **{k: v for k, v in fields.items() if v is not None},
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _cli(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def _spec(folder: Path, model: Path, value: float = 4) -> Path:
    (folder / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8"
    )
    spec = folder / "tiny.kvs"
    spec.write_text(tiny_spec(model, pairs=2, value=value, max_new_tokens=4), encoding="utf-8")
    return spec


@pytest.fixture(scope="module", params=sorted(STEERABLE))
def arch(request, tmp_path_factory) -> dict[str, Any]:
    """One steerable architecture: its directory, `kvsl build` output, loaded model, vectors."""
    name = request.param
    model_type, fields, kv_heads = STEERABLE[name]
    root = tmp_path_factory.mktemp(name)
    model_dir = _save(model_type, fields, root / "model")
    spec = _spec(root, model_dir)
    built = _cli("build", spec)
    assert built.exit_code == 0, built.output
    [artifact] = (root / ".kvsl" / "artifacts").glob("*.safetensors")
    loaded = load_model(ModelRef(name, "directory", str(model_dir)))
    return {
        "name": name,
        "spec": spec,
        "loaded": loaded,
        "vectors": load_artifact(artifact),
        "kv_heads": kv_heads,
    }


def _prompts(loaded: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
    """T of two prompts of different lengths (both longer than the window), left-padded."""
    rows = [prompt_ids(loaded.tokenizer, chat_messages(p)) for p in PROMPTS]
    assert min(len(r) for r in rows) > WINDOW
    return left_pad(rows, 0)  # (batch, seq)


def test_vectors_have_the_shape_of_the_models_own_cache(arch):
    loaded, vectors = arch["loaded"], arch["vectors"]
    ids, mask = _prompts(loaded)
    with torch.inference_mode():
        cache = prefill(loaded.model, ids, mask)
    shapes = {(layer.keys.shape[1], layer.keys.shape[3]) for layer in cache.layers}
    assert shapes == {(arch["kv_heads"], loaded.geometry.head_dim)}
    assert loaded.geometry.kv_heads == arch["kv_heads"]
    assert vectors.num_layers == len(cache.layers) == 2
    for layer in range(2):
        expected = (arch["kv_heads"], loaded.geometry.head_dim)
        assert tuple(vectors.keys[layer].shape) == tuple(vectors.values[layer].shape) == expected
    assert float(vectors.values[1].abs().sum()) > 0  # the contrast was measured, not zeros


def test_cli_run_compare_steers_with_the_specs_coefficients(arch):
    result = _cli("run", arch["spec"], "--prompt", PROMPTS[1], "--compare", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["coefficients"] == {"1": [0.0, 4.0]}
    [record] = data["results"]
    assert isinstance(record["steered"], str) and isinstance(record["plain"], str)


def test_coefficient_0_reproduces_plain_generation_token_for_token(arch):
    loaded, vectors = arch["loaded"], arch["vectors"]
    rows = [prompt_ids(loaded.tokenizer, chat_messages(p)) for p in PROMPTS]
    offset = loaded.tokenizer.encode("\n", add_special_tokens=False)[0]
    settings = GenerationSettings(max_new_tokens=6)
    empty = resolve_edit(vectors, {1: (0.0, 0.0)}, loaded.geometry)
    assert empty.is_empty
    plain = generate_batch(loaded.model, loaded.tokenizer, rows, settings=settings,
                           offset_id=offset)
    zero = generate_batch(loaded.model, loaded.tokenizer, rows, settings=settings,
                          offset_id=offset, edit=empty)
    assert zero == plain
    assert all(len(tokens) > 0 for tokens in plain)


def test_an_edit_changes_only_the_last_prompt_position_of_its_layers_by_c_s(arch):
    loaded, vectors = arch["loaded"], arch["vectors"]
    model = loaded.model
    ids, mask = _prompts(loaded)
    edit = resolve_edit(vectors, {1: (0.5, 4.0)}, loaded.geometry)
    with torch.inference_mode():
        plain = prefill(model, ids, mask)
        steered = prefill(model, ids, mask)
        apply_edit(steered, edit)
    for index, (before, after) in enumerate(zip(plain.layers, steered.layers, strict=True)):
        for name in ("keys", "values"):
            old, new = getattr(before, name), getattr(after, name)  # (batch, kv_heads, seq, hd)
            assert torch.equal(old[:, :, :-1], new[:, :, :-1])
            deltas = edit.keys if name == "keys" else edit.values
            if index in deltas:
                expected = old[:, :, -1] + deltas[index].to(old.dtype)
                assert torch.equal(new[:, :, -1], expected)
                assert not torch.equal(new[:, :, -1], old[:, :, -1])
            else:
                assert torch.equal(new[:, :, -1], old[:, :, -1])
    if any(plain.is_sliding):  # the window is in play: fewer tokens kept than prompted
        kept = [layer.keys.shape[2] for layer in plain.layers]
        assert min(kept) < ids.shape[1]
    # The edited position is the last prompt token: what one prompt alone caches last.
    alone = torch.tensor([prompt_ids(loaded.tokenizer, chat_messages(PROMPTS[1]))])
    with torch.inference_mode():
        single = prefill(model, alone, torch.ones_like(alone))
    for batched, own in zip(plain.layers, single.layers, strict=True):
        torch.testing.assert_close(batched.keys[1, :, -1], own.keys[0, :, -1])
    # ... and the next token sees it: the offset token's logits move.
    offset = loaded.tokenizer.encode("\n", add_special_tokens=False)[0]
    step = torch.full((2, 1), offset)
    full_mask = torch.cat([mask, torch.ones_like(step)], dim=1)
    positions = mask.sum(dim=1, keepdim=True)
    with torch.inference_mode():
        logits = [
            model(input_ids=step, attention_mask=full_mask, position_ids=positions,
                  use_cache=True, **{cache_kwarg(model): cache}).logits[:, -1]
            for cache in (plain, steered)
        ]
    assert not torch.equal(logits[0], logits[1])


def test_the_python_api_steers_as_kvsl_generate_does(arch):
    """`kvsl.steered` around the model's own `generate` (the cache `generate` builds for this
    architecture, sliding layers included) gives what `kvsl.generate` gives."""
    import kvsl

    loaded, vectors = arch["loaded"], arch["vectors"]
    model, tokenizer = loaded.model, loaded.tokenizer
    coefficients = {1: (0.0, 4.0)}
    expected = kvsl.generate(model, tokenizer, PROMPTS, vectors, coefficients=coefficients,
                             max_new_tokens=6)
    inputs = kvsl.steering_inputs(tokenizer, PROMPTS, vectors)
    with kvsl.steered(model, vectors, coefficients, tokenizer=tokenizer):
        out = model.generate(**inputs, max_new_tokens=6, do_sample=False, pad_token_id=PAD_ID,
                             eos_token_id=EOS_ID)
    texts = [
        tokenizer.decode(row, skip_special_tokens=True)
        for row in out[:, inputs["input_ids"].shape[1] :].tolist()
    ]
    assert texts == expected
    assert "forward" not in model.__dict__


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_cache_kvsl_cannot_edit_exactly_is_refused_with_kvs303(name, tmp_path):
    model_type, fields, said = REFUSED[name]
    model_dir = _save(model_type, fields, tmp_path / "model")
    with pytest.raises(KvslError) as caught:
        load_model(ModelRef(name, "directory", str(model_dir)))
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "KVS303" and said in diagnostic.message
    result = _cli("build", _spec(tmp_path, model_dir))
    assert result.exit_code == 3, result.output
    assert "error[KVS303]" in result.output and "Traceback" not in result.output
    assert str(model_dir) in result.output  # the location


def test_a_model_without_a_chat_template_builds_and_runs_with_kvs470(tmp_path, capsys):
    model_type, fields, _ = STEERABLE["qwen3"]
    model_dir = _save(model_type, fields, tmp_path / "model", chat_template=False)
    loaded = load_model(ModelRef("plain", "directory", str(model_dir)))
    assert "warning[KVS470]" in capsys.readouterr().err
    assert any("no chat template" in note for note in loaded.notes)
    spec = _spec(tmp_path, model_dir)
    built = _cli("build", spec)
    assert built.exit_code == 0 and "warning[KVS470]" in built.output, built.output
    result = _cli("run", spec, "--prompt", PROMPTS[0], "--compare", "--value", "0",
                  "--format", "json")
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)["results"]
    assert record["steered"] == record["plain"]


def test_a_static_cache_is_refused_not_edited_at_its_unused_end(tmp_path):
    from transformers import StaticCache

    model_type, fields, _ = STEERABLE["qwen3"]
    loaded = load_model(ModelRef("q", "directory", str(_save(model_type, fields, tmp_path))))
    ids, mask = _prompts(loaded)
    cache = StaticCache(config=loaded.model.config, max_cache_len=ids.shape[1] + 8)
    with torch.inference_mode():
        loaded.model(input_ids=ids, attention_mask=mask, use_cache=True,
                     **{cache_kwarg(loaded.model): cache})
    edit = resolve_edit(random_vectors(loaded.geometry), {1: (0.0, 4.0)}, loaded.geometry)
    with pytest.raises(KvslError) as caught:
        apply_edit(cache, edit)
    assert caught.value.diagnostics[0].code == "KVS459"
