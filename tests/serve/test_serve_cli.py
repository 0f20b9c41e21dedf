"""`kvsl serve` start-up errors: coded diagnostics, exit codes, no traceback, nothing served."""

from __future__ import annotations

import socket

import pytest
from serve_support import MODEL_ID, tiny_workspace
from tiny_models import make_tiny_model, tiny_spec
from typer.testing import CliRunner

from kvsl.cli import app


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny_workspace(tmp_path_factory.mktemp("serve-cli"))


def _serve(*args: str):
    return CliRunner().invoke(app, ["serve", *args])


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--max-batch", "0"], "--max-batch 0"),
        (["--port", "70000"], "--port 70000"),
        (["--max-coefficient", "0"], "--max-coefficient 0"),
        (["--gather-ms", "-1"], "--gather-ms -1"),
        (["--batching", "eager"], "--batching eager"),
        (["--request-timeout", "0"], "--request-timeout 0"),
        (["--request-timeout", "nan"], "--request-timeout nan"),
        (["--shutdown-timeout", "nan"], "--shutdown-timeout nan"),  # a traceback at the stop
        (["--shutdown-timeout", "-1"], "--shutdown-timeout -1"),
    ],
)
def test_options_out_of_range_are_kvs802(root, flags, needle):
    result = _serve(str(root / "alpha.kvs"), *flags)
    assert result.exit_code == 2
    assert "KVS802" in result.stderr and needle in result.stderr
    assert "Traceback" not in result.output


def test_a_port_in_use_is_kvs803(root):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        result = _serve(str(root / "alpha.kvs"), "--port", str(taken.getsockname()[1]))
    assert result.exit_code == 3 and "KVS803" in result.stderr
    assert "pick another `--port`" in result.stderr
    # Like build, run, eval and tune, it first says what it picked (docs/scale.md).
    first = result.stderr.splitlines()[0]
    assert first.startswith("kvsl serve: ") and "thread" in first and "one process" in first


@pytest.mark.parametrize("host", ["999.1.1.1", "192.0.2.1", "no-such-host.invalid"])
def test_a_host_that_is_not_this_machine_is_kvs803_about_the_host(root, host):
    """Not "pick another port": the host is what is wrong."""
    result = _serve(str(root / "alpha.kvs"), "--host", host, "--port", "0")
    assert result.exit_code == 3 and "KVS803" in result.stderr
    assert "`--host` must be an address of this machine" in result.stderr


def test_styles_of_two_models_are_kvs800(root):
    other = root / "other-model"
    model, tokenizer = make_tiny_model("qwen2")
    model.save_pretrained(other)
    tokenizer.save_pretrained(other)
    (root / "other.kvs").write_text(tiny_spec(other, style="other"))
    result = _serve(str(root / "alpha.kvs"), str(root / "other.kvs"), "--port", "0")
    assert result.exit_code == 2 and "KVS800" in result.stderr
    result = _serve(str(root / "alpha.kvs"), "--model", str(other), "--port", "0")
    assert result.exit_code == 2 and "KVS800" in result.stderr


def test_two_styles_with_one_name_are_kvs801(root):
    (root / "sub").mkdir()
    (root / "sub" / "alpha.kvs").write_text(
        tiny_spec(root / MODEL_ID, style="alpha", traces=root / "traces.jsonl"))
    result = _serve(str(root / "alpha.kvs"), str(root / "sub" / "alpha.kvs"), "--port", "0")
    assert result.exit_code == 2 and "KVS801" in result.stderr


def test_a_missing_target_is_kvs455(root):
    result = _serve(str(root / "missing.kvs"), "--port", "0")
    assert result.exit_code == 2 and "KVS455" in result.stderr
    result = _serve(str(root / "alpha.kv"), "--port", "0")  # a near miss is named
    assert result.exit_code == 2 and f"did you mean `{root / 'alpha.kvs'}`?" in result.stderr


def test_every_serve_code_is_registered_with_examples():
    from kvsl.lang.codes import CODES

    serve_codes = [code for code in CODES if code.startswith("KVS8")]
    assert serve_codes == ["KVS800", "KVS801", "KVS802", "KVS803", "KVS804", "KVS805"]
    for code in serve_codes:
        assert CODES[code].bad and CODES[code].good and CODES[code].explanation


def test_the_model_loads_on_the_thread_that_decodes_it(root, monkeypatch):
    """All of torch's work in one thread (`kvsl.serve.server.model_thread`): a second thread
    with its own OpenMP team made every decoding step sleep at its barriers."""
    import threading

    from kvsl.serve import catalog, server

    seen: dict[str, threading.Thread] = {}
    real_load = catalog.load_catalog

    def load(*args, **kwargs):
        seen["loaded on"] = threading.current_thread()
        return real_load(*args, **kwargs)

    def run_server(application, sock, *, announce, **_):  # no uvicorn
        announce()
        executor = application.state.server.executor
        seen["decodes on"] = executor.submit(threading.current_thread).result()
        executor.shutdown()
        sock.close()

    monkeypatch.setattr(catalog, "load_catalog", load)
    monkeypatch.setattr(server, "run_server", run_server)
    result = _serve(str(root / "alpha.kvs"), "--port", "0")
    assert result.exit_code == 0, result.output
    assert seen["loaded on"] is seen["decodes on"]
    assert seen["loaded on"] is not threading.main_thread()
    assert seen["loaded on"].name.startswith("kvsl-model")
