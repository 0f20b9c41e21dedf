"""Syntax error recovery: every independent syntax error of a file, without cascades.

Runs only for a file that failed to parse. Panic mode over the parser's own frames:
after an error, skip to the next token that can begin again (a name first on its line,
a `}`, the end of the file) and resume there, a name inside the block the error is in,
a `}` closing that block or one around it, whichever lets the parser take that token
and the next few (`RESYNC_WINDOW`). A partial fit is kept: the token where it fails is
the next error, on a later line (two adjacent lines with a typo each). An error on the
same line as the one before it is a cascade, not reported. Bounded: at most
MAX_SYNTAX_ERRORS, and RESYNC_BUDGET tokens tried per file, whatever its size.

In a file indented by blocks (as `kvsl fmt` writes it), indentation says which block a
line belongs to: a `{` skipped at the end of a line still opens a block, and a resumed
name or `}` must sit where its block's layout puts it. Otherwise one typo costs an error
at every later `}`.

>>> from kvsl.lang.parser import parse_text
>>> _, diagnostics = parse_text('style "s" {\\n  a 1\\n  b = 2\\n  c 3\\n}\\n')
>>> [(d.code, d.span.line, d.span.column) for d in diagnostics]
[('KVS014', 2, 5), ('KVS014', 4, 5)]
"""

from __future__ import annotations

import re
from itertools import pairwise

from kvsl.lang.descent import Frame, Parser, Stop, TooDeep
from kvsl.lang.diagnostics import Diagnostic
from kvsl.lang.lexer import END, ERROR, NAME, Tokens
from kvsl.lang.syntax_errors import unexpected

MAX_SYNTAX_ERRORS = 10
# Tokens a resumed parser must take before its guess is trusted: fewer, and a bad guess
# shows up as a cascade of errors; more, and errors close together are missed.
RESYNC_WINDOW = 3
RESYNC_BUDGET = 20_000  # tokens tried per file, whatever its size
_WINDOW = "$WINDOW"  # a kind no parser context takes: ends a trial
_LEADING_SPACE = re.compile(r"[ \t\r\n\f\ufeff]*")


def syntax_errors(tokens: Tokens, unclosed: list[int]) -> list[Diagnostic]:
    """Every independent syntax error of a file that does not parse, the first one first.

    `unclosed`: offsets of the brackets the file never closes (`scan_brackets`).
    """
    first_on_line = tokens.first_on_line()
    layout = _laid_out(tokens, first_on_line)
    recovery = _Recovery(tokens, first_on_line, layout)
    parser = Parser(tokens)
    found: list[Diagnostic] = []
    i, frames = 0, [_bottom()]
    while len(found) < MAX_SYNTAX_ERRORS:
        try:
            parser.items(i, frames)
            break
        except TooDeep:  # not expected (the bracket scan answers first): stop here
            break
        except Stop as stop:
            j, frames = stop.index, stop.frames
            if tokens.kinds[j] == ERROR:  # text that starts no token (KVS011, KVS012)
                found.append(tokens.errors[j])
                j += 1
            else:
                found.append(unexpected(tokens, j, stop.context, len(frames) == 1, unclosed))
        if layout and parser.misfit is None:
            parser.misfit = recovery.misfit
        resumed = recovery.resync(frames, j)
        if resumed is None:
            break
        i, frames = resumed
    diagnostics = found[:1]
    for previous, diagnostic in pairwise(found):
        if diagnostic.span.line > previous.span.end_line:
            diagnostics.append(diagnostic)
    return diagnostics


class _Recovery:
    """Where to resume after an error, tried with a parser of its own."""

    def __init__(self, tokens: Tokens, first_on_line: list[bool], layout: bool) -> None:
        self.tokens = tokens
        self.first_on_line = first_on_line
        self.layout = layout
        self.budget = RESYNC_BUDGET
        self.trial_parser = Parser(tokens)

    def misfit(self, i: int, frames: list[Frame]) -> bool:
        """After an error, a `}` that starts a line indented unlike its `{` line belongs
        to the broken part (its `{` was lost in the error): taking it would close the
        wrong block, and every later `}` would be an error."""
        return self.first_on_line[i] and not self.fits(frames, i)

    def resync(self, frames: list[Frame], resume: int) -> tuple[int, list[Frame]] | None:
        """(token index, open frames) to resume from after an error, or None to stop.

        Sync tokens from `resume` on; for a `}` (or the end of the file), frames are
        closed, fewest first, until the parser takes it and the next tokens.
        """
        kinds, first_on_line = self.tokens.kinds, self.first_on_line
        opened = 0  # `{` skipped since the error that end their line, not closed since
        for j in range(resume, len(kinds)):
            kind = kinds[j]
            if kind == "}" or kind == END or (kind == NAME and first_on_line[j]):
                # a name resumes in the block the error is in: a block is left at its
                # `}` only, so a lost `}` cannot shift every later line one block out
                closes = range(1) if kind == NAME else range(len(frames))
                best: tuple[int, list[Frame] | None] = (0, None)
                for close in closes:
                    candidate = [_reopened(f) for f in frames[: len(frames) - close]]
                    # the blocks whose `{` was skipped since the error
                    candidate += [_bottom() for _ in range(opened)]
                    if self.layout and not self.fits(candidate, j):
                        continue
                    accepted = self.trial(candidate, j)
                    if accepted < 0:
                        return None
                    if accepted == RESYNC_WINDOW:
                        return j, candidate
                    if accepted > best[0]:
                        best = (accepted, candidate)
                if best[1] is not None:
                    return j, best[1]
            if kind == "{" and self.layout and first_on_line[j + 1]:
                opened += 1
            elif kind == "}" and opened:
                opened -= 1
        return None

    def trial(self, frames: list[Frame], start: int) -> int:
        """How many of the RESYNC_WINDOW tokens from `start` the parser takes in `frames`.

        All of them when it reaches the end of the file or a lexical error (a separate
        error) first; -1 when the budget is spent.
        """
        if self.budget <= 0:
            return -1
        kinds = self.tokens.kinds
        stop = min(start + RESYNC_WINDOW, len(kinds) - 1)
        kept, kinds[stop] = kinds[stop], _WINDOW if stop < len(kinds) - 1 else kinds[stop]
        try:
            self.trial_parser.items(start, [_reopened(f) for f in frames])
            accepted = RESYNC_WINDOW  # the end of the file
        except Stop as failed:
            at = failed.index
            accepted = RESYNC_WINDOW if kinds[at] in (_WINDOW, ERROR) else at - start
        except TooDeep:
            accepted = 0
        finally:
            kinds[stop] = kept
        self.budget -= accepted + 1
        return accepted

    def fits(self, frames: list[Frame], j: int) -> bool:
        """Whether token `j` (a sync token) is laid out as it would be in `frames`.

        A name starts a line indented deeper than the line of its block's `{` (not at
        all at the top level). A `}` first on its line is indented as the line of its
        `{`; any other `}` is on the line of its `{` (`at [1..4] { value = 4 }`).
        """
        tokens = self.tokens
        kind = tokens.kinds[j]
        if kind == END:
            return True
        at = tokens.starts[j]
        if len(frames) == 1:
            return kind == NAME and self.indent(at) == 0
        brace_index = frames[-1][2]
        if brace_index is None:  # a block opened in a broken line: no layout to match
            return True
        brace = tokens.starts[brace_index]
        if kind == NAME:
            return self.indent(at) > self.indent(brace)
        where = tokens.span(j, j)
        if tokens.span(brace_index, brace_index).line == where.line:
            return True
        column = where.column - 1
        if self.first_on_line[j]:
            return column == self.indent(brace)
        # a `}` after a typo on its line (`  =}`, `=  }`): the typo pushed it right
        return 0 <= column - self.indent(brace) <= 4

    def indent(self, offset: int) -> int:
        text = self.tokens.source.text
        start = text.rfind("\n", 0, offset) + 1
        return _LEADING_SPACE.match(text, start).end() - start  # type: ignore[union-attr]


def _bottom() -> Frame:
    """The frame of the file itself (no block around it)."""
    return [None, None, None, []]


def _reopened(frame: Frame) -> Frame:
    """A copy of an open frame, without its items (recovery builds no tree)."""
    return [frame[0], frame[1], frame[2], []]


def _laid_out(tokens: Tokens, first_on_line: list[bool]) -> bool:
    """Whether the file is indented by blocks, as `kvsl fmt` writes it.

    Every `{` that ends a line is followed by a line indented deeper. Only then does
    recovery trust indentation to tell which block a line belongs to.
    """
    kinds, starts, text = tokens.kinds, tokens.starts, tokens.source.text

    def indent(offset: int) -> int:
        start = text.rfind("\n", 0, offset) + 1
        return _LEADING_SPACE.match(text, start).end() - start  # type: ignore[union-attr]

    nested = False
    for j in range(len(kinds) - 1):
        if kinds[j] == "{" and first_on_line[j + 1] and kinds[j + 1] != ERROR:
            if indent(starts[j + 1]) <= indent(starts[j]):
                return False
            nested = True
    return nested
