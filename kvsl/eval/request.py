"""`kvsl eval` as one library function: an `EvalRequest` in, an `EvalOutcome` out.

The CLI parses its flags into an `EvalRequest` (`kvsl.eval.pipeline`), calls `run`, and
renders the outcome as tables or JSON; a server or a notebook can make the same call.
A request with `sweeps` evaluates each swept setting on the dev split (`run_sweep`);
any other scores every method on the test split (`run_eval`).

    >>> request = EvalRequest(target=None, benchmark="arc", data="ARC-Test.jsonl",
    ...                       methods=("plain", "cot"), model="smollm2-135m")
    >>> outcome = run(request)                         # doctest: +SKIP
    >>> outcome.report["report_path"]                  # doctest: +SKIP
    '.kvsl/eval/eval-arc-ARC-Test.json'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kvsl.eval.pipeline import EvalRequest

__all__ = ["EvalOutcome", "EvalRequest", "run"]


@dataclass(frozen=True)
class EvalOutcome:
    """The JSON report of one `kvsl eval`, and what its terminal tables are drawn from.

    `report` is what `--format json` prints (rank 0 also wrote it to
    `report["report_path"]`). `summaries` (the test split: one per method) or `points`
    (sweeps: the points of each swept parameter) feed the tables. Under `torchrun` every
    rank returns one; only rank 0 (`is_main`) prints.
    """

    report: dict[str, Any]
    summaries: list[Any] | None = None
    points: dict[str, list[Any]] | None = None
    rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_sweep(self) -> bool:
        return self.points is not None


def run(request: EvalRequest, *, console: Any = None, quiet: bool = False) -> EvalOutcome:
    """Evaluate `request`: its sweeps on the dev split, else its methods on the test split.

    `console` (a rich Console) gets warnings and, unless `quiet`, progress bars.
    """
    from kvsl.eval.pipeline import run_eval, run_sweep

    if request.sweeps:
        report = run_sweep(request, console=console, quiet=quiet)
        points = report.pop("_points")
        return EvalOutcome(report, points=points, rank=report.pop("rank", 0))
    report = run_eval(request, console=console, quiet=quiet)
    summaries = report.pop("_summaries")
    return EvalOutcome(report, summaries=summaries, rank=report.pop("rank", 0))
