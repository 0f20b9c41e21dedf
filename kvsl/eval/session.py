"""Setting up an eval: the plan, the model, the vectors and the configured methods.

Shared by `kvsl eval` and `scripts/make_results.py`, so both evaluate exactly the same way:

- a `.kvs` spec is compiled and built (content-addressed: an unchanged spec is not rebuilt),
  or an artifact is loaded and checked against the model; without either, only `plain`
  and `cot` can run (on `--model`);
- CAA vectors come from the plan's own contrast pairs and are cached next to the results
  (`<out>/caa/<vector hash>.safetensors`), so a resumed eval does not extract them again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvsl.base.plurals import counted
from kvsl.eval.caa import CaaVectors
from kvsl.eval.methods import Generator, Method
from kvsl.lang.diagnostics import COMMAND_LINE, ExitCode, KvslError
from kvsl.lang.plan import LayerSpan, Plan


@dataclass
class EvalContext:
    """Everything the methods need, loaded once."""

    plan: Plan | None
    loaded: Any  # kvsl.engine.models.LoadedModel
    vectors: Any  # SteeringVectors | None
    generator: Generator
    out_dir: Path
    console: Any = None

    @property
    def identity(self) -> dict[str, object]:
        """The model fingerprint + dtype: part of every results-cache key."""
        return {**self.loaded.identity, "dtype": str(self.loaded.dtype)}

    @property
    def device_name(self) -> str:
        """Where the model runs, for reports: `cpu` or e.g. `cuda (NVIDIA H200)`."""
        device = self.loaded.device
        if device.type == "cuda":
            import torch

            return f"cuda ({torch.cuda.get_device_name(device)})"
        return str(device.type)

    @property
    def num_layers(self) -> int:
        return int(self.loaded.geometry.num_layers)


def _needs_spec(method: str) -> KvslError:
    return KvslError.one(
        "KVS611",
        f"method `{method}` needs a spec or an artifact",
        COMMAND_LINE,
        help="pass a `.kvs` spec (or a built artifact) as the first argument, or "
        "evaluate only `plain,cot` with `--model`",
        exit_code=ExitCode.USAGE,
    )


def plan_of_target(target: Path) -> Plan:
    """The plan of a `.kvs` spec, or the one recorded in an artifact's manifest."""
    if target.suffix == ".kvs":
        from kvsl.lang import load_plan

        return load_plan(target)
    from kvsl.engine.artifact import plan_of_artifact

    return plan_of_artifact(target, instead="kvsl eval SPEC.kvs ...")


def open_context(
    target: Path | None,
    *,
    model: str | None = None,
    out_dir: Path,
    batch_size: int = 32,
    precision: str = "fp32",
    device: str | None = None,
    device_map: str | None = None,
    force: bool = False,
    need_vectors: bool = True,
    console: Any = None,
) -> EvalContext:
    """Load the plan (if any), the model and (if needed) the cache-steering vectors.

    `device` is checked (KVS309) before anything is loaded.
    """
    import torch

    from kvsl.engine.distributed import init_distributed, local_device
    from kvsl.engine.models import load_model, resolve_device, resolve_ref

    where = resolve_device(device) if device_map is None else None
    where = local_device(where, init_distributed(where))  # cuda → cuda:LOCAL_RANK under torchrun

    plan = plan_of_target(target) if target is not None else None
    if plan is not None:
        ref = plan.model if model is None else resolve_ref(model)
    elif model is not None:
        ref = resolve_ref(model)
    else:
        from kvsl.lang.plan import DEFAULT_MODEL

        ref = resolve_ref(DEFAULT_MODEL)
    if precision == "auto":
        from kvsl.engine.precision import choose_precision

        precision = choose_precision("auto", where).name
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    placement = None
    if device_map is not None:
        from kvsl.engine.placement import parse_device_map

        placement = parse_device_map(device_map)
    loaded = load_model(ref, dtype=dtype, device=where, device_map=placement)
    vectors = None
    if plan is not None and need_vectors and target is not None:
        vectors = _vectors(target, plan, loaded, force=force, console=console)
    system = plan.contrast.system_prompt if plan is not None else None
    generator = Generator(
        loaded.model, loaded.tokenizer, system_prompt=system, batch_size=batch_size
    )
    return EvalContext(plan, loaded, vectors, generator, out_dir, console)


def _vectors(target: Path, plan: Plan, loaded: Any, *, force: bool, console: Any) -> Any:
    from kvsl.engine.artifact import check_compatible, load_artifact

    if target.suffix == ".kvs":
        from kvsl.engine.build import build

        artifact = Path(build(plan, force=force, loaded=loaded, console=console).path)
    else:
        artifact = target
    vectors = load_artifact(artifact)
    check_compatible(vectors, loaded)
    return vectors


def with_contrast(plan: Plan, **changes: Any) -> Plan:
    """The plan with other contrast settings (`pairs`, `shots`), hashes recomputed."""
    fields = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)}
    fields.pop("vector_hash")
    fields.pop("plan_hash")
    fields["contrast"] = dataclasses.replace(plan.contrast, **changes)
    return Plan.create(**fields)


def vectors_for_contrast(ctx: EvalContext, **changes: Any) -> Any:
    """Cache-steering vectors for the plan with other `pairs`/`shots` (built and cached)."""
    from kvsl.engine.artifact import load_artifact
    from kvsl.engine.build import build

    if ctx.plan is None:
        raise _needs_spec("cache")
    plan = with_contrast(ctx.plan, **changes)
    return load_artifact(build(plan, loaded=ctx.loaded, console=ctx.console).path)


def coefficients(
    ctx: EvalContext,
    *,
    layers: Sequence[LayerSpan] | None = None,
    key: float | None = None,
    value: float | None = None,
) -> dict[int, tuple[float, float]]:
    """The spec's `{layer: (c_k, c_v)}`, with command-line overrides applied as `kvsl run`
    and `kvsl serve` apply them (`kvsl.lang.overrides.with_overrides`): `key` / `value` set
    that coefficient on every steered layer, replacing the spec's per-range `at` values;
    `layers` replaces the steered layers, inside which the per-range values still apply."""
    from kvsl.lang.overrides import with_overrides

    if ctx.plan is None:
        raise _needs_spec("cache")
    spans = tuple(layers) if layers is not None else None
    return _resolved(ctx, with_overrides(ctx.plan, layers=spans, key=key, value=value).steer)


def written_coefficients(
    ctx: EvalContext, *, layers: Sequence[LayerSpan], key: float, value: float
) -> dict[int, tuple[float, float]]:
    """The `{layer: (c_k, c_v)}` of the spec with `layers`, `key` and `value` written into
    its `steer` block, as `kvsl tune --write` writes them: its per-range `at` blocks stay
    and still apply, so a tuned setting scores what the written spec then steers with."""
    if ctx.plan is None:
        raise _needs_spec("cache")
    steer = dataclasses.replace(ctx.plan.steer, layers=tuple(layers), key=key, value=value)
    return _resolved(ctx, steer)


def _resolved(ctx: EvalContext, steer: Any) -> dict[int, tuple[float, float]]:
    """`steer.coefficients` for the model's layers (KVS451 for a layer it does not have)."""
    try:
        return steer.coefficients(ctx.num_layers)
    except ValueError as err:
        raise KvslError.usage(
            "KVS451",
            str(err),
            help=f"this model has layers 0..{ctx.num_layers - 1}",
        ) from None


def caa_vectors(ctx: EvalContext, *, batch_size: int | None = None) -> CaaVectors:
    """CAA directions from the plan's contrast pairs, cached under `<out>/caa/`.

    Under `torchrun` every rank calls it: the pairs are split (`extract_caa`), rank 0
    writes the cache file.
    """
    import torch
    from safetensors.torch import save_file

    from kvsl.engine.contrast import build_contrast_pairs, tokenize_pairs
    from kvsl.engine.distributed import is_main
    from kvsl.engine.generate import pad_token_id
    from kvsl.eval.caa import extract_caa

    if ctx.plan is None:
        raise _needs_spec("caa")
    model, tokenizer = ctx.loaded.model, ctx.loaded.tokenizer
    path = (
        ctx.out_dir
        / "caa"
        / f"{ctx.plan.vector_hash[:24]}-{str(ctx.loaded.dtype).split('.')[-1]}.safetensors"
    )
    hint = _model_hint(model)
    cached = _cached_directions(path, int(model.config.hidden_size)) if path.exists() else None
    if cached is not None:
        return CaaVectors(
            cached, hint, ctx.plan.contrast.pairs, {"pairs_sha256": ctx.plan.vector_hash}
        )
    pairs = tokenize_pairs(build_contrast_pairs(ctx.plan), tokenizer)
    ids = [(p.positive, p.negative) for p in pairs]
    if ctx.console is not None and is_main():
        ctx.console.print(f"extracting CAA directions from {counted(len(ids), 'contrast pair')}")
    vectors = extract_caa(
        model,
        ids,
        pad_id=pad_token_id(tokenizer, model),
        batch_size=batch_size or 1,
        model_hint=hint,
    )
    from kvsl.base.atomic import atomic_path
    from kvsl.engine.distributed import barrier

    if is_main():  # under torchrun every rank holds the reduced directions; rank 0 saves them
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            save_file(
                {
                    f"direction.{i}": v.to(torch.float32).contiguous()
                    for i, v in vectors.directions.items()
                },
                str(temporary),
            )
    barrier()  # the file exists for every rank before any looks for it again
    return CaaVectors(
        vectors.directions, hint, vectors.pairs, {"pairs_sha256": ctx.plan.vector_hash}
    )


def _cached_directions(path: Path, hidden: int) -> dict[int, Any] | None:
    """The cached CAA directions, or None (extracted again, the file replaced) when the file
    is not a whole cache: cut short, damaged, or of another model. It was read as it was,
    and a damaged one ended the eval with safetensors' traceback."""
    import torch
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
        directions = {int(name.split(".")[1]): t for name, t in tensors.items()}
    except Exception:  # safetensors' own error types (a bad header), or a foreign name
        return None
    if not directions or any(
        t.shape != (hidden,) or not bool(torch.isfinite(t).all()) for t in directions.values()
    ):
        return None
    return directions


def _model_hint(model: Any) -> str:
    """llama.cpp's architecture name for the model (SmolLM2 and Mistral run as `llama`)."""
    kind = str(getattr(model.config, "model_type", "llama"))
    return {"mistral": "llama", "smollm2": "llama"}.get(kind, kind)


def make_methods(
    ctx: EvalContext,
    names: Sequence[str],
    *,
    coefficients_: dict[int, tuple[float, float]] | None = None,
    caa: CaaVectors | None = None,
    caa_layer: int | None = None,
    caa_multiplier: float | None = None,
) -> list[Method]:
    """The configured methods, in the order asked for (plain first if present)."""
    from kvsl.eval.methods import caa_method, cache_method, cot_method, plain_method

    methods: list[Method] = []
    for name in names:
        if name == "plain":
            methods.append(plain_method())
        elif name == "cot":
            methods.append(cot_method())
        elif name in ("cache", "cache+cot"):
            if ctx.vectors is None or coefficients_ is None:
                raise _needs_spec(name)
            vector_id = str(ctx.vectors.manifest.get("vector_hash", "")) or (
                ctx.plan.vector_hash if ctx.plan else ""
            )
            methods.append(
                cache_method(
                    ctx.vectors, coefficients_, cot=name == "cache+cot", vector_id=vector_id
                )
            )
        elif name == "caa":
            if caa is None or caa_layer is None or caa_multiplier is None:
                raise _needs_spec(name)
            methods.append(caa_method(caa, caa_layer, caa_multiplier))
    methods.sort(key=lambda m: m.name != "plain")
    return methods
