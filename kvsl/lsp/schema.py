"""What the editor says about keys, layers and styles, from the checker's own tables.

Nothing here restates the language: keys, kinds, bounds, choices and one-line docs come
from `kvsl.lang.schema` (`STYLE_KEYS`, `BLOCK_KEYS`, `OVERRIDE_KEYS`); defaults
are what `kvsl.lang.lower` fills in for a spec that leaves a key out (a minimal spec is
lowered once and read back); required keys are the ones the checker reports missing
(KVS106) in an empty style; style descriptions come from `kvsl.styles`.

>>> info = key_info("contrast", "select")
>>> info.spec.choices, info.default
(('random', 'nearest'), 'random')
>>> key_info("contrast", "pairs").default
'required'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kvsl.base.jsonl import loads
from kvsl.lang.checked import Decl
from kvsl.lang.models import EMBEDDED_MODEL_LAYERS, model_kind
from kvsl.lang.plan import DEFAULT_MODEL, LayerSpan
from kvsl.lang.schema import BLOCK_KEYS, OVERRIDE_KEYS, STYLE_KEYS, TOP, KeySpec

# Keys that name files: completion offers paths, go-to-definition opens them.
PATH_KEYS: dict[str, tuple[str, ...]] = {
    "extends": (".kvs",),
    "template": (".j2", ".jinja", ".jinja2", ".txt"),
    "traces": (".jsonl",),
    "questions": (".jsonl",),
}
# Where a key's lowered value lives when the plan names it differently.
_PLAN_NAMES = {
    ("contrast", "select"): "selection",
    ("teacher", "format"): "question_format",
    ("generate", "mode"): "sample",
    (TOP, "markers"): "patterns",
    (TOP, "model"): "name",
}
_KIND_WORDS = {
    "string": "string",
    "int": "integer",
    "float": "number",
    "choice": "one of",
    "layers": "layer list",
    "strings": "list of strings",
    "regexes": "list of regular expressions",
}


def keys_of(block: str | None) -> dict[str, KeySpec]:
    """The keys a block accepts: `None`/`"style"` is a style's own level, `"at"` an override."""
    if block in (None, TOP, "base"):
        return STYLE_KEYS
    if block == "at":
        return OVERRIDE_KEYS
    return BLOCK_KEYS.get(block, {})


def blocks_of(block: str | None) -> list[str]:
    """The blocks that may be written inside `block`."""
    if block in (None, TOP, "base"):
        return list(BLOCK_KEYS)
    return ["at"] if block == "steer" else []


@dataclass(frozen=True)
class KeyInfo:
    block: str  # "style" for a style's own keys
    key: str
    spec: KeySpec
    default: str | None  # as written in a spec; "required"; None when nothing to say

    def markdown(self) -> str:
        """The hover text: type and bounds, allowed values, default, the schema's doc."""
        kind = _KIND_WORDS[self.spec.kind]
        if self.spec.kind == "choice":
            kind += " " + ", ".join(f"`{c}`" for c in self.spec.choices)
        bounds = _bounds(self.spec)
        where = "" if self.block == TOP else f" in `{self.block}`"
        lines = [f"**`{self.key}`**{where}: {kind}{bounds}", "", self.spec.doc]
        if self.default is not None:
            lines += [
                "",
                f"default: `{self.default}`" if self.default != "required" else "required",
            ]
        return "\n".join(lines)


def key_info(block: str | None, key: str) -> KeyInfo | None:
    spec = keys_of(block).get(key)
    if spec is None:
        return None
    name = TOP if block in (None, "base") else block
    assert name is not None
    required = (name, key) in required_keys()
    default = "required" if required else _defaults().get((name, key))
    return KeyInfo(name, key, spec, default)


def _bounds(spec: KeySpec) -> str:
    low, high = spec.minimum, spec.maximum
    show = lambda x: f"{x:g}"  # noqa: E731
    if low is not None and high is not None:
        left = "(" if spec.minimum_exclusive else "["
        return f" in {left}{show(low)}, {show(high)}]"
    if low is not None:
        return f", {'>' if spec.minimum_exclusive else '>='} {show(low)}"
    return f", <= {show(high)}" if high is not None else ""


@lru_cache(maxsize=1)
def required_keys() -> frozenset[tuple[str, str]]:
    """(block, key) pairs the checker reports missing (KVS106) in an empty style."""
    from kvsl.lang.analyze import analyze
    from kvsl.lang.check import check_resolved
    from kvsl.lang.extends import Session
    from kvsl.lang.parser import parse_text

    spec, _ = parse_text('style "s" { contrast {} teacher {} }', os.devnull)
    decl, _ = analyze(spec) if spec is not None else (None, [])
    if decl is None:
        return frozenset()
    _, diagnostics = check_resolved(decl, Session())
    found = set()
    for d in diagnostics:
        match = re.fullmatch(r"missing key `(\w+)`(?: in `(\w+)`)?", d.message)
        if d.code == "KVS106" and match:
            found.add((match.group(2) or TOP, match.group(1)))
    return frozenset(found)


@lru_cache(maxsize=1)
def _defaults() -> dict[tuple[str, str], str]:
    """(block, key) → the value lowering fills in when a spec leaves the key out."""
    from kvsl.lang.analyze import analyze
    from kvsl.lang.checked import Resolved
    from kvsl.lang.lower import lower
    from kvsl.lang.parser import parse_text

    text = (
        'style "s" { description = "" contrast { traces = "t.jsonl" pairs = 2 shots = 1 }'
        ' teacher { model = "m" template = """x""" } }'
    )
    spec, _ = parse_text(text, os.devnull)
    decl = analyze(spec)[0] if spec is not None else None
    if decl is None:
        return {}
    plan = lower(Resolved(decl, "x", None))
    # Where each block's keys land in the plan; a style's own keys are spread over it.
    sections: dict[str, object] = {name: getattr(plan, name, None) for name in BLOCK_KEYS}
    homes = {(TOP, "model"): plan.model, (TOP, "markers"): plan.markers}
    defaults: dict[tuple[str, str], str] = {}
    for block in (TOP, *BLOCK_KEYS):
        for key, key_spec in keys_of(block).items():
            if key in PATH_KEYS or (block, key) in required_keys():
                continue
            owner = homes.get((block, key), sections.get(block))
            name = _PLAN_NAMES.get((block, key), key)
            if owner is None or not hasattr(owner, name):
                continue
            value = getattr(owner, name)
            if (block, key) == ("generate", "mode"):
                value = "sample" if value else "greedy"
            defaults[(block, key)] = written(value, key_spec)
    return defaults


def written(value: object, spec: KeySpec | None = None) -> str:
    """A Python value as a spec would write it.

    >>> written((LayerSpan(1, None),)), written(6.0), written("\\n"), written(None)
    ('[1..]', '6', '"\\\\n"', 'none')
    """
    from kvsl.lang.fmt import escape_string

    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value if spec is not None and spec.kind == "choice" else escape_string(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(written(v) for v in value) + "]"
    if isinstance(value, LayerSpan):
        return layer_text(value)
    return str(value)


def layer_text(span: LayerSpan) -> str:
    if span.stop is None:
        return f"{span.start}.."
    return str(span.start) if span.start == span.stop else f"{span.start}..{span.stop}"


# --- layers ----------------------------------------------------------------------------


def model_layers(decl: Decl | None) -> tuple[str, int] | None:
    """(model name, layer count) of a spec's model when known without loading weights.

    The embedded model's count is in the checker's table; a local directory or a model in
    the Hugging Face cache has it in its config.json. Other models: None.
    """
    found = decl.get(TOP, "model") if decl is not None else None
    if found is None or not isinstance(found.value, str):
        name, directory = DEFAULT_MODEL, os.getcwd()
    else:
        name, directory = found.value, found.directory
    if name in EMBEDDED_MODEL_LAYERS:
        return name, EMBEDDED_MODEL_LAYERS[name]
    kind, location = model_kind(name, directory)
    config: Path | None = None
    if kind == "directory":
        config = Path(location) / "config.json"
    elif kind == "hub":
        config = _hub_config(name)
    count = _config_layers(config) if config is not None else None
    return (name, count) if count is not None else None


def _hub_config(name: str) -> Path | None:
    home = os.environ.get("HF_HOME", os.path.join("~", ".cache", "huggingface"))
    hub = os.environ.get("HF_HUB_CACHE", os.path.join(home, "hub"))
    snapshots = Path(hub).expanduser() / ("models--" + name.replace("/", "--")) / "snapshots"
    try:
        found = sorted(snapshots.glob("*/config.json"))
    except OSError:
        return None
    return found[-1] if found else None


def _config_layers(path: Path) -> int | None:
    try:
        config = loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    for section in (config, config.get("text_config")):
        if isinstance(section, dict):
            for key in ("num_hidden_layers", "n_layer", "num_layers"):
                if isinstance(section.get(key), int) and section[key] > 0:
                    return int(section[key])
    return None


def resolved_layers(spans: tuple[LayerSpan, ...], num_layers: int) -> list[int]:
    """The layers a selection picks on a model with `num_layers` layers (in range only).

    >>> resolved_layers((LayerSpan(1, 3), LayerSpan(-1, -1)), 30)
    [1, 2, 3, 29]
    """
    chosen: set[int] = set()
    for span in spans:
        chosen.update(i for i in span.resolve(num_layers) if 0 <= i < num_layers)
    return sorted(chosen)


def compact(layers: list[int]) -> str:
    """`[1, 2, 3, 7]` → `1..3, 7`.

    >>> compact([1, 2, 3, 7]), compact([])
    ('1..3, 7', 'none')
    """
    runs: list[str] = []
    for layer in layers:
        if runs and runs[-1].split("..")[-1] == str(layer - 1):
            runs[-1] = runs[-1].split("..")[0] + f"..{layer}"
        else:
            runs.append(str(layer))
    return ", ".join(runs) or "none"


# --- styles ----------------------------------------------------------------------------


def builtin_style_descriptions() -> dict[str, str]:
    """Built-in style name → its one-line description (`kvsl styles`)."""
    from kvsl.builtin import builtin_styles

    return {style.name: style.description for style in builtin_styles()}


def style_description(name: str) -> str | None:
    return builtin_style_descriptions().get(name.strip()) if name.strip() else None
