"""Cold vs warm load of the embedded model (issue 4, benchmark 4).

    python bench/model_load.py [--model smollm2-135m] [--warm-runs 3]

Cold: an empty cache directory (a fresh temp `KVSL_CACHE_DIR`), so the GGUF file is
converted by transformers and the result cached. Warm: later loads from that cache
(safetensors), each in the same process, after the cold one. The temporary cache is
deleted at the end; the user's own cache is never touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--warm-runs", type=int, default=3)
    args = parser.parse_args()

    cache = tempfile.mkdtemp(prefix="kvsl-load-bench-")
    os.environ["KVSL_CACHE_DIR"] = cache
    try:
        import torch

        from kvsl.engine.models import load_model, resolve_ref

        ref = resolve_ref(args.model)
        started = time.perf_counter()
        load_model(ref, dtype=torch.float32)
        cold = time.perf_counter() - started
        warm = []
        for _ in range(args.warm_runs):
            started = time.perf_counter()
            load_model(ref, dtype=torch.float32)
            warm.append(time.perf_counter() - started)
        started = time.perf_counter()
        load_model(ref, dtype=torch.bfloat16)
        warm_bf16 = time.perf_counter() - started
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"model {args.model}")
    print(f"cold load (GGUF conversion + caching): {cold:.1f} s")
    print(f"warm load fp32 (from the cache):       median {statistics.median(warm):.2f} s "
          f"(min {min(warm):.2f}, max {max(warm):.2f}, {len(warm)} runs)")
    print(f"warm load bf16:                        {warm_bf16:.2f} s")
    print(f"cold / warm = {cold / statistics.median(warm):.0f}×")


if __name__ == "__main__":
    main()
