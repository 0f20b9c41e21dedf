"""One-shot KV-cache steering on tiny random Llama and Qwen2 models: exact identities."""

from __future__ import annotations

from dataclasses import replace

import pytest
import tiny_models as tiny
import torch

from kvsl.engine.generate import (
    GenerationSettings,
    TokenStreamer,
    chat_prompt,
    decode,
    generate_batch,
)
from kvsl.engine.inputs import left_pad
from kvsl.engine.models import kv_geometry
from kvsl.engine.steer import (
    apply_edit,
    prefill,
    resolve_edit,
    steered,
)
from kvsl.lang.diagnostics import KvslError

ARCHS = ["llama", "qwen2"]
OFFSET = 7  # "\n" in the tiny vocabulary
GREEDY = GenerationSettings(max_new_tokens=12)


@pytest.fixture(scope="module", params=ARCHS)
def model(request):
    return tiny.word_model(request.param)


@pytest.fixture(scope="module")
def tok():
    return tiny.word_tokenizer()


def _ids(tok, prompts=tiny.WORD_PROMPTS):
    return [chat_prompt(tok, p) for p in prompts]


def _plain_generate(model, rows, max_new_tokens=12):
    """The reference: transformers' own generate over T + [o], one prompt at a time."""
    outs = []
    for row in rows:
        ids = torch.tensor([[*row, OFFSET]])
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=0,
        )
        new = out[0, ids.shape[1] :].tolist()
        outs.append(new[: new.index(2)] if 2 in new else new)
    return outs


def test_zero_coefficients_reproduce_plain_generation_token_for_token(model, tok):
    rows = _ids(tok)
    # Every layer listed with c = 0: the prefill-edit-generate path runs, with an empty edit.
    edit = resolve_edit(tiny.word_vectors(), {0: (0.0, 0.0), 1: (0.0, 0.0), 2: (0.0, 0.0)})
    assert edit.is_empty
    for row, expected in zip(rows, _plain_generate(model, rows), strict=True):
        got = generate_batch(model, tok, [row], settings=GREEDY, offset_id=OFFSET, edit=edit)
        assert got == [expected]


def test_edit_changes_only_the_chosen_layers_at_the_last_position_by_exactly_c_s(model, tok):
    ids, mask = left_pad(_ids(tok), pad_id=0)
    vectors = tiny.word_vectors()
    coefficients = {1: (0.5, 2.0), 2: (0.0, -3.0)}
    with torch.inference_mode():
        cache = prefill(model, ids, mask)
        before = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
        apply_edit(cache, resolve_edit(vectors, coefficients, kv_geometry(model)))
    for index, layer in enumerate(cache.layers):
        for kind, after, old, table in (
            ("keys", layer.keys, before[index][0], vectors.keys),
            ("values", layer.values, before[index][1], vectors.values),
        ):
            c_k, c_v = coefficients.get(index, (0.0, 0.0))
            c = c_k if kind == "keys" else c_v
            # (batch, kv_heads, seq, head_dim): all but the last position are untouched.
            assert torch.equal(after[:, :, :-1], old[:, :, :-1]), (index, kind)
            if c == 0:
                assert torch.equal(after[:, :, -1], old[:, :, -1]), (index, kind)
            else:
                assert torch.equal(after[:, :, -1], old[:, :, -1] + c * table[index]), (index, kind)
                assert not torch.equal(after[:, :, -1], old[:, :, -1])


def test_batched_steered_generation_equals_one_by_one(model, tok):
    rows = _ids(tok)  # four prompts of different lengths → real left padding
    edit = resolve_edit(tiny.word_vectors(scale=2.0), {1: (0.0, 4.0), 2: (0.0, 4.0)})
    batched = generate_batch(model, tok, rows, settings=GREEDY, offset_id=OFFSET, edit=edit)
    single = [
        generate_batch(model, tok, [row], settings=GREEDY, offset_id=OFFSET, edit=edit)[0]
        for row in rows
    ]
    assert batched == single


def test_steering_with_nonzero_vectors_changes_the_output(model, tok):
    rows = _ids(tok)
    edit = resolve_edit(tiny.word_vectors(scale=4.0), {1: (0.0, 8.0), 2: (0.0, 8.0)})
    plain = generate_batch(model, tok, rows, settings=GREEDY, offset_id=OFFSET)
    steered_out = generate_batch(model, tok, rows, settings=GREEDY, offset_id=OFFSET, edit=edit)
    assert plain == _plain_generate(model, rows)
    assert steered_out != plain


def test_context_manager_matches_the_engine_and_restores_the_model(model, tok):
    rows = _ids(tok)
    vectors = tiny.word_vectors(scale=2.0)
    coefficients = {1: (0.0, 4.0), 2: (1.0, 4.0)}
    edit = resolve_edit(vectors, coefficients)
    expected = generate_batch(model, tok, rows, settings=GREEDY, offset_id=OFFSET, edit=edit)
    ids, mask = left_pad([[*row, OFFSET] for row in rows], pad_id=0)
    original_forward = model.forward
    with steered(model, vectors, coefficients, offset_token_id=OFFSET):
        assert "forward" in model.__dict__
        out = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=0
        )
    got = [row[: row.index(2)] if 2 in row else row for row in out[:, ids.shape[1] :].tolist()]
    assert got == expected
    assert "forward" not in model.__dict__
    assert model.forward == original_forward
    assert generate_batch(model, tok, rows, settings=GREEDY, offset_id=OFFSET) == _plain_generate(
        model, rows
    )


def test_context_manager_restores_the_model_after_an_error(model, tok):
    with pytest.raises(KvslError) as err, steered(model, tiny.word_vectors(), {1: (0.0, 1.0)},
                                                  offset_token_id=OFFSET):
        ids = torch.tensor([chat_prompt(tok, "w1 w2")])  # no offset token at the end
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=2,
                       pad_token_id=0)
    assert err.value.diagnostics[0].code == "KVS460"
    assert "forward" not in model.__dict__


def test_vectors_for_another_geometry_are_refused_with_a_code(model):
    four_heads = tiny.random_vectors(replace(tiny.WORD_GEOMETRY, kv_heads=4))
    two_layers = tiny.random_vectors(replace(tiny.WORD_GEOMETRY, num_layers=2))
    with pytest.raises(KvslError) as err:
        resolve_edit(four_heads, {1: (0.0, 1.0)}, kv_geometry(model))
    assert err.value.diagnostics[0].code == "KVS458"
    with pytest.raises(KvslError) as err:
        resolve_edit(two_layers, {1: (0.0, 1.0)}, kv_geometry(model))
    assert err.value.diagnostics[0].code == "KVS458"
    with pytest.raises(KvslError) as err:
        resolve_edit(two_layers, {5: (0.0, 1.0)})
    assert err.value.diagnostics[0].code == "KVS451"


def test_stop_strings_cut_the_text_and_the_stream_shows_the_same(tok):
    model = tiny.word_model("llama")
    row = chat_prompt(tok, "w1 w2 w3")
    settings = GenerationSettings(max_new_tokens=12)
    [full] = generate_batch(model, tok, [row], settings=settings, offset_id=OFFSET)
    text = decode(tok, full)
    stop = text.split(" ")[2]  # the third generated word
    stopped_settings = GenerationSettings(max_new_tokens=12, stop=(stop,))
    written: list[str] = []
    streamer = TokenStreamer(tok, stop=(stop,), write=written.append)
    [short] = generate_batch(
        model, tok, [row], settings=stopped_settings, offset_id=OFFSET, streamer=streamer
    )
    cut = decode(tok, short, (stop,))
    assert cut == text[: text.index(stop)]
    assert len(short) < len(full)
    assert "".join(written) == cut + "\n"


def test_sampling_is_reproducible_with_a_seed_and_leaves_global_rng_alone(tok):
    model = tiny.word_model("qwen2")
    rows = _ids(tok)
    edit = resolve_edit(tiny.word_vectors(), {1: (0.0, 2.0)})
    state = torch.get_rng_state()
    runs = [
        generate_batch(
            model, tok, rows, settings=GenerationSettings(max_new_tokens=10, sample=True,
                                                          temperature=1.5, seed=seed),
            offset_id=OFFSET, edit=edit,
        )
        for seed in (3, 3, 4)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert torch.equal(torch.get_rng_state(), state)


def test_a_cache_without_key_value_tensors_is_refused_with_a_code():
    class RecurrentCache:  # what a state-space model would hand back
        layers = (object(),)

    with pytest.raises(KvslError) as err:
        apply_edit(RecurrentCache(), resolve_edit(tiny.word_vectors(), {0: (0.0, 1.0)}))
    assert err.value.diagnostics[0].code == "KVS459"


def test_steered_generation_without_a_cache_is_refused(model, tok):
    ids = torch.tensor([[*chat_prompt(tok, "w1"), OFFSET]])
    with pytest.raises(KvslError) as err, steered(model, tiny.word_vectors(), {1: (0.0, 1.0)}):
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=2,
                       use_cache=False, pad_token_id=0)
    assert err.value.diagnostics[0].code == "KVS462"


def test_every_run_code_is_documented_and_asserted_by_an_engine_test():
    from pathlib import Path

    from kvsl.lang.codes import CODES
    from kvsl.lang.codes_run import RUN_CODES

    tests = "".join(p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("test_*.py"))
    assert [c.code for c in RUN_CODES] == sorted(c.code for c in RUN_CODES)
    for entry in RUN_CODES:
        assert CODES[entry.code] is entry
        assert 450 <= int(entry.code[3:]) <= 499
        assert entry.title[0].islower() and not entry.title.endswith(".")
        assert entry.explanation.strip() and entry.bad != entry.good
        assert f'"{entry.code}"' in tests or f"[{entry.code}]" in tests, entry.code
