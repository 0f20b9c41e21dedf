"""A model's KV-cache geometry: one (kv_heads, head_dim) slot per layer and token.

Measured, not read from the config: `kv_geometry` runs two tokens through the decoder and
reads the shape of the cache it fills, since configs name heads in a dozen ways and some
say another thing than the cache holds (Falcon's `multi_query` caches one head whatever
`num_kv_heads` says; GPT-BigCode likewise). `check_kv_cache` refuses, with KVS303, caches
kvsl cannot edit exactly at one position: layers of another kind than plain or
sliding-window attention (linear attention, recurrent state, static buffers, ...), keys and
values of different shapes (DeepSeek's multi-head latent attention caches a compressed
latent), or layers of different shapes. `base_model` is the decoder without its LM head and
`cache_kwarg` the keyword its forward takes the cache under.
"""

from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass
from typing import Any

import torch

from kvsl.engine.loading import model_error, quiet_transformers
from kvsl.lang.plan import ModelRef

# Cache layers whose `keys`/`values` hold one slot per cached token, newest last, so that
# index -1 of the sequence dim is the last prompt token: full attention, and sliding-window
# attention (which keeps the newest `window - 1` tokens). Anything else is refused.
EDITABLE_LAYERS = ("DynamicLayer", "DynamicSlidingWindowLayer")


@dataclass(frozen=True)
class KVGeometry:
    """The shape of a model's KV cache: one (kv_heads, head_dim) slot per layer and token."""

    num_layers: int
    kv_heads: int
    head_dim: int

    def to_dict(self) -> dict[str, int]:
        return {"num_layers": self.num_layers, "kv_heads": self.kv_heads, "head_dim": self.head_dim}


class CacheProblem(Exception):
    """Why a model's cache cannot be steered (the text of a KVS303)."""


def cache_kwarg(module: Any) -> str:
    """The keyword a model's forward takes its cache under (`cache` from transformers 5.x)."""
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


_MEASURED: weakref.WeakKeyDictionary[Any, KVGeometry] = weakref.WeakKeyDictionary()


def kv_geometry(model: Any) -> KVGeometry:
    """The KV geometry of a causal LM, measured from the cache two tokens fill (once per model).

    Raises KVS303 (see `check_kv_cache`) for a cache kvsl cannot steer.

    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> cfg = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
    ...                   num_key_value_heads=2, intermediate_size=128, vocab_size=32)
    >>> kv_geometry(LlamaForCausalLM(cfg))
    KVGeometry(num_layers=2, kv_heads=2, head_dim=16)
    """
    return check_kv_cache(model, ModelRef(type(model).__name__, "directory", "<model>"))


def check_kv_cache(model: Any, ref: ModelRef) -> KVGeometry:
    """Run two tokens through the base model and return the geometry of the cache it fills.

    Raises KVS303 for architectures whose cache is not one (kv_heads, seq, head_dim) key and
    value tensor pair per layer, all of one shape, in layers kvsl can edit (`EDITABLE_LAYERS`):
    recurrent, linear-attention or latent-attention models, encoder-decoders, ...
    """
    known = _MEASURED.get(model)
    if known is not None:
        return known
    try:
        geometry = _measure(model)
    except CacheProblem as odd:
        raise _refusal(model, ref, str(odd)) from None
    except Exception as err:  # an architecture that cannot run this way at all
        failed = f"a forward pass with a cache failed ({type(err).__name__}: {err})"
        raise _refusal(model, ref, failed) from None
    _MEASURED[model] = geometry
    return geometry


def _refusal(model: Any, ref: ModelRef, problem: str) -> Exception:
    return model_error(
        "KVS303",
        f"model `{ref.name}` ({type(model).__name__}) has no standard KV cache: {problem}",
        ref,
        "use a decoder-only causal LM with a per-layer key/value cache "
        "(Llama, SmolLM2, Qwen2/3, Phi-3, Mistral, Gemma, GPT-2, ...)",
    )


def _measure(model: Any) -> KVGeometry:
    """The (layers, kv_heads, head_dim) of the cache two tokens fill; CacheProblem if odd."""
    from kvsl.engine.inputs import new_cache

    base = base_model(model)
    cache = new_cache(model)
    ids = torch.zeros((1, 2), dtype=torch.long, device=next(model.parameters()).device)
    with torch.inference_mode(), quiet_transformers():  # no fallback-kernel chatter
        base(input_ids=ids, use_cache=True, **{cache_kwarg(base): cache})
    layers = getattr(cache, "layers", None)
    config = getattr(model.config, "text_config", None) or model.config
    expected_layers = getattr(config, "num_hidden_layers", None)
    if not layers or (expected_layers is not None and len(layers) != int(expected_layers)):
        raise CacheProblem("its cache does not hold one entry per layer")
    shapes = set()
    for index, layer in enumerate(layers):
        kind = type(layer).__name__
        if kind not in EDITABLE_LAYERS:
            raise CacheProblem(
                f"layer {index} is cached as `{kind}`, not plain or sliding-window attention"
            )
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if not isinstance(keys, torch.Tensor) or not isinstance(values, torch.Tensor):
            raise CacheProblem(f"layer {index} has no key/value tensors in its cache")
        if keys.dim() != 4 or keys.shape[0] != 1 or keys.shape[2] != 2:
            raise CacheProblem(
                f"layer {index} caches keys of shape {tuple(keys.shape)}, expected "
                "(1, kv_heads, 2, head_dim) for two tokens"
            )
        if keys.shape != values.shape:
            raise CacheProblem(
                f"layer {index} caches keys of shape {tuple(keys.shape)} and values of shape "
                f"{tuple(values.shape)} (latent or asymmetric attention); steering vectors "
                "are one (kv_heads, head_dim) shape for both"
            )
        shapes.add((int(keys.shape[1]), int(keys.shape[3])))
    if len(shapes) != 1:
        raise CacheProblem(
            f"its layers cache (kv_heads, head_dim) of {len(shapes)} different shapes "
            f"{sorted(shapes)}"
        )
    [(kv_heads, head_dim)] = shapes
    return KVGeometry(len(layers), kv_heads, head_dim)


def base_model(model: Any) -> Any:
    """The decoder without the LM head (`model.model` for …ForCausalLM classes)."""
    prefix = getattr(model, "base_model_prefix", "model")
    inner = getattr(model, prefix, None)
    return inner if isinstance(inner, torch.nn.Module) else model
