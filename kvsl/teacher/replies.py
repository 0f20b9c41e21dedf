"""Judging what the teacher server sent back: a chat completion at all, and a usable trace.

`malformed_completion` refuses a 200 response that is not a chat completion (an HTML
page, another API's JSON, text that is not JSON): a failed request (`bad_response`).
`judge_reply` refuses a completion whose text gives no usable trace (no `<step>` tags,
no `<answer>`, the wrong answer, an empty or truncated reply) with the skip record
that says why.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kvsl.formats.questions import Example
from kvsl.teacher.parsing import ParsedReply, answers_agree
from kvsl.teacher.skiplog import SkipRecord

REPLY_EXCERPT_CHARS = 2000  # how much of a rejected reply the skip log keeps


def judge_reply(
    example: Example, content: str, parsed: ParsedReply, finish: str | None
) -> SkipRecord | None:
    """Why the reply `content` (parsed as `parsed`) gives no trace for `example`, or None.

    A rejected reply cut short by `max_tokens` (`finish == "length"`) is `truncated`,
    unless its answer was simply wrong.
    """
    excerpt = content[:REPLY_EXCERPT_CHARS]
    reject: SkipRecord | None = None
    if not content.strip():
        permanent = finish == "content_filter"
        reject = SkipRecord(
            example.id,
            "empty_reply",
            permanent,
            f"the reply was empty (finish_reason={finish})",
        )
    elif not parsed.steps:
        reject = SkipRecord(
            example.id,
            "no_steps",
            True,
            "the reply has no <step>...</step> tags",
            reply=excerpt,
        )
    elif parsed.answer is None:
        reject = SkipRecord(
            example.id,
            "no_answer",
            True,
            "the reply has no <answer>...</answer> tag",
            reply=excerpt,
        )
    elif not answers_agree(parsed.answer, example.answer, example.choices):
        reject = SkipRecord(
            example.id,
            "wrong_answer",
            True,
            "the teacher's answer differs from the known answer",
            expected=example.answer,
            got=parsed.answer,
            reply=excerpt,
        )
    if reject is not None and finish == "length" and reject.reason != "wrong_answer":
        reject = replace(
            reject, reason="truncated", detail=reject.detail + "; the reply hit max_tokens"
        )
    return reject


def malformed_completion(response: Any) -> str | None:
    """Why a 200 response is not a chat completion, or None when it is one.

    The openai client returns what it could make of the body: the text of a non-JSON page,
    a list, or a ChatCompletion built without validation from JSON of another shape.

    >>> malformed_completion("<html>sign in</html>")
    "the server answered HTTP 200 with a body that is not JSON: '<html>sign in</html>'"
    """
    if isinstance(response, str | bytes):
        text = response.decode("utf-8", "replace") if isinstance(response, bytes) else response
        start = " ".join(text.split())[:120]
        return f"the server answered HTTP 200 with a body that is not JSON: {start!r}"
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        if isinstance(choices, list):
            found = "an empty `choices` list"
        elif choices is not None:
            found = f"`choices` that is {_json_kind(choices)}, not a list of answers"
        elif hasattr(response, "model_extra"):
            keys = ", ".join(f"`{k}`" for k in sorted(response.model_extra or {}))
            found = f"JSON with keys {keys} and no `choices`" if keys else "JSON with no `choices`"
        else:
            found = f"JSON that is {_json_kind(response)}, with no `choices`"
        return f"the server answered HTTP 200 with {found}: not a chat completion"
    message = getattr(choices[0], "message", None)
    if not hasattr(message, "content"):
        # `construct`ed without validation: a `choices` entry may be a number, a message a string
        return "the server answered HTTP 200 with a `choices` entry that has no message"
    content = message.content  # type: ignore[union-attr]
    if not (content is None or isinstance(content, str)):
        return (
            f"the server answered HTTP 200 with a message whose `content` is "
            f"{_json_kind(content)}, not text"
        )
    if content is not None and any("\ud800" <= ch <= "\udfff" for ch in content):
        # JSON may escape a lone surrogate (`"\\ud800"`); no UTF-8 file can hold it, so
        # appending the trace ended the run with UnicodeEncodeError
        return "the server answered HTTP 200 with message text that is not Unicode (a lone surrogate)"
    return None


def _json_kind(value: object) -> str:
    """How JSON would name `value`'s type: `a list`, `null`, `a number`..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    return "an object"
