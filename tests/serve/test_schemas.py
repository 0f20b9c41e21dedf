"""Request checking in process: defaults from the spec, edits, bounds (no server needed)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import tiny_models as tiny

from kvsl.engine.models import loaded_from_objects
from kvsl.lang.plan import GeneratePlan, ModelRef
from kvsl.serve.catalog import Catalog, ServedStyle
from kvsl.serve.schemas import ApiError, Limits, parse_body, parse_generation

OFFSET = 7


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    traces = tmp_path_factory.mktemp("schemas") / "traces.jsonl"
    traces.write_text("".join(json.dumps(t) + "\n" for t in tiny.TINY_TRACES))
    plan = tiny.make_plan(traces)
    sampled = dataclasses.replace(plan, style="sampled",
                                  generate=GeneratePlan(max_new_tokens=9, sample=True, seed=4))
    model = tiny.word_model()
    loaded = loaded_from_objects(model, tiny.word_tokenizer(), ModelRef("w", "directory", "/w"))
    styles = {
        name: ServedStyle(name, p, tiny.word_vectors(), OFFSET, traces)
        for name, p in (("tiny-style", plan), ("sampled", sampled))
    }
    return Catalog("w", loaded, styles)


def _parse(catalog, limits=None, **body):
    body.setdefault("messages", [{"role": "user", "content": "w1 w2"}])
    return parse_generation(body, "chat", catalog, limits or Limits())


def test_a_style_request_takes_the_spec_defaults(catalog):
    gen = _parse(catalog, model="w:tiny-style")
    assert gen.offset_id == OFFSET and gen.edit is not None
    assert gen.edit.layers == [1, 2] and not gen.edit.keys  # layers 1.., c_k = 0
    assert gen.max_tokens == 256 and not gen.sample and gen.prompt_tokens == len(gen.prompt) + 1


def test_a_sampling_spec_samples_with_its_seed_unless_the_request_says_otherwise(catalog):
    gen = _parse(catalog, model="w:sampled")
    assert gen.sample and gen.seed == 4 and gen.max_tokens == 9
    assert _parse(catalog, model="w:sampled", temperature=0.5).seed is None
    assert not _parse(catalog, model="w:sampled", temperature=0).sample


def test_settings_override_the_spec(catalog):
    zero = _parse(catalog, model="w:tiny-style", kvsl={"value": 0})
    assert zero.edit is None and zero.offset_id == OFFSET  # coefficient 0: T + [o], no edit
    one = _parse(catalog, model="w", kvsl={"style": "tiny-style", "layers": [2], "key": 1.5})
    assert one.edit.layers == [2] and set(one.edit.keys) == {2}
    plain = _parse(catalog, model="w")
    assert plain.offset_id is None and plain.edit is None and plain.style is None


def test_prompt_and_max_tokens_past_the_models_context_are_refused(catalog):
    context = catalog.loaded.model.config.max_position_embeddings
    with pytest.raises(ApiError) as err:
        _parse(catalog, Limits(max_new_tokens=10 * context), model="w", max_tokens=context)
    assert err.value.status == 400 and err.value.code == "context_length_exceeded"


@pytest.mark.parametrize(
    "body",
    [
        {"model": "w", "temperature": 0, "top_p": 0.5},  # greedy by the request
        {"model": "w:tiny-style", "top_p": 0.5},  # greedy by the style's spec
        {"model": "w:sampled", "temperature": 0, "top_p": 0.2},
    ],
)
def test_top_p_with_greedy_decoding_is_refused_as_the_cli_refuses_it(catalog, body):
    """`kvsl run --greedy --top-p 0.5` is a usage error (`GenerationSettings.problems`)."""
    with pytest.raises(ApiError) as err:
        _parse(catalog, **body)
    assert err.value.status == 400 and err.value.param == "top_p"
    assert "no effect with greedy decoding" in err.value.body()["error"]["message"]


def test_top_p_that_asks_for_nothing_or_with_sampling_is_accepted(catalog):
    assert not _parse(catalog, model="w", temperature=0, top_p=1).sample  # OpenAI clients' default
    assert _parse(catalog, model="w", temperature=0.5, top_p=0.5).top_p == 0.5
    assert _parse(catalog, model="w:sampled", top_p=0.5).sample


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 10**400), ("top_p", -(10**400)), ("temperature", float("nan")),
     ("top_p", float("inf"))],
)
def test_numbers_past_a_floats_range_are_400_not_a_crash(catalog, field, value):
    """An integer past a float's range (JSON allows 10**400) raised OverflowError (a 500)."""
    with pytest.raises(ApiError) as err:
        _parse(catalog, model="w", **{field: value})
    assert err.value.status == 400 and err.value.body()["error"]["param"] == field
    with pytest.raises(ApiError) as err:
        _parse(catalog, model="w:tiny-style", kvsl={"value": value})
    assert err.value.status == 400


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"null", b'"text"', b"{"])
def test_bodies_that_are_not_json_objects_are_400(raw):
    with pytest.raises(ApiError) as err:
        parse_body(raw)
    assert err.value.status == 400 and err.value.body()["error"]["code"] == "invalid_json"
