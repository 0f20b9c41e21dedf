"""The worst input of every hostile class, in a subprocess capped at 500 MB, under a timeout.

Each class of issue 10 once hung, or ate gigabytes (`{{ 'a' * 10**10 }}` took 23 GB
inside `kvsl check`). Here a child process sets RLIMIT_AS (address space: an allocation
past it fails at once, so a blow-up shows as a MemoryError instead of a killed machine),
then runs check, plan (lowering, which hashes the trace file) and fmt on every input and
reports its peak RSS and the slowest input. The parent asserts no traceback, the cap,
and that the child finished within its timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lang_support import ROOT, TRACE, VALID

resource = pytest.importorskip("resource")

LIMIT_BYTES = 500 * 1024 * 1024

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.setrecursionlimit(1000)
    from kvsl.lang import check_paths, compile_spec
    from kvsl.lang.fmt import format_text
    from kvsl.lang.parser import load_source
    from kvsl.lang.render import render_diagnostics
    report = {"slowest": 0.0, "slowest_file": "", "failures": []}
    for path in sys.argv[2:]:
        start = time.perf_counter()
        try:
            plan, diagnostics = compile_spec(path)
            render_diagnostics(diagnostics)
            render_diagnostics(check_paths([path]), format="sarif")
            source, _ = load_source(path)
            if source is not None:
                format_text(source.text, path)
        except BaseException as err:  # anything at all is a failure of this test
            report["failures"].append(f"{path}: {type(err).__name__}: {err}"[:300])
        took = time.perf_counter() - start
        if took > report["slowest"]:
            report["slowest"], report["slowest_file"] = took, path
    # Peak RSS of this process image: VmHWM belongs to the memory map that exec made, while
    # ru_maxrss is inherited across fork and exec (a test run that already holds torch and
    # models would be reported as this child's peak).
    with open("/proc/self/status") as status:
        hwm = next(line for line in status if line.startswith("VmHWM:"))
    report["max_rss_kb"] = int(hwm.split()[1])
    print(json.dumps(report))
    """
)


def _spec(directory: Path, name: str, style: str = "", contrast: str = "") -> str:
    text = VALID.replace(
        '  description = "A tiny style."\n', f'  description = "A tiny style."\n{style}\n'
    )
    text = text.replace("    shots = 1\n", f"    shots = 1\n{contrast}\n")
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _teacher(template: str) -> str:
    return f'  teacher {{\n    model = "m"\n    template = """{template}"""\n    traces = "traces.jsonl"\n  }}'


def worst_inputs(directory: Path) -> list[str]:
    """One file per class (and a few more), each at its worst."""
    (directory / "traces.jsonl").write_text(TRACE, encoding="utf-8")
    files = [
        # numbers
        _spec(directory, "int.kvs", "  generate { seed = " + "9" * 200_000 + " }"),
        _spec(directory, "float.kvs", "  steer { value = " + "9" * 309 + " }"),
        _spec(directory, "decimal.kvs", "  steer { value = 9" + "9" * 100_000 + ".5 }"),
        _spec(
            directory, "range.kvs", "  steer { layers = [1..100000000, 2..9223372036854775807] }"
        ),
        _spec(directory, "range2.kvs", "  steer { layers = [1..9223372036854775808] }"),
        # markers
        _spec(directory, "repeat.kvs", '  markers = ["a{4294967296}", "(?:a{1000}){1000}"]'),
        _spec(directory, "groups.kvs", '  markers = ["' + "(" * 2000 + "a" + ")" * 2000 + '"]'),
        # templates
        _spec(directory, "fold.kvs", _teacher("{{ question }}{{ 'a' * 10**10 }}")),
        _spec(directory, "fold2.kvs", _teacher("{{ question }}{{ ('a' * 99999) * 99999 }}")),
        _spec(directory, "power.kvs", _teacher("{{ question }}{{ 10**10**10 }}{{ 7**999999 }}")),
        _spec(directory, "center.kvs", _teacher("{{ question }}{{ 'a'|center(10**10) }}")),
        _spec(directory, "join.kvs", _teacher("{{ question }}{{ (['a' * 90000] * 90000)|join }}")),
        _spec(
            directory,
            "loops.kvs",
            _teacher(
                "{{ question }}{% for i in range(9999) %}{% for j in range(9999) %}ab{% endfor %}{% endfor %}"
            ),
        ),
        _spec(
            directory,
            "quiet_loops.kvs",
            _teacher(
                "{% set s = 'x' * 99999 %}{{ question }}"
                "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
            ),
        ),
        _spec(
            directory,
            "many_values.kvs",
            _teacher("{{ question }}{{ range(9999)|map('center', 99999)|list|length }}"),
        ),
        _spec(
            directory,
            "range_t.kvs",
            _teacher("{{ question }}{% for i in range(10**9) %}{% endfor %}"),
        ),
        _spec(
            directory,
            "deep_t.kvs",
            _teacher("{{ " + "(" * 20_000 + "question" + ")" * 20_000 + " }}"),
        ),
        _spec(directory, "ifs_t.kvs", _teacher("{% if question %}" * 5000 + "{% endif %}" * 5000)),
        # syntax at its worst: a megabyte of nesting, of errors, of list items
        # (each just under the 256 KB cap: MAX_SPEC_BYTES)
        str(_write(directory / "nest.kvs", "[" * 255_000)),
        str(_write(directory / "braces.kvs", "a {" * 85_000)),
        str(_write(directory / "errors.kvs", 'style "s" {\n' + "  a 1\n" * 42_000 + "}\n")),
        str(_write(directory / "list.kvs", 'style "s" { a = [' + "1," * 127_000 + "] }\n")),
        str(_write(directory / "keys.kvs", 'style "s" {\n' + "  a = 1\n" * 31_000 + "}\n")),
        # paths
        _spec(directory, "devzero.kvs", '  extends = "/dev/zero"', '    system_prompt = "x"'),
    ]
    traces_zero = _write(
        directory / "traces_zero.kvs",
        VALID.replace('traces = "traces.jsonl"', 'traces = "/dev/zero"'),
    )
    files.append(str(traces_zero))
    if hasattr(os, "mkfifo"):
        os.mkfifo(directory / "fifo")
        os.mkfifo(directory / "fifo.kvs")
        files.append(str(directory / "fifo.kvs"))
        block = '  teacher {\n    model = "m"\n    template = "fifo"\n    traces = "fifo"\n  }'
        files.append(_spec(directory, "fifo_paths.kvs", block + '\n  extends = "fifo.kvs"'))
    if os.path.exists("/dev/zero"):
        files.append("/dev/zero")
    # an `extends` chain 1,000 specs long
    for i in range(1000):
        extends = f'  extends = "chain{i + 1}.kvs"\n' if i < 999 else ""
        kind = "style" if i == 0 else "base"
        _write(
            directory / f"chain{i}.kvs",
            VALID.replace('style "tiny" {\n', f'{kind} "c{i}" {{\n{extends}'),
        )
    files.append(str(directory / "chain0.kvs"))
    return files


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced as documented on Linux")
def test_worst_inputs_stay_under_500_mb_and_finish(tmp_path: Path) -> None:
    files = worst_inputs(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(LIMIT_BYTES), *files],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # generous for a shared machine; each input takes well under a second
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failures"] == []
    assert report["max_rss_kb"] * 1024 < LIMIT_BYTES
    assert report["slowest"] < 60, report
