"""Chat prompts, shared by extraction and steering so both see the same tokens.

The position convention (the paper's): a prompt `T` is the chat template applied to the
messages with the generation prompt on. Extraction reads keys and values at the last
token of `T`. Steering prefills `T`, edits that same cache position, then starts
generation by feeding one appended *offset token* `o`, so the edit is in place before
the first generated token is computed, and no hook runs afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kvsl.lang.diagnostics import Diagnostic, KvslError, Severity
from kvsl.lang.source import Span


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


def chat_messages(
    question: str,
    demos: Sequence[tuple[str, str]] = (),
    system_prompt: str | None = None,
) -> list[Message]:
    """Demos as user/assistant turns, then the question as the last user turn.

    >>> [m.role for m in chat_messages("Q?", [("q1", "a1")], system_prompt="S")]
    ['system', 'user', 'assistant', 'user']
    """
    messages = [Message("system", system_prompt)] if system_prompt is not None else []
    for demo_question, demo_answer in demos:
        messages += [Message("user", demo_question), Message("assistant", demo_answer)]
    messages.append(Message("user", question))
    return messages


def prompt_ids(tokenizer, messages: Sequence[Message], prefix: str = "") -> list[int]:
    """Token ids of `T`: the chat template with the generation prompt on, then `prefix`.

    `prefix` (the paper's "prefix" variant, e.g. "Let's think step by step.") starts the
    assistant turn: its tokens follow the generation prompt directly, with no separator,
    as the paper appends it to the templated string. It is tokenized on its own and
    appended, which equals tokenizing the joined string whenever the generation prompt
    ends in a newline or a special token (every chat template kvsl ships for).

    Tokenizers without a chat template get a plain "role: content" layout so that base
    models still work; the artifact's manifest records which was used.
    """
    chat = [{"role": m.role, "content": m.content} for m in messages]
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        ids = list(ids)
    else:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant:"
        ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    if prefix:
        ids += list(tokenizer.encode(prefix, add_special_tokens=False))
    return ids


def chat_template_warning(tokenizer, where: str) -> Diagnostic | None:
    """KVS470 when the tokenizer has no chat template (None when it has one).

    Prompts then use the plain "role: content" layout of `prompt_ids`, which works for base
    models but is not what an instruction-tuned model was trained on: said once per load.
    """
    if getattr(tokenizer, "chat_template", None):
        return None
    return Diagnostic(
        "KVS470",
        Severity.WARNING,
        f"the tokenizer of model `{where}` has no chat template: prompts use kvsl's plain "
        "`role: content` layout",
        Span.whole_file(where),
        help="use a model whose tokenizer_config.json has a `chat_template` (an instruct or "
        "chat model), or set `tokenizer.chat_template` before saving it",
    )


def offset_token_id(tokenizer, offset_token: str, span: Span | None = None) -> int:
    """The single token id of the offset token; a KVS3xx diagnostic if it is not one token."""
    ids = tokenizer.encode(offset_token, add_special_tokens=False)
    if len(ids) != 1:
        raise KvslError.one(
            "KVS305",
            f"offset token {offset_token!r} is {len(ids)} tokens for this tokenizer, "
            "it must be exactly one",
            span or Span.whole_file("<model>"),
            help='use a single-token string such as "\\n" or " "',
        )
    return int(ids[0])
