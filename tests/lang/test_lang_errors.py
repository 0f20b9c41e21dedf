"""`KvslError.one`: the one-diagnostic constructor every phase raises user errors with."""

from __future__ import annotations

import doctest

import kvsl.lang.diagnostics
from kvsl.lang.diagnostics import Diagnostic, ExitCode, KvslError, Label, Severity
from kvsl.lang.source import Span

SPAN = Span("s.kvs", 4, 9, 2, 3, 2, 8)


def test_one_equals_the_hand_rolled_error() -> None:
    built = KvslError.one("KVS104", "unknown key `pairz`", SPAN, help="did you mean `pairs`?")
    by_hand = KvslError(
        [Diagnostic("KVS104", Severity.ERROR, "unknown key `pairz`", SPAN, help="did you mean `pairs`?")],
        ExitCode.ERRORS,
    )
    assert built == by_hand
    assert built.diagnostics[0].to_dict() == by_hand.diagnostics[0].to_dict()


def test_one_defaults() -> None:
    err = KvslError.one("KVS600", "no file", SPAN)
    (diagnostic,) = err.diagnostics
    assert err.exit_code is ExitCode.ERRORS
    assert diagnostic.severity is Severity.ERROR
    assert diagnostic.help is None and diagnostic.labels == ()


def test_one_passes_exit_code_and_labels() -> None:
    label = Label(Span.whole_file("t.j2"), "template used here")
    err = KvslError.one("KVS612", "bad flag", SPAN, labels=(label,), exit_code=ExitCode.USAGE)
    assert err.exit_code is ExitCode.USAGE
    assert err.diagnostics[0].labels == (label,)
    assert str(err) == "KVS612: bad flag"


def test_one_is_raisable_and_keeps_its_class() -> None:
    class Special(KvslError):
        pass

    err = Special.one("KVS400", "gone", SPAN, exit_code=ExitCode.ENVIRONMENT)
    assert isinstance(err, Special)
    try:
        raise err
    except KvslError as caught:
        assert caught.exit_code is ExitCode.ENVIRONMENT


def test_doctests() -> None:
    failures, tried = doctest.testmod(kvsl.lang.diagnostics)
    assert tried >= 1 and failures == 0
