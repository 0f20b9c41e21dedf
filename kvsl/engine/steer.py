"""One-shot KV-cache steering: one edit of the prefilled cache, then ordinary generation.

The method (Belitsky et al., 2025), with the position convention of `kvsl.engine.prompting`:

1. prefill the prompt `T` (chat template, generation prompt on) into a `DynamicCache`;
2. add `c_k · S_k[layer]` to the cached keys and `c_v · S_v[layer]` to the cached values at
   the last position of `T`, in the chosen layers (`apply_edit`);
3. generate normally from `T + [o]`, where `o` is the offset token: the first forward pass
   feeds `o`, so the first generated token already attends to the edited position.

Nothing runs per generated token: no hooks, no patched modules during decoding. The only
state ever changed on a model is scoped (`steered` restores `model.forward` on exit).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from kvsl.base.plurals import counted
from kvsl.engine.geometry import EDITABLE_LAYERS, KVGeometry, cache_kwarg, kv_geometry
from kvsl.engine.inputs import new_cache, position_ids
from kvsl.engine.vectors import SteeringVectors
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.source import Span

Coefficients = Mapping[int, tuple[float, float]]  # layer → (c_k, c_v)

_API = Span.whole_file("<python>")


def _cache_layers(cache: Any) -> list[Any]:
    """The cache's layers, each with `keys`/`values` (batch, kv_heads, seq, head_dim) whose
    last sequence index is the newest token; KVS459 for any other cache."""
    layers = getattr(cache, "layers", None)
    odd = _why_not_editable(layers)
    if odd is not None:
        raise KvslError.one(
            "KVS459",
            f"the cache of this model (`{type(cache).__name__}`) has {odd}",
            _API,
            help="steer a transformer with a dynamic KV cache (Llama, Qwen2/3, Phi-3, ...); "
            "leave `cache_implementation` unset",
            exit_code=ExitCode.ENVIRONMENT,
        )
    return list(layers or ())


def _why_not_editable(layers: Any) -> str | None:
    """What keeps index -1 of these cache layers from being the last token (None: nothing).

    Only plain and sliding-window attention layers qualify (`EDITABLE_LAYERS`): a static
    cache's buffers end in unused slots and a linear-attention layer keeps no tokens, so an
    edit at index -1 there would change the wrong thing, or nothing, without a word.
    """
    if layers is None or not all(
        isinstance(getattr(layer, "keys", None), torch.Tensor)
        and isinstance(getattr(layer, "values", None), torch.Tensor)
        and layer.keys.dim() == 4
        for layer in layers
    ):
        return "no per-layer key and value tensors to edit"
    for layer in layers:
        kind = type(layer).__name__
        if not isinstance(layer, _LayerView) and kind not in EDITABLE_LAYERS:
            return f"`{kind}` layers, whose last slot is not the last prompt token"
    return None


@dataclass(frozen=True)
class CacheEdit:
    """The resolved edit: per layer, the exact deltas `c_k·S_k` and `c_v·S_v` to add.

    Layers whose two coefficients are both 0 are left out, so an all-zero edit is empty.
    """

    keys: Mapping[int, torch.Tensor]  # layer → (kv_heads, head_dim), float32
    values: Mapping[int, torch.Tensor]  # layer → (kv_heads, head_dim), float32

    @property
    def layers(self) -> list[int]:
        return sorted(set(self.keys) | set(self.values))

    @property
    def is_empty(self) -> bool:
        return not self.keys and not self.values


def resolve_edit(
    vectors: SteeringVectors, coefficients: Coefficients, geometry: KVGeometry | None = None
) -> CacheEdit:
    """Multiply the vectors by their coefficients, checking them against the model first.

    >>> v = SteeringVectors({0: torch.ones(2, 4), 1: torch.ones(2, 4)},
    ...                     {0: torch.ones(2, 4), 1: torch.ones(2, 4)})
    >>> edit = resolve_edit(v, {1: (0.0, 2.0)})
    >>> edit.layers, float(edit.values[1].sum())
    ([1], 16.0)
    """
    if geometry is not None and (
        vectors.num_layers != geometry.num_layers
        or vectors.geometry != (geometry.kv_heads, geometry.head_dim)
    ):
        raise KvslError.one(
            "KVS458",
            f"the vectors have {counted(vectors.num_layers, 'layer')} of {vectors.geometry} "
            f"(kv_heads, head_dim), the model has {counted(geometry.num_layers, 'layer')} of "
            f"({geometry.kv_heads}, {geometry.head_dim})",
            _API,
            help="use vectors built for this model (`kvsl build` with the spec's model)",
        )
    keys: dict[int, torch.Tensor] = {}
    values: dict[int, torch.Tensor] = {}
    for layer, (c_k, c_v) in sorted(coefficients.items()):
        if layer not in vectors.keys or layer not in vectors.values:
            raise KvslError.one(
                "KVS451",
                f"layer {layer} is not in the vectors (layers 0..{vectors.num_layers - 1})",
                _API,
                help="steer layers the vectors were extracted for",
                exit_code=ExitCode.USAGE,
            )
        # Multiply in float32 once, here: the cache then receives exactly c·S (cast to its dtype).
        if c_k != 0:
            keys[layer] = float(c_k) * vectors.keys[layer].to(torch.float32)
        if c_v != 0:
            values[layer] = float(c_v) * vectors.values[layer].to(torch.float32)
    return CacheEdit(keys, values)


def apply_edit(cache: Any, edit: CacheEdit, position: int = -1) -> None:
    """Add the edit to the cache in place, at one sequence position of every row.

    With left padding the last prompt token sits at the same index (-1) in every row.

    >>> from transformers import DynamicCache
    >>> cache = DynamicCache()
    >>> _ = cache.update(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), 0)
    >>> apply_edit(cache, CacheEdit({}, {0: torch.ones(2, 4)}))
    >>> cache.layers[0].values[0, :, :, 0].tolist()
    [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    """
    layers = _cache_layers(cache)
    for layer in edit.layers:
        if layer >= len(layers):
            raise KvslError.one(
                "KVS451",
                f"layer {layer} is outside a cache with {counted(len(layers), 'layer')}",
                _API,
                help="steer layers that exist in the model",
                exit_code=ExitCode.USAGE,
            )
        entry = layers[layer]
        for cached, deltas in ((entry.keys, edit.keys), (entry.values, edit.values)):
            if layer not in deltas:
                continue
            delta = deltas[layer]  # (kv_heads, head_dim)
            if cached.shape[1] != delta.shape[0] or cached.shape[3] != delta.shape[1]:
                raise KvslError.one(
                    "KVS458",
                    f"layer {layer} of the cache is (kv_heads, head_dim) = "
                    f"{(cached.shape[1], cached.shape[3])}, the vector is {tuple(delta.shape)}",
                    _API,
                    help="use vectors built for this model (`kvsl build` with the spec's model)",
                )
            # cached: (batch, kv_heads, seq, head_dim); the view [:, :, position] is written in place.
            cached[:, :, position, :] += delta.to(device=cached.device, dtype=cached.dtype)


def apply_row_edits(cache: Any, edits: Sequence[CacheEdit | None], position: int = -1) -> None:
    """Add each row's own edit at one sequence position; rows with `None` are left untouched.

    Row `i` receives exactly what `apply_edit(cache, edits[i])` would give it alone (the same
    float32 delta, cast once to the cache dtype), so a batch can mix styles, coefficients and
    plain rows.

    >>> from transformers import DynamicCache
    >>> cache = DynamicCache()
    >>> _ = cache.update(torch.zeros(2, 1, 2, 1), torch.zeros(2, 1, 2, 1), 0)
    >>> apply_row_edits(cache, [None, CacheEdit({}, {0: torch.ones(1, 1)})])
    >>> cache.layers[0].values[:, 0, :, 0].tolist()
    [[0.0, 0.0], [0.0, 1.0]]
    """
    layers = _cache_layers(cache)
    if layers and len(edits) != layers[0].keys.shape[0]:
        rows = int(layers[0].keys.shape[0])
        raise ValueError(f"{counted(len(edits), 'row edit')} for a cache of {counted(rows, 'row')}")
    for row, edit in enumerate(edits):
        if edit is None or edit.is_empty:
            continue
        # (batch, kv_heads, seq, head_dim) → this row only: (1, kv_heads, seq, head_dim)
        apply_edit(_RowView(layers, row), edit, position)


@dataclass(frozen=True)
class _RowView:
    """One row of a cache's layers, as `apply_edit` sees a cache (views: writes go through)."""

    rows_of: list[Any]
    row: int

    @property
    def layers(self) -> list[Any]:
        return [
            _LayerView(layer.keys[self.row : self.row + 1], layer.values[self.row : self.row + 1])
            for layer in self.rows_of
        ]


@dataclass(frozen=True)
class _LayerView:
    keys: torch.Tensor  # (1, kv_heads, seq, head_dim), a view into the batch
    values: torch.Tensor


def prefill(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
    """Run the prompt through the model once and return the filled `DynamicCache`.

    `input_ids`, `attention_mask`: (batch, seq), left-padded.
    """
    cache = new_cache(model)
    kwargs: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids(attention_mask),
        "use_cache": True,
        cache_kwarg(model): cache,
    }
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        kwargs["logits_to_keep"] = 1  # the prefill needs the cache, not the logits
    model(**kwargs)
    return cache


def coefficients_from_manifest(vectors: SteeringVectors) -> dict[int, tuple[float, float]]:
    """The spec's coefficients recorded in the vectors' manifest (KVS461 when there are none)."""
    from kvsl.engine.artifact import recorded_coefficients

    recorded = recorded_coefficients(vectors.manifest, vectors.num_layers)
    if recorded is not None:
        return recorded
    raise KvslError.one(
        "KVS461",
        "no coefficients given and the vectors' manifest records none",
        _API,
        help="pass `coefficients={layer: (c_k, c_v), ...}`, e.g. `{1: (0.0, 6.0)}`",
        exit_code=ExitCode.USAGE,
    )


# Keyword arguments of a causal LM forward that run along the sequence and must be split
# with the prompt. The attention mask is not among them: it always covers cache + input.
_SEQUENCE_ARGUMENTS = ("input_ids", "position_ids", "token_type_ids", "cache_position")


def _is_prefill(kwargs: dict[str, Any], cache: Any) -> bool:
    """A forward pass of more than one token into an empty (or absent) cache."""
    ids = kwargs.get("input_ids")
    sequence = ids if ids is not None else kwargs.get("inputs_embeds")
    return (
        sequence is not None
        and sequence.shape[1] > 1
        and (cache is None or cache.get_seq_length() == 0)
    )


def _check_prefill(kwargs: dict[str, Any], offset_token_id: int | None) -> None:
    """KVS462 for a prefill without a cache; KVS460 for a prompt not ending in the offset token."""
    if kwargs.get("use_cache") is False:
        raise KvslError.one(
            "KVS462",
            "a steered forward pass was called with `use_cache=False`",
            _API,
            help="leave `use_cache` on: the edit is made in the cache",
            exit_code=ExitCode.USAGE,
        )
    ids = kwargs.get("input_ids")
    if (
        offset_token_id is not None
        and ids is not None
        and bool((ids[:, -1] != offset_token_id).any())
    ):
        raise KvslError.one(
            "KVS460",
            f"a steered prompt ends with token {int(ids[0, -1])}, not the offset token "
            f"{offset_token_id}",
            _API,
            help="build the inputs with `kvsl.steering_inputs(tokenizer, prompts, vectors)`",
            exit_code=ExitCode.USAGE,
        )


def _split_prefill(
    kwargs: dict[str, Any], cache_name: str, cache: Any, original: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The prefill's arguments split in two: the prompt without its last token (`head`,
    filling `cache`), and that last token alone (`tail`, fed after the edit)."""
    head = dict(kwargs, **{cache_name: cache, "use_cache": True})
    tail = dict(head)
    for name in (*_SEQUENCE_ARGUMENTS, "inputs_embeds"):
        value = kwargs.get(name)
        if isinstance(value, torch.Tensor):
            # position_ids may be (batch, seq) or (3, batch, seq): split the last dim,
            # except inputs_embeds (batch, seq, hidden) and 1-D cache_position.
            dim = 1 if name == "inputs_embeds" else -1
            head[name] = value.narrow(dim, 0, value.shape[dim] - 1)
            tail[name] = value.narrow(dim, value.shape[dim] - 1, 1)
    mask = kwargs.get("attention_mask")
    if isinstance(mask, torch.Tensor) and mask.dim() == 2:
        head["attention_mask"] = mask[:, :-1]  # (batch, seq - 1)
    if "logits_to_keep" in inspect.signature(original).parameters:
        head["logits_to_keep"] = 1
    return head, tail


@contextmanager
def steered(
    model: Any,
    vectors: SteeringVectors,
    coefficients: Coefficients | None = None,
    *,
    offset_token_id: int | None = None,
) -> Iterator[CacheEdit]:
    """Steer every generation started inside the block, for users who call `generate` themselves.

    What it does, exactly: it replaces `model.forward` (on this instance only) by a wrapper
    and restores the original on exit, even after an error. The wrapper acts only on a
    *prefill*: a forward pass of more than one token into an empty (or absent) cache. It
    splits that pass in two: the prompt without its last token (`T`) fills the cache, the
    edit `c·S` is added at `T`'s last position, then the last token (the offset token `o`)
    is fed with the edited cache, and that pass's output is returned (logits for the last
    position only, which is all `generate` reads). Every other forward pass (each decoding
    step) goes straight to the original `forward`: nothing runs per token.

    So the input ids given to `generate` must be `T + [o]`, left-padded in a batch;
    `kvsl.steering_inputs` builds them. With `offset_token_id` set, a prompt that does not
    end with it is refused (KVS460).

    >>> # with steered(model, vectors, {1: (0.0, 6.0)}):
    >>> #     out = model.generate(**steering_inputs(tok, "Why?", vectors), max_new_tokens=64)
    """
    if coefficients is None:
        coefficients = coefficients_from_manifest(vectors)
    edit = resolve_edit(vectors, coefficients, kv_geometry(model))
    original = model.forward
    cache_name = cache_kwarg(model)

    @functools.wraps(original)  # keeps the signature `generate` inspects (position_ids, ...)
    def forward(*args: Any, **kwargs: Any) -> Any:
        if args:  # input_ids given positionally: name it so it can be split
            kwargs["input_ids"], args = args[0], args[1:]
        cache = kwargs.get(cache_name)
        if not _is_prefill(kwargs, cache):
            return original(*args, **kwargs)
        _check_prefill(kwargs, offset_token_id)
        if cache is None:
            cache = new_cache(model)
        head, tail = _split_prefill(kwargs, cache_name, cache, original)
        original(**head)
        apply_edit(cache, edit)
        return original(**tail)

    # accelerate's device hooks also live in the instance __dict__: put back whatever was there.
    had_own_forward = "forward" in model.__dict__
    model.forward = forward
    try:
        yield edit
    finally:
        if had_own_forward:
            model.forward = original
        else:
            del model.forward  # uncovers the class's own method again
