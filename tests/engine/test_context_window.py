"""KVS463: a prompt and `max_new_tokens` past the model's context, refused before anything
is generated, also when the job that overflows shares one queue with jobs that fit."""

from __future__ import annotations

import pytest
from tiny_models import make_tiny_model

from kvsl.engine.context_window import context_length, refuse_past_context
from kvsl.eval.methods import Generator, Job, plain_method
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import GenerationSettings

CONTEXT = 48


@pytest.fixture(scope="module")
def small():
    model, tokenizer = make_tiny_model("llama")
    model.config.max_position_embeddings = CONTEXT
    return model, tokenizer


def test_refuse_past_context_names_the_room_left(small) -> None:
    model, _ = small
    assert context_length(model) == CONTEXT
    refuse_past_context(model, [10, 20], CONTEXT - 20)  # exactly full: fine
    with pytest.raises(KvslError) as err:
        refuse_past_context(model, [10, 20], CONTEXT - 19)
    [diagnostic] = err.value.diagnostics
    assert diagnostic.code == "KVS463" and err.value.exit_code == 2
    assert diagnostic.help == f"lower `--max-new-tokens` to {CONTEXT - 20} or less"
    with pytest.raises(KvslError) as err:
        refuse_past_context(model, [CONTEXT], 1)
    assert err.value.diagnostics[0].help.startswith("shorten the prompt")


def test_one_job_past_the_context_stops_the_whole_queue_before_it_starts(small) -> None:
    model, tokenizer = small
    generator = Generator(model, tokenizer, batch_size=2)
    question = "Which colour is the sky?"
    fed = len(generator.prompt_ids(question, plain_method()))
    answered: list[tuple[int, int]] = []
    jobs = [
        Job(plain_method(), [question, "Why?"], GenerationSettings(max_new_tokens=4)),
        Job(plain_method(), [question], GenerationSettings(max_new_tokens=CONTEXT - fed + 1)),
    ]
    with pytest.raises(KvslError) as err:
        generator.generate_jobs(jobs, on_done=lambda j, i, g: answered.append((j, i)))
    assert err.value.diagnostics[0].code == "KVS463"
    assert answered == []  # the job that fits was not started either
    fits = generator.generate_jobs(
        [jobs[0], Job(plain_method(), [question], GenerationSettings(max_new_tokens=CONTEXT - fed))]
    )
    assert [len(answers) for answers in fits] == [2, 1]
