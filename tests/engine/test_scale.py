"""Threads, `--precision auto` and `--device-map`: the rules, with detection mocked, and the
identity that a model split over CPU and disk steers exactly like the unsplit model."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiny_models as tiny
import torch
from typer.testing import CliRunner

from kvsl.base.threads import ThreadsError, choose_threads
from kvsl.cli import app
from kvsl.engine import precision as precision_module
from kvsl.engine.precision import choose_precision, cpu_flags
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import ModelRef

# --- threads -------------------------------------------------------------------------------


def test_threads_flag_wins_over_environment_and_cores():
    choice = choose_threads(3, environ={"KVSL_THREADS": "5"}, cores=8)
    assert (choice.count, choice.reason) == (3, "--threads")


def test_threads_environment_wins_over_cores():
    assert choose_threads(environ={"KVSL_THREADS": " 5 "}, cores=8).count == 5


def test_threads_default_is_the_affinity_shared_by_local_processes():
    assert choose_threads(environ={}, cores=2).count == 2
    assert str(choose_threads(environ={}, cores=1)) == "1 thread (1 core available)"
    shared = choose_threads(environ={"LOCAL_WORLD_SIZE": "2"}, cores=2)
    assert shared.count == 1 and "shared by 2 processes" in shared.reason
    # More processes than cores: still one thread each, never zero.
    assert choose_threads(environ={"LOCAL_WORLD_SIZE": "4"}, cores=2).count == 1


def test_threads_default_reads_this_process_affinity():
    import os

    assert choose_threads(environ={}).count == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("bad", [0, -2])
def test_threads_below_one_are_refused(bad):
    with pytest.raises(ThreadsError):
        choose_threads(bad)
    with pytest.raises(ThreadsError):
        choose_threads(environ={"KVSL_THREADS": "many"})


def test_configure_threads_sets_torch_and_reports_kvs313():
    from kvsl.engine.threads import configure_threads

    before = torch.get_num_threads()
    try:
        assert configure_threads(1).count == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(KvslError) as err:
        configure_threads(0)
    assert err.value.diagnostics[0].code == "KVS313" and err.value.exit_code == 2


@pytest.mark.parametrize("env", ["99999999999999999999", "1025", "-1", "2.5", "9" * 5000])
def test_threads_out_of_range_from_the_environment_is_kvs313_not_a_traceback(env):
    """A count past 64 bits used to overflow inside torch.set_num_threads."""
    result = CliRunner().invoke(app, ["run", "nothing.kvs", "-p", "x"], env={"KVSL_THREADS": env})
    assert result.exit_code == 2 and "KVS313" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output) < 2000  # a huge value is not echoed whole


def test_build_says_threads_and_precision_in_its_first_line(tmp_path, tiny_traces, tiny_model_dir):
    spec = tmp_path / "tiny.kvs"
    spec.write_text(tiny.tiny_spec(tiny_model_dir, pairs=2), encoding="utf-8")
    (tmp_path / "traces.jsonl").write_text(tiny_traces.read_text())
    result = CliRunner().invoke(
        app, ["build", str(spec), "--threads", "1", "--device", "cpu", "-q"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith("kvsl build: 1 thread (--threads), ")
    assert "fp32 (" in first or "bf16 (" in first
    assert "one process" in first


def test_threads_zero_is_a_usage_error_on_every_command(tiny_model_dir):
    for args in (["build", "nothing.kvs"], ["run", "nothing.kvs", "-p", "x"]):
        result = CliRunner().invoke(app, [*args, "--threads", "0"])
        if args[0] == "build":
            # build checks the spec first (it does not exist): a usage error either way
            assert result.exit_code != 0
        else:
            assert result.exit_code == 2 and "KVS313" in result.output


# --- precision -----------------------------------------------------------------------------


@pytest.fixture
def machine(monkeypatch):
    """Replace the hardware detection: set flags, torch's capability and CUDA bf16."""
    state = {"flags": frozenset(), "capability": "AVX2", "cuda_bf16": False}
    monkeypatch.setattr(precision_module, "cpu_flags", lambda path="": state["flags"])
    monkeypatch.setattr(precision_module, "torch_cpu_capability", lambda: state["capability"])
    monkeypatch.setattr(precision_module, "cuda_bf16_supported", lambda d: state["cuda_bf16"])
    return state


def test_auto_is_fp32_on_a_plain_cpu(machine):
    assert choose_precision("auto", None).name == "fp32"
    assert choose_precision("auto", "cpu").reason == "auto: CPU without AMX"


def test_auto_stays_fp32_with_avx512_bf16_alone(machine):
    # Measured on the build machine (avx512_bf16, no AMX): bf16 was slower, not faster.
    machine["flags"] = frozenset({"avx512f", "avx512_bf16"})
    machine["capability"] = "AVX512"
    assert choose_precision("auto", None).name == "fp32"


def test_auto_is_bf16_with_amx(machine):
    machine["flags"] = frozenset({"avx512_bf16", "amx_bf16", "amx_tile"})
    choice = choose_precision("auto", None)
    assert (choice.name, choice.dtype) == ("bf16", torch.bfloat16)
    machine["flags"] = frozenset()
    machine["capability"] = "AMX"  # torch's own CPU capability names AMX
    assert choose_precision("auto", None).name == "bf16"


def test_auto_on_cuda_follows_bf16_support(machine):
    machine["cuda_bf16"] = True
    assert str(choose_precision("auto", "cuda:0")) == "bf16 (auto: CUDA device with bf16)"
    machine["cuda_bf16"] = False
    assert choose_precision("auto", "cuda").name == "fp32"


def test_explicit_precision_wins(machine):
    machine["flags"] = frozenset({"amx_bf16"})
    assert choose_precision("fp32", None).name == "fp32"
    machine["flags"] = frozenset()
    assert choose_precision("bf16", None).name == "bf16"


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nflags : other\n")
    assert cpu_flags(str(info)) == frozenset({"fpu", "avx2", "amx_bf16"})
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_build_auto_keeps_the_spec_precision(machine, tmp_path):
    from kvsl.engine.build_request import build_precision as _build_precision

    detected = choose_precision("auto", None)  # fp32 on the mocked plain CPU
    spec = tmp_path / "s.kvs"
    spec.write_text(
        tiny.tiny_spec("/m").replace(
            "  steer {", "  extract {\n    precision = bf16\n  }\n  steer {"
        )
    )
    assert _build_precision(spec, "auto", detected).name == "bf16"  # the spec's, explicitly
    assert _build_precision(spec, "fp32", detected).name == "fp32"  # the flag wins
    plain = tmp_path / "p.kvs"
    plain.write_text(tiny.tiny_spec("/m"))
    machine["flags"] = frozenset({"amx_bf16"})
    assert _build_precision(plain, "auto", choose_precision("auto", None)).name == "bf16"


def test_bad_precision_is_a_usage_error():
    result = CliRunner().invoke(app, ["run", "nothing.kvs", "-p", "x", "--precision", "fp16"])
    assert result.exit_code == 2 and "auto, fp32, bf16" in result.output


# --- device map ----------------------------------------------------------------------------


def test_device_map_values_are_checked():
    from kvsl.engine.placement import parse_device_map

    assert parse_device_map("auto") == "auto"
    assert parse_device_map('{"model.layers.1": "disk", "lm_head": 0}') == {
        "model.layers.1": "disk",
        "lm_head": 0,
    }
    for bad in ("gpus", "{not json", '{"lm_head": "moon"}', "{}"):
        with pytest.raises(KvslError) as err:
            parse_device_map(bad)
        assert err.value.diagnostics[0].code == "KVS316"


# Layer 1 and the head on disk, the rest on the CPU: accelerate's offload hooks run it.
SPLIT = {
    "model.embed_tokens": "cpu",
    "model.rotary_emb": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.layers.2": "disk",
    "model.norm": "cpu",
    "lm_head": "disk",
}


@pytest.fixture(scope="module")
def word_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("word-llama")
    tiny.word_model("llama").save_pretrained(path)
    tiny.word_tokenizer().save_pretrained(path)
    return path


def _generate(loaded, edit) -> list[str]:
    from kvsl.engine.generate import GenerationSettings, chat_prompt
    from kvsl.engine.offline import generate_texts
    from kvsl.engine.prompting import offset_token_id

    ids = [chat_prompt(loaded.tokenizer, p) for p in tiny.WORD_PROMPTS]
    return generate_texts(
        loaded.model,
        loaded.tokenizer,
        ids,
        settings=GenerationSettings(max_new_tokens=8),
        offset_id=offset_token_id(loaded.tokenizer, "\n"),
        edit=edit,
        batch_size=2,
    )


def test_split_model_steers_like_the_unsplit_model(word_dir, tmp_path, monkeypatch):
    from kvsl.engine.models import load_model
    from kvsl.engine.steer import resolve_edit

    monkeypatch.setenv("KVSL_CACHE_DIR", str(tmp_path / "cache"))
    ref = ModelRef(str(word_dir), "directory", str(word_dir))
    whole = load_model(ref)
    split = load_model(ref, device_map=SPLIT)
    assert set(split.model.hf_device_map.values()) == {"cpu", "disk"}
    assert split.device.type == "cpu" and split.geometry == whole.geometry
    vectors = tiny.word_vectors(scale=4.0)
    steer = resolve_edit(vectors, {1: (0.0, 8.0), 2: (0.0, 8.0)})
    zero = resolve_edit(vectors, {1: (0.0, 0.0), 2: (0.0, 0.0)})
    plain_whole = _generate(whole, None)
    steered_whole = _generate(whole, steer)
    assert steered_whole != plain_whole  # the edit changes something to compare
    assert _generate(split, steer) == steered_whole
    # The identity on the split model: coefficient 0 is plain generation.
    assert _generate(split, zero) == _generate(split, None) == plain_whole
