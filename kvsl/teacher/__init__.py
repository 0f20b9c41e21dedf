"""The teacher: reasoning traces from any OpenAI-compatible chat-completions server.

    >>> from kvsl.teacher import parse_reply
    >>> parse_reply("<step>3 + 4 = 7.</step><answer>7</answer>").answer
    '7'

`teach(plan, options)` fills a spec's trace file (resuming where an earlier run stopped);
`dry_run(plan, options)` renders the prompts without calling anything. The `openai`
package is imported only when a run actually sends requests.
"""

from __future__ import annotations

from kvsl.teacher.parsing import ParsedReply, answers_agree, parse_reply
from kvsl.teacher.pricing import Usage, describe_cost, estimate_cost
from kvsl.teacher.run import (
    SkipRecord,
    TeachAborted,
    TeachOptions,
    TeachReport,
    dry_run,
    iter_skip_log,
    skip_log_path,
    teach,
)

__all__ = [
    "ParsedReply",
    "SkipRecord",
    "TeachAborted",
    "TeachOptions",
    "TeachReport",
    "Usage",
    "answers_agree",
    "describe_cost",
    "dry_run",
    "estimate_cost",
    "iter_skip_log",
    "parse_reply",
    "skip_log_path",
    "teach",
]
