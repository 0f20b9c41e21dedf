"""Counts read from what others wrote: `isdigit` let "²" and 5,000-digit numbers reach `int`.

Each front door that read such a count with `str.isdigit()` + `int()` raised a ValueError:
`kvsl explain ²` and `kvsl lsp --debounce-ms ²` with a traceback, a `Content-Length` of
5,000 digits ended the language server, `--layers 1..999…9` (and a request's `layers`)
escaped `kvsl run` and `kvsl serve`. `kvsl.base.counts.decimal_count` reads them all.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from kvsl.base.atomic import atomic_path
from kvsl.base.counts import OVER, decimal_count
from kvsl.cli import app
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.overrides import parse_layers
from kvsl.lsp.framing import FrameReader, Garbled

HUGE = "9" * 5000


@given(st.text(max_size=30))
def test_a_count_is_ascii_digits_or_none(text: str) -> None:
    count = decimal_count(text)
    if text and text.isascii() and text.isdecimal():
        assert count == (int(text) if len(text.lstrip("0")) <= 18 else OVER)
    else:
        assert count is None


@pytest.mark.parametrize("code", ["²", "٣", HUGE, "+1"])
def test_explain_of_a_number_that_is_not_a_code_is_kvs018(code: str) -> None:
    result = CliRunner().invoke(app, ["explain", code])
    assert result.exit_code == 2 and "KVS018" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("value", ["²", HUGE, "60001"])
def test_lsp_debounce_that_is_not_a_small_count_is_a_usage_error(value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kvsl", "lsp", "--debounce-ms", value],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    assert done.returncode == 2 and "KVS318" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_content_length_of_thousands_of_digits_is_a_broken_frame_not_a_crash() -> None:
    stream = io.BytesIO(b"Content-Length: " + HUGE.encode() + b"\r\n\r\n{}"
                        b"Content-Length: 2\r\n\r\n{}")  # fmt: skip
    reader = FrameReader(stream)
    first = reader.next()
    assert isinstance(first, Garbled) and "over the limit" in first.reason
    assert reader.next() == b"{}"


@pytest.mark.parametrize("text", ["١..٣", "²", "1..²"])
def test_layers_in_digits_other_than_ascii_are_refused(text: str) -> None:
    with pytest.raises(KvslError) as err:
        parse_layers(text)
    assert err.value.diagnostics[0].code == "KVS450"


def test_a_layer_of_thousands_of_digits_is_a_layer_past_every_model() -> None:
    spans = parse_layers(f"1..{HUGE},-{HUGE}")
    assert [(s.start, s.stop) for s in spans] == [(1, OVER), (-OVER, -OVER)]


def test_a_stray_temporary_named_with_other_digits_is_left_alone(tmp_path) -> None:
    target = tmp_path / "report.json"
    with atomic_path(target) as first:
        stray = first.with_name(first.name.rsplit("-", 1)[0] + "-²³.tmp")
    stray.write_text("x")
    with atomic_path(target) as temporary:
        temporary.write_text("done")
    assert target.read_text() == "done" and stray.exists()
