"""A model's KV-cache geometry: one (kv_heads, head_dim) slot per layer and token.

Read from the config (`kv_geometry`), checked by running two tokens (`check_kv_cache`,
KVS303 for caches of another shape); `base_model` is the decoder without its LM head and
`cache_kwarg` the keyword its forward takes the cache under.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

from kvsl.engine.loading import model_error
from kvsl.lang.plan import ModelRef


@dataclass(frozen=True)
class KVGeometry:
    """The shape of a model's KV cache: one (kv_heads, head_dim) slot per layer and token."""

    num_layers: int
    kv_heads: int
    head_dim: int

    def to_dict(self) -> dict[str, int]:
        return {"num_layers": self.num_layers, "kv_heads": self.kv_heads, "head_dim": self.head_dim}


def cache_kwarg(module: Any) -> str:
    """The keyword a model's forward takes its cache under (`cache` from transformers 5.x)."""
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def kv_geometry(model: Any) -> KVGeometry:
    """The KV geometry of a causal LM, read from its config.

    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> cfg = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
    ...                   num_key_value_heads=2, intermediate_size=128, vocab_size=32)
    >>> kv_geometry(LlamaForCausalLM(cfg))
    KVGeometry(num_layers=2, kv_heads=2, head_dim=16)
    """
    config = model.config
    config = getattr(config, "text_config", None) or config
    num_layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return KVGeometry(num_layers, kv_heads, int(head_dim))


def check_kv_cache(model: Any, ref: ModelRef) -> KVGeometry:
    """Run two tokens through the base model and check it fills a standard per-layer cache.

    Raises KVS303 for architectures whose cache is not one (kv_heads, seq, head_dim) tensor
    pair per layer (recurrent or sliding-window-only models, encoder-decoders, ...).
    """
    from transformers import DynamicCache

    geometry = kv_geometry(model)
    base = base_model(model)
    cache = DynamicCache(config=model.config)
    ids = torch.zeros((1, 2), dtype=torch.long, device=next(model.parameters()).device)
    problem = None
    try:
        with torch.inference_mode():
            base(input_ids=ids, use_cache=True, **{cache_kwarg(base): cache})
        layers = getattr(cache, "layers", None)
        if layers is None or len(layers) != geometry.num_layers:
            problem = "its cache does not hold one entry per layer"
        else:
            expected = (1, geometry.kv_heads, 2, geometry.head_dim)
            for index, layer in enumerate(layers):
                keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
                if not isinstance(keys, torch.Tensor) or not isinstance(values, torch.Tensor):
                    problem = f"layer {index} has no key/value tensors in its cache"
                elif tuple(keys.shape) != expected or tuple(values.shape) != expected:
                    problem = (
                        f"layer {index} caches keys of shape {tuple(keys.shape)}, "
                        f"expected {expected}"
                    )
                if problem:
                    break
    except Exception as err:  # an architecture that cannot run this way at all
        problem = f"a forward pass with a cache failed ({type(err).__name__}: {err})"
    if problem:
        raise model_error(
            "KVS303",
            f"model `{ref.name}` ({type(model).__name__}) has no standard KV cache: {problem}",
            ref,
            "use a decoder-only causal LM with a per-layer key/value cache "
            "(Llama, SmolLM2, Qwen2/3, Phi-3, Mistral, ...)",
        )
    return geometry


def base_model(model: Any) -> Any:
    """The decoder without the LM head (`model.model` for …ForCausalLM classes)."""
    prefix = getattr(model, "base_model_prefix", "model")
    inner = getattr(model, prefix, None)
    return inner if isinstance(inner, torch.nn.Module) else model
