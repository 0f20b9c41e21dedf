"""The event loop and the model thread never share a tokenizer.

HF fast tokenizers are not safe to use from two threads at once (a Rust object that one
call may reconfigure while another borrows it: "RuntimeError: Already borrowed"). The
server's event loop tokenizes prompts and decodes answers with the catalog's tokenizer;
the model thread decodes (stop strings, streamed text) with its own copy.
"""

from __future__ import annotations

import threading
import time

import pytest
import tiny_models as tiny

from kvsl.engine.continuous import RowDecoder
from kvsl.engine.generate import chat_prompt
from kvsl.engine.models import loaded_from_objects
from kvsl.engine.rows import Row
from kvsl.lang.plan import ModelRef
from kvsl.serve.app import ServerConfig, create_app
from kvsl.serve.batcher import visible_text
from kvsl.serve.catalog import Catalog
from kvsl.serve.schemas import Limits, parse_generation

ROUNDS = 150
SECONDS = 60.0


@pytest.fixture(scope="module")
def catalog():
    loaded = loaded_from_objects(tiny.word_model(), tiny.word_tokenizer(), ModelRef("w", "directory", "/w"))
    return Catalog("w", loaded, {})


@pytest.mark.parametrize("batching", ["continuous", "dynamic"])
def test_the_model_thread_has_its_own_tokenizer(catalog, batching):
    server = create_app(catalog, ServerConfig(batching=batching)).state.server
    own = server.worker_tokenizer
    shared = catalog.loaded.tokenizer
    assert own is not shared and own.backend_tokenizer is not shared.backend_tokenizer
    ids = chat_prompt(shared, "w1 w2 w3")
    assert own.decode(ids) == shared.decode(ids)  # the same tokenizer, a separate object
    if batching == "continuous":
        assert server.decoder.tokenizer is own


def test_prompts_and_decoding_on_two_threads_at_once(catalog):
    """Hammer both paths at once, as the server runs them: the loop parses requests (chat
    template, tokenizing), the model thread decodes rows with stop strings and streams."""
    server = create_app(catalog, ServerConfig()).state.server
    decoder: RowDecoder = server.decoder
    errors: list[BaseException] = []
    deadline = time.monotonic() + SECONDS
    parsed: list[list[int]] = []

    def loop_side() -> None:
        body = {"model": "w", "messages": [{"role": "user", "content": "w1 w2 w3 w4 " * 8}]}
        for _ in range(ROUNDS):
            if time.monotonic() > deadline:
                return
            try:
                parsed.append(parse_generation(body, "chat", catalog, Limits()).prompt)
                catalog.loaded.tokenizer.decode(parsed[-1], skip_special_tokens=True)
            except BaseException as err:
                errors.append(err)
                return

    def model_side() -> None:
        prompt = chat_prompt(decoder.tokenizer, "w5 w6")
        for _ in range(ROUNDS // 10):
            if time.monotonic() > deadline:
                return
            try:
                row = Row(prompt, max_new_tokens=10, stop=("never appears",))
                decoder.join([row])
                while decoder.rows:
                    decoder.step()
                    visible_text(decoder.tokenizer, row, final=False)
            except BaseException as err:
                errors.append(err)
                return

    threads = [threading.Thread(target=loop_side), threading.Thread(target=model_side)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 30)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    assert len(parsed) > 10 and all(p == parsed[0] for p in parsed)
