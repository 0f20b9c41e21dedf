"""`--device-map`: a model spread over GPUs, the CPU and disk, by transformers' device_map.

transformers (through accelerate) places each module where the map says and moves each
layer's inputs to that layer's device with hooks; offloaded ("cpu"/"disk") weights are
brought to the execution device layer by layer. kvsl's cache edit adds each layer's
vector on the device of that layer's cache (`kvsl.engine.steer`), so steering needs
nothing else. Disk-offloaded weights are written to a fresh folder under
`$KVSL_CACHE_DIR/offload/` (one per load, so two processes never share one), removed when
the process exits.
"""

from __future__ import annotations

import atexit
import json
import shutil
from typing import Any

from kvsl.base.jsonl import loads
from kvsl.base.locations import cache_dir
from kvsl.lang.diagnostics import COMMAND_LINE, ExitCode, KvslError

NAMED_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
PLACES = ("cpu", "disk", "meta", "mps")


def _bad(message: str) -> KvslError:
    return KvslError.usage(
        "KVS316",
        message,
        help="use auto, balanced, balanced_low_0, sequential or a JSON object such as "
        '\'{"model.embed_tokens": 0, "model.layers": "cpu", "model.norm": 0, "lm_head": 0}\'',
    )


def parse_device_map(text: str) -> str | dict[str, Any]:
    """A `--device-map` value: a named strategy or a JSON {module: device} object (KVS316).

    >>> parse_device_map("auto")
    'auto'
    >>> parse_device_map('{"model.layers.1": "disk"}')
    {'model.layers.1': 'disk'}
    """
    stripped = text.strip()
    if stripped in NAMED_MAPS:
        return stripped
    if not stripped.startswith("{"):
        raise _bad(f"`--device-map {text}` is not a known strategy or a JSON object")
    try:
        mapping = loads(stripped)
    except json.JSONDecodeError as err:
        raise _bad(f"`--device-map` is not valid JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(mapping, dict) or not mapping:
        raise _bad("`--device-map` must be a non-empty JSON object")
    for module, place in mapping.items():
        ok = (isinstance(place, int) and place >= 0) or (
            isinstance(place, str) and (place in PLACES or place.startswith("cuda"))
        )
        if not ok:
            raise _bad(f"`{module}` is mapped to `{place}`, not a GPU index, cpu or disk")
    return mapping


def placement_kwargs(device_map: str | dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `from_pretrained` that place the model by `device_map`."""
    mapping = parse_device_map(device_map) if isinstance(device_map, str) else device_map
    from kvsl.base.atomic import private_dir

    root = cache_dir("offload")
    try:
        # atexit does not run after a kill: the folder is named for this process, and the
        # next load that offloads removes those of dead processes (a model's weights each).
        folder = str(private_dir(root / "load"))
    except OSError as err:  # KVSL_CACHE_DIR is a file, read-only, ...
        raise KvslError.one(
            "KVS302",
            f"cannot create the offload folder for `--device-map` under `{root}` "
            f"({err.strerror})",
            COMMAND_LINE,
            help="set KVSL_CACHE_DIR to a writable folder, or map no module to `disk`",
            exit_code=ExitCode.ENVIRONMENT,
        ) from None
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return {"device_map": mapping, "offload_folder": folder}
