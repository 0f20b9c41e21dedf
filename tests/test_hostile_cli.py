"""Hostile command lines and data files, one test per class, across every command.

Classes (each was a traceback, a hang or a silent run with garbage settings):
- numeric flags out of their range: a seed beyond 64 bits (torch's OverflowError), a NaN
  temperature (transformers' ValueError in `eval`), NaN or infinite coefficients, sweep
  points and grids (steering with NaN, or `int(inf)` in a sweep), `--limit 0` (an
  IndexError on the empty example list), a negative `--dev-limit`;
- data files that are not regular files: a FIFO (blocks forever), `/dev/zero` (endless),
  a directory, or bytes that are not UTF-8, named as a benchmark, a PIQA labels file, a
  trace file or a prompt file.

Every refusal is a coded usage error (exit 2) given before a model is loaded: the spec
names a model that does not exist, so a refusal from anywhere later shows as another code.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.lang.diagnostics import KvslError

SPEC = """style "hostile" {
  description = "a style whose model does not exist"
  model = "/nonexistent/model"
  contrast {
    traces = "traces.jsonl"
    pairs = 4
    shots = 1
  }
  steer {
    layers = [1..]
    value = 4
  }
}
"""
DATA = '{"question": "1+1?", "answer": "#### 2"}\n'


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "s.kvs").write_text(SPEC)
    (tmp_path / "traces.jsonl").write_text("")
    (tmp_path / "g.jsonl").write_text(DATA)
    monkeypatch.chdir(tmp_path)
    return tmp_path


RUN = ["run", "s.kvs", "-p", "hi", "--device", "cpu", "--threads", "1"]
EVAL = ["eval", "s.kvs", "--data", "g.jsonl", "--device", "cpu", "--threads", "1"]
TUNE = ["tune", "s.kvs", "--dev", "g.jsonl", "--device", "cpu", "--threads", "1"]

BAD_FLAGS = [
    # (command line, code)
    ([*RUN, "--seed", "99999999999999999999999"], "KVS457"),
    ([*RUN, "--seed", "-1"], "KVS457"),
    ([*RUN, "--value", "nan"], "KVS457"),
    ([*RUN, "--value", "inf"], "KVS457"),
    ([*RUN, "--key", "-inf"], "KVS457"),
    ([*RUN, "--temperature", "inf", "--sample"], "KVS457"),
    ([*RUN, "--repetition-penalty", "inf"], "KVS457"),
    ([*RUN, "--max-new-tokens", "99999999999999999999999"], "KVS457"),
    ([*EVAL, "-m", "plain", "--seed", "99999999999999999999999"], "KVS612"),
    ([*EVAL, "-m", "plain", "--temperature", "nan", "--sample"], "KVS612"),
    ([*EVAL, "-m", "plain", "--temperature", "0", "--sample"], "KVS612"),
    ([*EVAL, "-m", "plain", "--repetition-penalty", "nan"], "KVS612"),
    ([*EVAL, "-m", "plain", "--limit", "0"], "KVS612"),
    ([*EVAL, "-m", "caa", "--dev", "g.jsonl", "--dev-limit", "-5"], "KVS612"),
    ([*EVAL, "-m", "cache", "--value", "nan"], "KVS612"),
    ([*EVAL, "-m", "caa", "--caa-layer", "1", "--caa-multiplier", "inf"], "KVS612"),
    ([*EVAL, "-m", "caa", "--dev", "g.jsonl", "--caa-multipliers", "1,nan"], "KVS612"),
    ([*EVAL, "-m", "plain", "--dev", "g.jsonl", "--sweep", "value=nan,1"], "KVS612"),
    ([*EVAL, "-m", "plain", "--dev", "g.jsonl", "--sweep", "shots=inf"], "KVS612"),
    ([*TUNE, "--values", "nan,1"], "KVS702"),
    ([*TUNE, "--keys", "inf"], "KVS702"),
    ([*TUNE, "--repetition-penalties", "1,inf"], "KVS702"),
    ([*TUNE, "--alpha", "nan"], "KVS702"),
]


@pytest.mark.parametrize(
    ("args", "code"), BAD_FLAGS, ids=lambda x: " ".join(x[4:]) if isinstance(x, list) else x
)
def test_numeric_flags_out_of_range_are_usage_errors(
    workspace: Path, args: list[str], code: str
) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert f"error[{code}]" in result.output, result.output


# --- data files that are not regular files ---------------------------------------------------


def _bad_file(kind: str, tmp_path: Path) -> str:
    if kind == "fifo":
        path = tmp_path / "pipe.jsonl"
        os.mkfifo(path)
        return str(path)
    if kind == "device":
        return "/dev/zero"
    if kind == "directory":
        path = tmp_path / "folder.jsonl"
        path.mkdir()
        return str(path)
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"question": "caf\xe9?", "answer": "#### 1"}\n')
    return str(path)


def _load_benchmark(path: str, tmp_path: Path) -> None:
    from kvsl.formats.questions import load_benchmark

    load_benchmark(path, "gsm8k")


def _load_piqa_labels(path: str, tmp_path: Path) -> None:
    from kvsl.formats.questions import load_benchmark

    data = tmp_path / "piqa.jsonl"
    data.write_text('{"goal": "g", "sol1": "a", "sol2": "b"}\n')
    load_benchmark(data, "piqa", labels_path=path)


def _read_traces(path: str, tmp_path: Path) -> None:
    from kvsl.formats.traces import read_trace_text

    read_trace_text(path)


def _read_prompt_file(path: str, tmp_path: Path) -> None:
    from kvsl.cli.run_commands import _read_prompts

    _read_prompts([], Path(path))


READERS = {
    "benchmark": (_load_benchmark, "KVS600"),
    "piqa-labels": (_load_piqa_labels, "KVS600"),
    "traces": (_read_traces, "KVS500"),
    "prompt-file": (_read_prompt_file, "KVS453"),
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "not-utf8"])
@pytest.mark.parametrize("reader", sorted(READERS))
def test_data_files_that_are_not_regular_text_are_refused(
    tmp_path: Path, reader: str, kind: str
) -> None:
    read, code = READERS[reader]
    path = _bad_file(kind, tmp_path)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            read(path, tmp_path)
            outcome.append(None)
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), f"reading {kind} as a {reader} file hangs"
    (err,) = outcome
    assert isinstance(err, KvslError), repr(err)
    assert err.diagnostics[0].code == code
    assert path in err.diagnostics[0].span.path or err.diagnostics[0].span.path == path


# --- layer selections that steer nothing -----------------------------------------------------


@pytest.mark.parametrize("text", ["5..", "2..", "0, 7.."])
def test_open_layer_range_past_the_last_layer_is_refused(text: str) -> None:
    """`--layers 5..` on a 2-layer model steered no layer and ran plain, silently (exit 0);
    `kvsl run`, `eval` and `serve` turn this ValueError into KVS451 / a 400."""
    from kvsl.lang.overrides import parse_layers
    from kvsl.lang.plan import SteerPlan

    plan = SteerPlan(layers=parse_layers(text), key=0.0, value=1.0)
    with pytest.raises(ValueError, match="outside a model with 2 layers"):
        plan.coefficients(2)
    assert SteerPlan(layers=parse_layers("1.."), key=0.0, value=1.0).coefficients(2) == {
        1: (0.0, 1.0)
    }


@pytest.mark.parametrize("text", ["1..0", "-1..-2", "99999999999999999999..1", "0, 1..0"])
def test_a_layer_range_that_counts_down_is_refused(text: str) -> None:
    """`--layers 1..0` (or a request's `kvsl.layers`) resolved to no layer and ran plain,
    silently; a spec's `[5..2]` is KVS1xx already. Ranges across signs resolve per model."""
    from kvsl.lang.overrides import parse_layers
    from kvsl.lang.plan import SteerPlan

    with pytest.raises(ValueError, match="selects no layer"):
        SteerPlan(layers=parse_layers(text), key=0.0, value=1.0).coefficients(2)
    assert SteerPlan(layers=parse_layers("0..-1"), key=0.0, value=1.0).coefficients(2) == {
        0: (0.0, 1.0), 1: (0.0, 1.0)
    }
