"""Faster GGUF → transformers conversion: the same conversion, minus repeated work.

transformers' GGUF loader (4.5x/5.x) repeats two pure computations that dominate a first
run on a small CPU (profiled on SmolLM2-135M Q4_1, 2 cores):

- it opens the file with `gguf.GGUFReader` three times (config, tokenizer, weights), and
  each open parses every metadata field again, the tokenizer's ~49k-entry vocabulary and
  merges included (about a third of the conversion);
- `get_gguf_hf_weights_map` recurses over every module of the model and builds a fresh
  `gguf.TensorNameMap(arch, n_blocks)` at each of the ~400 calls (another third).

`conversion_shortcuts()` memoises both while a conversion runs, then puts the originals
back. The reader is opened read-only (a numpy memmap) and nothing in transformers mutates
it, and `TensorNameMap` is a lookup table built from its two arguments, so the memoised
values are exactly what the repeated calls would have built: the converted weights are
bit-identical (tests/test_gguf_convert.py).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def conversion_shortcuts() -> Iterator[None]:
    """Memoise `gguf.GGUFReader(path)` and `gguf.get_tensor_name_map` inside the block.

    transformers imports both by name from the `gguf` package inside its functions
    (`from gguf import GGUFReader`), so replacing the package attributes is enough and is
    undone on exit. Without the `gguf` package this does nothing (the load then reports
    the missing package itself).
    """
    try:
        import gguf
    except ImportError:
        yield
        return
    original_reader = gguf.GGUFReader
    original_map = gguf.get_tensor_name_map
    readers: dict[tuple[str, Any], Any] = {}

    def shared_reader(path: Any, mode: Any = "r") -> Any:
        if mode != "r":  # only read-only readers can be shared
            return original_reader(path, mode)
        key = (str(path), mode)
        if key not in readers:
            readers[key] = original_reader(path, mode)
        return readers[key]

    cached_map = functools.lru_cache(maxsize=None)(original_map)
    gguf.GGUFReader = shared_reader  # type: ignore[misc,assignment]
    gguf.get_tensor_name_map = cached_map  # type: ignore[assignment]
    try:
        yield
    finally:
        gguf.GGUFReader = original_reader  # type: ignore[misc]
        gguf.get_tensor_name_map = original_map
        readers.clear()
