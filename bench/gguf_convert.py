"""GGUF conversion with and without kvsl's shortcuts, side by side (the cold main job).

    python bench/gguf_convert.py [--model smollm2-135m] [--repeats 2] [--threads 2]

Each repetition converts the embedded GGUF file the way a first `kvsl run` does
(tokenizer, then fp32 weights, through transformers), once as transformers does it alone
and once inside `kvsl.engine.gguf_convert.conversion_shortcuts()`, alternating which goes
first. Nothing is written: the user's model cache is not touched.
"""

from __future__ import annotations

import argparse
import statistics
import time


def convert(path, shortcuts: bool) -> float:  # type: ignore[no-untyped-def]
    import contextlib

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kvsl.engine.gguf_convert import conversion_shortcuts
    from kvsl.engine.models import quiet_transformers

    started = time.perf_counter()
    with quiet_transformers(), conversion_shortcuts() if shortcuts else contextlib.nullcontext():
        AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import os

    import torch

    from kvsl.engine.models import embedded_gguf_path

    torch.set_num_threads(args.threads)
    path = embedded_gguf_path(args.model)
    convert(path, True)  # warm the imports and the page cache so neither side pays them
    times: dict[bool, list[float]] = {False: [], True: []}
    for repeat in range(args.repeats):
        for shortcuts in (False, True) if repeat % 2 == 0 else (True, False):
            times[shortcuts].append(convert(path, shortcuts))
    plain, fast = statistics.median(times[False]), statistics.median(times[True])
    print(
        f"model {args.model} ({path.name}), {args.threads} threads, load {os.getloadavg()[0]:.1f}"
    )
    print(f"transformers alone : median {plain:6.1f} s  {[round(t, 1) for t in times[False]]}")
    print(f"with the shortcuts : median {fast:6.1f} s  {[round(t, 1) for t in times[True]]}")
    print(f"shortcuts ÷ alone  : {fast / plain:.2f}")


if __name__ == "__main__":
    main()
