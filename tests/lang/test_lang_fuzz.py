"""Property test: mutated specs never crash the front end, and every failure is located.

Mutations (delete, duplicate, swap, insert random bytes) of the repository's specs; the
front end must return coded diagnostics whose location lies inside the file.
`KVSL_FUZZ_EXAMPLES=N` runs N examples per property.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from fuzz_settings import fuzz
from hypothesis import given
from hypothesis import strategies as st
from lang_support import SPECS
from lark_oracle import assert_parsers_agree

from kvsl.lang import compile_spec
from kvsl.lang.codes import CODES
from kvsl.lang.fmt import format_text
from kvsl.lang.parser import decode_source
from kvsl.lang.render import render_diagnostics

SOURCES = [p.read_bytes() for p in SPECS]


def _workspace() -> Path:
    """specs/ and templates/ mirrored by symlinks, so a mutant's relative paths resolve."""
    root = Path(tempfile.mkdtemp(prefix="kvsl-fuzz-"))
    atexit.register(shutil.rmtree, root, True)
    (root / "specs").mkdir()
    real = SPECS[0].parent
    for entry in real.iterdir():  # traces/ and the other specs (for `extends`)
        (root / "specs" / entry.name).symlink_to(entry)
    if (real.parent / "templates").is_dir():
        (root / "templates").symlink_to(real.parent / "templates")
    return root / "specs"


WORKSPACE = _workspace()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        size = len(data)
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        a = draw(st.integers(0, size))
        b = draw(st.integers(a, min(size, a + 80)))
        if kind == "delete":
            del data[a:b]
        elif kind == "duplicate":
            data[b:b] = data[a:b]
        elif kind == "swap":
            c = draw(st.integers(0, size))
            d = draw(st.integers(c, min(size, c + 80)))
            if b <= c:
                data[a:d] = data[c:d] + data[b:c] + data[a:b]
        else:
            data[a:a] = draw(st.binary(min_size=1, max_size=12))
    return bytes(data)


@fuzz(200)
@given(mutated())
def test_mutations_give_located_codes(data: bytes) -> None:
    path = WORKSPACE / "mutant.kvs"
    path.write_bytes(data)
    try:
        plan, diagnostics = compile_spec(path)
        source, _ = decode_source(str(path), data)
        lines = data.count(b"\n") + 1
        for d in diagnostics:
            assert d.code in CODES
            if d.span.path == str(path):
                assert 1 <= d.span.line <= lines, d
                assert d.span.column >= 1
        assert (plan is None) == any(d.severity.value == "error" for d in diagnostics)
        for format in ("human", "json", "github", "sarif"):
            render_diagnostics(diagnostics, format=format)
        if source is not None:
            format_text(source.text, str(path))
    finally:
        path.unlink()


@fuzz(200)
@given(mutated())
def test_parser_agrees_with_the_grammar(data: bytes) -> None:
    source, _ = decode_source("mutant.kvs", data)
    if source is not None:
        assert_parsers_agree(source)
