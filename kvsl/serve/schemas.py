"""Requests in, checked: OpenAI chat and completion bodies → a `Generation` to run.

Every problem is an `ApiError` with the HTTP status and the OpenAI error shape
(`{"error": {"message", "type", "param", "code"}}`), raised before anything is queued, so
a bad request never reaches the model. Fields the server does not know are ignored, as
OpenAI-compatible servers do; fields it cannot honour (tools, logprobs) are refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from kvsl.base.jsonl import loads
from kvsl.base.plurals import counted
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import GenerationSettings
from kvsl.serve.catalog import Catalog, ServedStyle


class ApiError(Exception):
    """An error answer: status, message and the OpenAI error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass(frozen=True)
class Limits:
    """Server-set bounds on every request."""

    max_prompt_tokens: int = 4096
    max_new_tokens: int = 512
    max_coefficient: float = 16.0
    max_n: int = 4


@dataclass(frozen=True)
class Generation:
    """A checked request: the prompt `T`, the edit of its style, and how to decode."""

    kind: str  # "chat" | "completion"
    model: str  # the model id as requested (echoed in the answer)
    style: ServedStyle | None
    prompt: list[int]  # T
    offset_id: int | None
    edit: Any  # kvsl.engine.steer.CacheEdit | None (None: no edit, also for coefficient 0)
    max_tokens: int
    stop: tuple[str, ...]
    sample: bool
    temperature: float
    top_p: float
    seed: int | None
    n: int
    stream: bool
    include_usage: bool
    # The style's decoding controls (`generate { repetition_penalty = ... }`), as `kvsl run`
    # applies them; plain model ids decode without any. Sorted (name, value) pairs.
    controls: tuple[tuple[str, object], ...] = ()

    @property
    def prompt_tokens(self) -> int:
        """Tokens fed before the first generated one: `T`, plus the offset token if steered."""
        return len(self.prompt) + (self.offset_id is not None)


MAX_STOP_CHARS = 1000  # a stop string longer than any answer the server returns never matches


def shown(name: str, limit: int = 80) -> str:
    """A client's name as an error message quotes it: at most `limit` characters, so a
    megabyte-long model id is not echoed back whole.

    >>> shown("tiny"), len(shown("x" * 10_000))
    ('tiny', 81)
    """
    return name if len(name) <= limit else name[:limit] + "…"


def _bad(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _number(body: dict[str, Any], name: str, low: float, high: float, *, low_open: bool = False) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"`{name}` must be a number", name, "invalid_type")
    if isinstance(value, float) and not math.isfinite(value):  # NaN, Infinity: JSON extensions
        raise _bad(f"`{name}` must be a number", name, "invalid_type")
    try:
        number = float(value)
    except OverflowError:  # an integer past a float's range (10**400): refused as out of range
        number = math.inf if value > 0 else -math.inf
    if number < low or number > high or (low_open and number == low):
        bracket = "(" if low_open else "["
        raise _bad(f"`{name}` must be in {bracket}{low:g}, {high:g}], got {number:g}", name, "invalid_value")
    return number


def _integer(body: dict[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"`{name}` must be an integer", name, "invalid_type")
    if value < low or (high is not None and value > high):
        upper = f" and at most {high}" if high is not None else ""
        raise _bad(f"`{name}` must be at least {low}{upper}, got {value}", name, "invalid_value")
    return value


# A temperature below this samples as greedy decoding does: the gap between the best and
# the next token's logit (float32: at least ~1e-6 at the logits' magnitude) divided by it is
# past 1e13, and exp(-1e13) is 0 in float32. Far below it, logits / T overflows to inf.
GREEDY_BELOW = 1e-20


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body (400 for anything else)."""
    try:
        body = loads(raw)
    except json.JSONDecodeError as err:  # why and where: a lone surrogate is valid syntax
        raise _bad(f"the body is not valid JSON: {err.msg[:100]} (line {err.lineno} column "
                   f"{err.colno})", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError):
        raise _bad("the body is not valid JSON (not UTF-8 text)", code="invalid_json") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object", code="invalid_json")
    return body


def _style(body: dict[str, Any], catalog: Catalog) -> tuple[ServedStyle | None, dict[str, Any]]:
    """The style a request names (model id `MODEL:STYLE` or `kvsl.style`) and its settings."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("`model` must be a non-empty string", "model", "invalid_type")
    base, _, style_name = model.partition(":")
    if base != catalog.model_id or (style_name and style_name not in catalog.styles):
        raise ApiError(
            404,
            f"the model `{shown(model)}` does not exist; served: {', '.join(catalog.model_ids())}",
            param="model",
            code="model_not_found",
        )
    settings = body.get("kvsl")
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise _bad("`kvsl` must be an object: {style, value, key, layers}", "kvsl", "invalid_type")
    unknown = sorted(set(settings) - {"style", "value", "key", "layers"})
    if unknown:
        raise _bad(f"unknown `kvsl` field `{unknown[0]}` (known: style, value, key, layers)",
                   f"kvsl.{unknown[0]}", "unknown_parameter")
    named = settings.get("style")
    if named is not None:
        if not isinstance(named, str):
            raise _bad("`kvsl.style` must be a string", "kvsl.style", "invalid_type")
        if named not in catalog.styles:
            raise ApiError(404, f"unknown style `{shown(named)}`; served: {', '.join(catalog.styles) or 'none'}",
                           param="kvsl.style", code="style_not_found")
        if style_name and named != style_name:
            raise _bad(f"`kvsl.style` is `{shown(named)}` but the model id names `{style_name}`", "kvsl.style")
        style_name = named
    if not style_name and set(settings) - {"style"}:
        raise _bad("`kvsl` settings need a style (a model id `MODEL:STYLE` or `kvsl.style`)", "kvsl")
    return (catalog.styles[style_name] if style_name else None), settings


def _edit(style: ServedStyle, settings: dict[str, Any], catalog: Catalog, limits: Limits) -> Any:
    """The style's cache edit with the request's `value`, `key` and `layers` (None if empty)."""
    from kvsl.engine.steer import resolve_edit
    from kvsl.lang.overrides import parse_layers, with_overrides
    from kvsl.lang.plan import LayerSpan

    bound = limits.max_coefficient
    value = _number(settings, "value", -bound, bound)
    key = _number(settings, "key", -bound, bound)
    raw_layers = settings.get("layers")
    spans = None
    if raw_layers is not None:
        if isinstance(raw_layers, str):
            try:
                spans = parse_layers(raw_layers)
            except KvslError as err:
                raise _bad(err.diagnostics[0].message, "kvsl.layers", "invalid_value") from None
        elif isinstance(raw_layers, list) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in raw_layers
        ):
            spans = tuple(LayerSpan(x, x) for x in raw_layers)
        else:
            raise _bad("`kvsl.layers` must be a string such as \"1..\" or a list of integers",
                       "kvsl.layers", "invalid_type")
    plan = with_overrides(style.plan, layers=spans, key=key, value=value)
    num_layers = catalog.loaded.geometry.num_layers
    try:
        coefficients = plan.steer.coefficients(num_layers)
    except ValueError as err:
        raise _bad(f"{err} (layers 0..{num_layers - 1})", "kvsl.layers", "invalid_value") from None
    edit = resolve_edit(style.vectors, coefficients, catalog.loaded.geometry)
    return None if edit.is_empty else edit


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        for part in value
    ):
        return "".join(part["text"] for part in value)
    raise _bad(f"`{where}` must be a string or a list of text parts", where, "invalid_type")


def _chat_prompt(body: dict[str, Any], style: ServedStyle | None, tokenizer: Any) -> list[int]:
    from kvsl.engine.prompting import Message, prompt_ids

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("`messages` must be a non-empty list", "messages", "invalid_type")
    chat: list[Message] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"`messages[{i}]` must be an object", f"messages[{i}]", "invalid_type")
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise _bad(f"`messages[{i}].role` must be system, user or assistant, got {shown(repr(role))}",
                       f"messages[{i}].role", "invalid_value")
        chat.append(Message(role, _content(message.get("content"), f"messages[{i}].content")))
    if style is not None and style.system_prompt is not None and chat[0].role != "system":
        # The system prompt the vectors were extracted with, as `kvsl run` uses it.
        chat.insert(0, Message("system", style.system_prompt))
    # A style extracted with a prefix (`extract { prefix }`) starts the answer with it, as
    # `kvsl run` does: the edited position is then the token the vectors were read at.
    prefix = style.vectors.prefix if style is not None else ""
    return prompt_ids(tokenizer, chat, prefix)


def _completion_prompt(body: dict[str, Any], tokenizer: Any) -> list[int]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise _bad("`prompt` must be a non-empty string", "prompt", "invalid_type")
    return list(tokenizer(prompt, add_special_tokens=True)["input_ids"])


def _stop(body: dict[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return default
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
        raise _bad("`stop` must be a string or a list of up to 4 non-empty strings", "stop", "invalid_type")
    if any(len(s) > MAX_STOP_CHARS for s in stop):
        raise _bad(f"a stop string must be at most {MAX_STOP_CHARS} characters", "stop", "invalid_value")
    return tuple(stop)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for name in ("tools", "functions", "tool_choice", "logprobs", "top_logprobs", "logit_bias"):
        if body.get(name) not in (None, False, [], {}):
            raise _bad(f"`{name}` is not supported by this server", name, "unsupported_parameter")


def parse_generation(body: dict[str, Any], kind: str, catalog: Catalog, limits: Limits) -> Generation:
    """Check a chat (`kind="chat"`) or completion request against the catalog and the limits.

    Fields left out take the style's spec defaults (`generate { ... }`), so a request with
    only `model` and `messages` decodes as `kvsl run` would for that style.
    """
    from kvsl.engine.context_window import context_overflow

    _refuse_unsupported(body)
    style, settings = _style(body, catalog)
    tokenizer = catalog.loaded.tokenizer
    prompt = _chat_prompt(body, style, tokenizer) if kind == "chat" else _completion_prompt(body, tokenizer)
    offset_id = style.offset_id if style is not None else None
    edit = _edit(style, settings, catalog, limits) if style is not None else None
    fed = len(prompt) + (offset_id is not None)
    if fed > limits.max_prompt_tokens:
        raise _bad(f"the prompt is {counted(fed, 'token')}, more than this server's limit of "
                   f"{limits.max_prompt_tokens}", "messages" if kind == "chat" else "prompt",
                   "context_length_exceeded")
    plan = style.plan.generate if style is not None else None
    max_tokens = _integer(body, "max_completion_tokens", 1, limits.max_new_tokens)
    max_tokens = max_tokens or _integer(body, "max_tokens", 1, limits.max_new_tokens)
    if max_tokens is None:
        max_tokens = min(plan.max_new_tokens if plan else 256, limits.max_new_tokens)
    # Refused here: past the model's positions, generation would fail the whole batch.
    overflow = context_overflow(catalog.loaded.model, fed, max_tokens, name="max_tokens")
    if overflow is not None:  # `kvsl run`, `eval` and `tune` refuse it too (KVS463)
        raise _bad(overflow, "max_tokens", "context_length_exceeded")
    temperature = _number(body, "temperature", 0.0, 2.0)
    top_p = _number(body, "top_p", 0.0, 1.0, low_open=True)
    sample = temperature > 0 if temperature is not None else bool(plan and plan.sample)
    given = {"top_p"} if top_p is not None else set()
    for name in GenerationSettings(sample=sample, top_p=top_p or 1.0).ignored(given):
        # As `kvsl run --greedy --top-p 0.5` is refused (`GenerationSettings.problems`).
        raise _bad(f"`{name}` has no effect with greedy decoding (`temperature` 0, or a "
                   "style that decodes greedily): give a `temperature` above 0 to sample",
                   name, "invalid_value")
    if sample and temperature is not None and 0 < temperature < GREEDY_BELOW:
        # Decoded greedily: what sampling at this temperature gives in float32 anyway, where a
        # draw at 5e-324 (logits / T overflowing to inf) failed every request of the batch.
        sample, temperature = False, None
    seed = _integer(body, "seed", 0, 2**63 - 1)
    if seed is None and temperature is None and plan is not None and plan.sample:
        seed = plan.seed  # sampling as the spec says, reproducibly, as `kvsl run` does
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("`stream` must be a boolean", "stream", "invalid_type")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", True), bool):
        raise _bad("`stream_options` must be an object {include_usage: bool}", "stream_options",
                   "invalid_type")
    return Generation(
        kind=kind,
        model=str(body["model"]),
        style=style,
        prompt=prompt,
        offset_id=offset_id,
        edit=edit,
        max_tokens=max_tokens,
        stop=_stop(body, tuple(plan.stop) if plan else ()),
        sample=sample,
        temperature=temperature if temperature else (plan.temperature if plan else 1.0),
        top_p=top_p if top_p is not None else (plan.top_p if plan else 1.0),
        seed=seed,
        n=_integer(body, "n", 1, limits.max_n) or 1,
        stream=stream,
        include_usage=bool(options.get("include_usage", True)),
        controls=tuple(sorted(plan.controls().items())) if plan is not None else (),
    )
