"""`kvsl tune --write`: the chosen values into the spec, through the formatter.

Values are replaced where the spec writes them, added to their block otherwise (the block
is added when missing); only values that differ from the spec's plan are written. A line
comment records the dev set and the score, placed before the `steer` block (an earlier
`# kvsl tune:` comment is replaced, so tuning twice does not stack them). The edited text
goes through `kvsl fmt`'s printer, which keeps every comment, and must still check clean
before it replaces the file (atomically).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kvsl.lang.diagnostics import ExitCode, KvslError, Severity
from kvsl.lang.plan import Plan
from kvsl.lang.source import Span
from kvsl.lang.syntax import Assignment, Block, Spec
from kvsl.tune.grid import Setting, layers_text

COMMENT_PREFIX = "# kvsl tune:"


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


def changed_values(plan: Plan, setting: Setting) -> dict[tuple[str, str], str]:
    """(block, key) → value text for every chosen value that differs from the plan."""
    wanted: dict[tuple[str, str], tuple[object, object, str]] = {
        ("contrast", "shots"): (plan.contrast.shots, setting.shots, str(setting.shots)),
        ("steer", "layers"): (plan.steer.layers, setting.layers, layers_text(setting.layers)),
        ("steer", "key"): (plan.steer.key, setting.key, f"{setting.key:g}"),
        ("steer", "value"): (plan.steer.value, setting.value, f"{setting.value:g}"),
        ("generate", "repetition_penalty"): (
            plan.generate.repetition_penalty,
            setting.repetition_penalty,
            f"{setting.repetition_penalty:g}",
        ),
        ("generate", "no_repeat_ngram_size"): (
            plan.generate.no_repeat_ngram_size,
            setting.no_repeat_ngram_size,
            str(setting.no_repeat_ngram_size),
        ),
    }
    return {where: text for where, (old, new, text) in wanted.items() if old != new}


def tuned_text(text: str, path: str, values: dict[tuple[str, str], str], comment: str) -> str:
    """The spec's text with `values` written and `comment` placed; formatted canonically."""
    from kvsl.lang.fmt import format_text
    from kvsl.lang.parser import parse_text

    spec, _ = parse_text(text, path)
    style = _style_block(spec, path)
    edits = _value_edits(style, values)
    edits.append(_comment_edit(spec, style, text, comment))
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    formatted, diagnostics = format_text(text, path)
    if formatted is None:  # pragma: no cover - the edits are made of valid syntax
        raise _cannot(path, diagnostics[0].message if diagnostics else "it no longer parses")
    return formatted


def write_spec(path: str | Path, plan: Plan, setting: Setting, comment: str) -> list[str]:
    """Write the tuned values into the spec file; returns the `block.key` names written.

    KVS704 when the result would not check clean, and the spec is then untouched
    (`spec_rewrite`, which this is with nothing to do before the rename).
    """
    with spec_rewrite(path, plan, setting, comment) as written:
        return written


@contextmanager
def spec_rewrite(
    path: str | Path, plan: Plan, setting: Setting, comment: str
) -> Iterator[list[str]]:
    """The tuned spec, written and checked beside `path`; it replaces `path` when the block
    succeeds. Yields the `block.key` names written.

    The result is checked first, in the temporary file that then replaces the spec (next
    to it, so relative paths resolve alike); KVS704 when it would not check clean, and the
    spec is then untouched. A kill at any moment leaves the old text or the new one: the
    check once wrote its own copy, `.<stem>.tune-check.kvs`, which a kill left beside the
    spec for good; the temporary file of a dead writer is removed by the next write.
    `kvsl tune` writes its reports inside the block, so the spec changes last: a tune
    killed before that runs again on the same spec, and ends as if never stopped.
    """
    from kvsl.base.atomic import atomic_path
    from kvsl.lang import compile_spec

    path = Path(path)
    values = changed_values(plan, setting)
    new = tuned_text(path.read_text(encoding="utf-8"), str(path), values, comment)
    with atomic_path(path, fsync=True) as temporary:
        temporary.write_text(new, encoding="utf-8")
        _, diagnostics = compile_spec(temporary)
        errors = [d for d in diagnostics if d.severity == Severity.ERROR]
        if errors:
            first = errors[0]
            raise _cannot(str(path), f"the result would not check ({first.code}: {first.message})")
        yield [f"{block}.{key}" for block, key in values]


def _cannot(path: str, reason: str) -> KvslError:
    return KvslError.one(
        "KVS704",
        f"cannot write the tuned values into `{path}`: {reason}",
        Span.whole_file(path),
        exit_code=ExitCode.ERRORS,
    )


def _style_block(spec: Spec | None, path: str) -> Block:
    for item in spec.items if spec is not None else ():
        if isinstance(item, Block) and item.kind in ("style", "base"):
            return item
    raise _cannot(path, "it declares no `style` block")


def _value_edits(style: Block, values: dict[tuple[str, str], str]) -> list[Edit]:
    edits: list[Edit] = []
    blocks = {b.kind: b for b in style.items if isinstance(b, Block)}
    missing_blocks: dict[str, list[str]] = {}
    for (block_name, key), text in values.items():
        block = blocks.get(block_name)
        if block is None:
            missing_blocks.setdefault(block_name, []).append(f"{key} = {text}")
            continue
        found = next(
            (a for a in block.items if isinstance(a, Assignment) and a.key == key), None
        )
        if found is not None:
            edits.append(Edit(found.value.span.start, found.value.span.end, text))
        else:
            edits.append(Edit(block.close_span.start, block.close_span.start, f"\n{key} = {text}\n"))
    for block_name, lines in missing_blocks.items():
        body = "\n".join(lines)
        edits.append(
            Edit(style.close_span.start, style.close_span.start, f"\n{block_name} {{\n{body}\n}}\n")
        )
    return edits


def _comment_edit(spec: Spec | None, style: Block, text: str, comment: str) -> Edit:
    line = f"{COMMENT_PREFIX} {comment}"
    for old in spec.comments if spec is not None else ():
        if old.text.startswith(COMMENT_PREFIX):
            return Edit(old.span.start, old.span.end, line)
    steer = next((b for b in style.items if isinstance(b, Block) and b.kind == "steer"), None)
    at = steer.span.start if steer is not None else style.close_span.start
    return Edit(at, at, f"{line}\n")
