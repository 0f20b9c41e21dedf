"""Which parser: kvsl's hand parser next to Lark alone, measured side by side in one run.

Parses, in-process and interleaved (the order rotates every repetition), with
- `hand`: `kvsl.lang.parser.parse_source` (the production parser);
- `lark`: the grammar with Lark's LALR parser and a `v_args(meta=True)` Transformer
  building the same syntax tree (tests/lang/lark_oracle.py, the tests' oracle),
on three inputs: the 100 specs of bench/check_speed.py, the 2,000-line spec of
bench/lsp_bench.py, and one broken spec (the hand parser's error path, recovery included;
Lark's first error only). Prints medians with spread and the lark/hand ratio per
repetition. This measurement chose the parser: docs/language.md, "How kvsl parses".

    python bench/parse_speed.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests" / "lang")]

from check_speed import SPEC  # noqa: E402
from lark_oracle import lark_first_error, parse_source_lark  # noqa: E402
from lsp_bench import large_spec  # noqa: E402
from timing import Spread, rotated  # noqa: E402

from kvsl.lang.parser import parse_source  # noqa: E402
from kvsl.lang.source import SourceFile  # noqa: E402


def inputs() -> dict[str, list[SourceFile]]:
    specs = [SourceFile(f"spec_{i:03d}.kvs", SPEC.format(i=i, pairs=10 + i)) for i in range(100)]
    large = SourceFile("large.kvs", large_spec(2000))
    text = (ROOT / "specs" / "step_by_step.kvs").read_text(encoding="utf-8")
    broken = SourceFile("broken.kvs", text.replace("pairs = ", "pairs ", 1))
    return {"100 specs": specs, "2,000-line spec": [large], "broken spec": [broken]}


def lark(source: SourceFile) -> object:
    spec = parse_source_lark(source)
    return spec if spec[0] is not None else lark_first_error(source)


def timed(parse: Callable[[SourceFile], object], files: list[SourceFile]) -> float:
    start = time.perf_counter()
    for source in files:
        parse(source)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    methods: dict[str, Callable[[SourceFile], object]] = {"hand": parse_source, "lark": lark}
    for name, files in inputs().items():
        for parse in methods.values():  # warm up: grammar tables, regex caches
            timed(parse, files)
        times: dict[str, list[float]] = {m: [] for m in methods}
        ratios: list[float] = []
        for rep in range(args.repeat):
            this: dict[str, float] = {}
            for method in rotated(list(methods), rep):
                this[method] = timed(methods[method], files)
                times[method].append(this[method] * 1000)
            ratios.append(this["lark"] / this["hand"])
        print(f"{name}:")
        for method in methods:
            print(f"  {method:5s} {Spread.of(times[method]).format('.1f')} ms")
        print(f"  lark / hand {Spread.of(ratios).format('.2f')}x")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
