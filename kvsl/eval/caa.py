"""Contrastive activation addition (CAA): the activation-steering baseline kvsl compares with.

From the *same* contrast pairs as cache steering (`kvsl.engine.contrast`), CAA takes the
residual stream instead of the KV cache:

- extraction: for every decoder layer `l`, the mean over the N pairs of
  (positive − negative) of layer `l`'s output hidden state at the last prompt token,
  `(hidden,)` in float32 (`extract_caa`). Under `torchrun` each rank takes pairs
  `rank, rank + W, ...`; the sums and the pair count are all-reduced, so the mean is exact
  whatever the split (`kvsl.engine.distributed`);
- steering: `multiplier · direction[l]` is added to layer `l`'s output by a forward hook
  (`caa_steering`), at the last prompt position during the prefill and at every position
  of every decoding step after it — so, unlike the one-shot cache edit, it costs work at
  every generated token. The hook is scoped: it is removed in `finally`;
- choice: the layer and the multiplier are chosen on a dev split (see
  `kvsl.eval.sweep.choose_caa`), never on the test set;
- export: `export_control_vector` writes a llama.cpp control-vector GGUF (architecture
  `controlvector`, tensors `direction.N`). llama.cpp adds `direction.N` to the output of
  its layer N (0-based) at every position, prompt included, and cannot steer layer 0, so
  `direction.N` here is kvsl's layer N and layer 0 is refused (KVS617). Use it with
  `llama-cli --control-vector-scaled caa.gguf 1.0`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kvsl.base.atomic import atomic_path
from kvsl.base.plurals import counted
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.source import Span

_API = Span.whole_file("<caa>")


@dataclass(frozen=True)
class CaaVectors:
    """Per-layer residual-stream directions: `directions[l]` is `(hidden,)` float32."""

    directions: dict[int, torch.Tensor]
    model_hint: str = "llama"  # llama.cpp architecture name, recorded in the GGUF
    pairs: int = 0
    manifest: dict[str, object] = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return len(self.directions)

    def norms(self) -> dict[int, float]:
        return {layer: float(v.norm()) for layer, v in sorted(self.directions.items())}


def decoder_layers(model: Any) -> torch.nn.ModuleList:
    """The decoder blocks of a causal LM (`model.model.layers` for Llama/Qwen/Phi-3).

    >>> # decoder_layers(model)[3]  → the 4th decoder layer module
    """
    candidates = (
        ("model", "layers"),
        ("model", "decoder", "layers"),
        ("transformer", "h"),
        ("gpt_neox", "layers"),
    )
    for path in candidates:
        module = model
        for name in path:
            module = getattr(module, name, None)
            if module is None:
                break
        if isinstance(module, torch.nn.ModuleList):
            return module
    raise KvslError.one(
        "KVS614",
        f"cannot find the decoder layers of `{type(model).__name__}` to steer",
        _API,
        help="CAA supports decoder-only models with `model.layers` "
        "(Llama, Qwen2/3, Phi-3, Mistral, ...)",
        exit_code=ExitCode.ENVIRONMENT,
    )


def resolve_layer(model: Any, layer: int) -> int:
    """A layer index for this model (negative counts from the end); KVS614 if outside."""
    count = len(decoder_layers(model))
    resolved = layer + count if layer < 0 else layer
    if not 0 <= resolved < count:
        raise KvslError.usage(
            "KVS614",
            f"CAA layer {layer} is outside a model with {counted(count, 'layer')}",
            help=f"choose a layer in 0..{count - 1} (or -{count}..-1 from the end)",
        )
    return resolved


def _hidden(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def extract_caa(
    model: Any,
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    pad_id: int = 0,
    batch_size: int = 1,
    model_hint: str | None = None,
    progress: Any = None,
) -> CaaVectors:
    """Mean (positive − negative) decoder-layer outputs at the last prompt token.

    `pairs` are token ids `(positive, negative)` (see `kvsl.engine.contrast.tokenize_pairs`).
    Batches are left-padded, so the last prompt token is at index -1 in every row.
    `progress(n)` is called after each batch with the number of prompts it finished.
    Under `torchrun` every rank must call it with the same `pairs`: each runs its share.

    >>> # vectors = extract_caa(model, [(pos_ids, neg_ids), ...])
    >>> # vectors.directions[5].shape  → (hidden,)
    """
    from kvsl.engine.distributed import all_reduce_sum, shard
    from kvsl.engine.inputs import left_pad, position_ids
    from kvsl.engine.models import base_model

    if not pairs:
        raise ValueError("CAA needs at least one contrast pair")
    layers = decoder_layers(model)
    mine = shard(pairs)  # this rank's pairs (all of them in one process)
    prompts = [list(p) for pair in mine for p in pair]  # pos0, neg0, pos1, neg1, ...
    last: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(layers))}
    current: dict[int, torch.Tensor] = {}

    def recorder(index: int) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            current[index] = _hidden(output)[:, -1, :].to(torch.float32)  # (batch, hidden)

        return hook

    handles = [layer.register_forward_hook(recorder(i)) for i, layer in enumerate(layers)]
    decoder = base_model(model)
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            for start in range(0, len(prompts), max(1, batch_size)):
                chunk = prompts[start : start + batch_size]
                ids, mask = left_pad(chunk, pad_id, device)  # (batch, seq)
                # The decoder alone: the hooks read layer outputs, no logits are needed
                # (the LM head over a 49k vocabulary at every position is most of the cost).
                decoder(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=position_ids(mask),
                    use_cache=False,
                )
                for i in last:
                    last[i].append(current[i].cpu())
                if progress is not None:
                    progress(len(chunk))
    finally:
        for handle in handles:
            handle.remove()
    hidden = int(model.get_input_embeddings().weight.shape[-1])  # the residual width
    sums = torch.zeros(len(layers), hidden, dtype=torch.float32)  # (layers, hidden)
    for i, rows in last.items():
        if rows:  # a rank with no pairs (more ranks than pairs) adds zeros
            stacked = torch.cat(rows)  # (2n, hidden): positives at even rows
            sums[i] = (stacked[0::2] - stacked[1::2]).sum(dim=0)
    # Sums and count over all ranks (one process: unchanged), so the mean is exact.
    sums = all_reduce_sum(sums)
    count = int(all_reduce_sum(torch.tensor([len(mine)], dtype=torch.float64))[0])
    directions = {i: (sums[i] / count).contiguous() for i in range(len(layers))}
    hint = model_hint or str(getattr(model.config, "model_type", "llama"))
    digest = hashlib.sha256(repr([tuple(p) for pair in pairs for p in pair]).encode()).hexdigest()
    return CaaVectors(directions, hint, len(pairs), {"pairs_sha256": digest})


@contextmanager
def caa_steering(model: Any, vectors: CaaVectors, layer: int, multiplier: float) -> Iterator[None]:
    """Add `multiplier · direction[layer]` to that layer's output inside the block.

    During a prefill (more than one position) only the last prompt position is steered;
    each decoding step (one position per row) is steered whole. The hook is removed on
    exit, even after an error, so the model computes exactly what it did before.

    >>> # with caa_steering(model, vectors, layer=12, multiplier=4.0):
    >>> #     out = model.generate(...)
    """
    index = resolve_layer(model, layer)
    module = decoder_layers(model)[index]
    direction = vectors.directions[index].to(torch.float32)

    def hook(module: Any, args: Any, output: Any) -> Any:
        hidden = _hidden(output)  # (batch, seq, hidden)
        delta = (multiplier * direction).to(device=hidden.device, dtype=hidden.dtype)
        if hidden.shape[1] > 1:
            steered = hidden.clone()
            steered[:, -1, :] += delta
        else:
            steered = hidden + delta
        if isinstance(output, tuple):
            return (steered, *output[1:])
        return steered

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


# --- llama.cpp control vectors -------------------------------------------------------------


def export_control_vector(
    vectors: CaaVectors,
    path: str | os.PathLike[str],
    *,
    layers: Sequence[int],
    multiplier: float = 1.0,
) -> Path:
    """Write `multiplier · direction[l]` for each layer as a llama.cpp control-vector GGUF.

    The file is written next to `path` and renamed into place, so a failed export leaves
    nothing half-written.

    >>> # export_control_vector(vectors, "caa.gguf", layers=[12], multiplier=4.0)
    """
    import gguf

    target = Path(path)
    if 0 in layers:
        raise KvslError.one(
            "KVS617",
            "layer 0 cannot be exported as a llama.cpp control vector",
            Span.whole_file(str(target)),
            help="llama.cpp steers layers 1 and up; choose a CAA layer >= 1",
            exit_code=ExitCode.USAGE,
        )
    if not target.parent.is_dir():
        raise KvslError.one(
            "KVS615",
            f"cannot write the control vector: folder `{target.parent}` does not exist",
            Span.whole_file(str(target)),
            help="create the folder first or pass another path",
            exit_code=ExitCode.USAGE,
        )
    arch = "controlvector"
    try:
        with atomic_path(target) as temporary:
            writer = gguf.GGUFWriter(str(temporary), arch)
            writer.add_string(f"{arch}.model_hint", vectors.model_hint)
            writer.add_uint32(f"{arch}.layer_count", len(layers))
            for layer in sorted(layers):
                data = (float(multiplier) * vectors.directions[layer]).to(torch.float32)
                writer.add_tensor(f"direction.{layer}", data.numpy())
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
    except OSError as err:
        raise KvslError.one(
            "KVS615",
            f"cannot write the control vector: {err}",
            Span.whole_file(str(target)),
            help="pass a path in a writable folder",
            exit_code=ExitCode.USAGE,
        ) from None
    return target


def read_control_vector(path: str | os.PathLike[str]) -> tuple[str, dict[int, torch.Tensor]]:
    """(model hint, {layer: (hidden,) tensor}) of a llama.cpp control-vector GGUF."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    hint = ""
    hint_field = reader.fields.get("controlvector.model_hint")
    if hint_field is not None:
        hint = bytes(hint_field.parts[hint_field.data[0]]).decode("utf-8")
    directions = {}
    for tensor in reader.tensors:
        if tensor.name.startswith("direction."):
            layer = int(tensor.name.split(".", 1)[1])
            directions[layer] = torch.tensor(tensor.data.copy(), dtype=torch.float32).reshape(-1)
    return hint, directions


def caa_from_control_vector(path: str | os.PathLike[str], num_layers: int) -> CaaVectors:
    """A control-vector GGUF as `CaaVectors` (missing layers are zero vectors)."""
    hint, directions = read_control_vector(path)
    if not directions:
        raise KvslError.one(
            "KVS615",
            f"`{path}` holds no `direction.N` tensors",
            Span.whole_file(str(path)),
            help="export one with `kvsl eval ... --export-caa caa.gguf`",
            exit_code=ExitCode.USAGE,
        )
    hidden = next(iter(directions.values())).shape[0]
    full = {i: directions.get(i, torch.zeros(hidden)) for i in range(num_layers)}
    return CaaVectors(full, hint or "llama", 0, {"source": str(path)})
