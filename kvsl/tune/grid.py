"""What `kvsl tune` searches: the request, the grid of settings, and the dev set.

A `Setting` is one point of the grid: the contrast shots (which need their own vectors), the
steered layers, c_k, c_v and the decoding controls (which only re-generate). The grid is the
product of the request's lists; a list left empty takes the spec's own value, so
`TuneRequest(spec, dev)` alone searches c_v and the repetition penalty around the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path

from kvsl.eval.forced import FORCED_MODES
from kvsl.lang.diagnostics import COMMAND_LINE, ExitCode, KvslError
from kvsl.lang.plan import GenerationSettings, LayerSpan, Plan
from kvsl.lang.source import Span

VALUE_STEP = 2.0  # the default c_v grid: the spec's value and one step either side
DEFAULT_PENALTY = 1.15  # tried beside "off" when the spec sets no repetition penalty
SMALL_DEV = 30  # below this the paired accuracy test has little power (KVS705)


@dataclass(frozen=True)
class TuneRequest:
    """Every setting of one `kvsl tune` (the CLI fills it from flags; a server may too).

    Grids left empty take the spec's own value (c_v: the spec's and one `VALUE_STEP` either
    side; repetition penalty: off and the spec's, or `DEFAULT_PENALTY` when the spec sets
    none), so the default search has 6 settings whatever the spec. Successive halving: every
    setting is tried on the first `start` dev questions, the best `1/eta` go on to `eta`
    times as many questions, until one setting has answered all `limit` questions.
    """

    spec: str  # a `.kvs` spec
    dev: str
    format: str | None = None  # None: detected from the file
    labels: str | None = None  # PIQA labels of the dev file
    values: tuple[float, ...] = ()
    keys: tuple[float, ...] = ()
    layers: tuple[tuple[LayerSpan, ...], ...] = ()
    shots: tuple[int, ...] = ()
    repetition_penalties: tuple[float, ...] = ()
    no_repeat_ngram_sizes: tuple[int, ...] = ()
    max_new_tokens: int = 96  # loops and the style show within this; see bench/tune_cost.py
    limit: int | None = 200  # dev questions used at most
    start: int = 20  # questions of the first rung
    eta: int = 2  # keep the best 1/eta, grow the subset eta times
    alpha: float = 0.05  # the accuracy test's level
    fallbacks: int = 2  # runners-up tried on every question when the winner costs accuracy
    forced_choice: str = "model"  # how unreadable multiple-choice answers are decided
    seed: int = 0  # the dev questions' order (a fixed shuffle: subsets are random, nested)
    batch_size: int = 32
    out_dir: str = ".kvsl/tune"
    device: str | None = None
    precision: str = "fp32"
    threads: int | None = None
    force: bool = False
    write: bool = False
    extra: dict[str, object] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, order=True)
class Setting:
    """One point of the grid."""

    shots: int
    layers: tuple[LayerSpan, ...]
    key: float
    value: float
    repetition_penalty: float
    no_repeat_ngram_size: int

    def decode(self, base: GenerationSettings) -> GenerationSettings:
        """The decoding of this setting (plain answers under it are its baseline)."""
        return replace(
            base,
            repetition_penalty=self.repetition_penalty,
            no_repeat_ngram_size=self.no_repeat_ngram_size,
        )

    def decode_key(self) -> tuple[float, int]:
        """The decoding controls of this setting (settings that share them share plain)."""
        return (self.repetition_penalty, self.no_repeat_ngram_size)

    def label(self) -> str:
        """`k=2 [1..] c_k=0 c_v=4 rp=1.15 nr=0`"""
        return (
            f"k={self.shots} {layers_text(self.layers)} c_k={self.key:g} c_v={self.value:g} "
            f"rp={self.repetition_penalty:g} nr={self.no_repeat_ngram_size}"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "shots": self.shots,
            "layers": layers_text(self.layers),
            "key": self.key,
            "value": self.value,
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
        }


def layers_text(layers: tuple[LayerSpan, ...]) -> str:
    """A layer list as the spec writes it.

    >>> layers_text((LayerSpan(1, None), LayerSpan(-3, -1)))
    '[1.., -3..-1]'
    """
    parts = []
    for span in layers:
        if span.stop is None:
            parts.append(f"{span.start}..")
        elif span.start == span.stop:
            parts.append(str(span.start))
        else:
            parts.append(f"{span.start}..{span.stop}")
    return "[" + ", ".join(parts) + "]"


def bad_option(message: str, help: str | None = None) -> KvslError:
    """A KVS702 usage error (exit 2)."""
    return KvslError.one("KVS702", message, COMMAND_LINE, help=help, exit_code=ExitCode.USAGE)


def default_values(value: float) -> tuple[float, ...]:
    """The c_v grid around a spec's value: a tune refines the spec, it does not restart.

    Below the step, the lower neighbour is half the value (c_v = 0 would be plain).

    >>> default_values(5), default_values(6.0), default_values(2), default_values(1)
    ((3.0, 5.0, 7.0), (4.0, 6.0, 8.0), (1.0, 2.0, 4.0), (0.5, 1.0, 3.0))
    """
    value = float(value)
    return tuple(sorted({max(value - VALUE_STEP, value / 2), value, value + VALUE_STEP}))


def default_penalties(spec_penalty: float) -> tuple[float, ...]:
    """Off, and the spec's own penalty (or `DEFAULT_PENALTY` when the spec sets none).

    Two decodings, not three: each decoding costs a plain baseline on every dev question.

    >>> default_penalties(1.1), default_penalties(1.0)
    ((1.0, 1.1), (1.0, 1.15))
    """
    return (1.0, float(spec_penalty) if spec_penalty != 1.0 else DEFAULT_PENALTY)


def grid(request: TuneRequest, plan: Plan) -> list[Setting]:
    """Every setting to try, in a stable order; KVS702 for values out of range."""
    gen = plan.generate
    values = request.values or default_values(plan.steer.value)
    penalties = request.repetition_penalties or default_penalties(gen.repetition_penalty)
    axes = (
        request.shots or (plan.contrast.shots,),
        request.layers or (plan.steer.layers,),
        request.keys or (plan.steer.key,),
        values,
        penalties,
        request.no_repeat_ngram_sizes or (gen.no_repeat_ngram_size,),
    )
    _check_axes(request, plan, axes)
    return sorted({Setting(*point) for point in product(*axes)})


def _check_axes(request: TuneRequest, plan: Plan, axes: tuple[tuple, ...]) -> None:
    shots, _, _, _, penalties, ngrams = axes
    pairs = plan.contrast.pairs
    if any(not 0 <= k < pairs for k in shots):
        raise bad_option(
            f"`--shots` must be between 0 and {pairs - 1} (the spec's `pairs` minus 1)",
            help="raise `pairs` in the spec to try more shots",
        )
    if any(not p > 0 for p in penalties):
        raise bad_option("`--repetition-penalties` must be greater than 0")
    if any(n < 0 for n in ngrams):
        raise bad_option("`--no-repeat-ngram-sizes` must be at least 0")
    check_request(request)


def check_request(request: TuneRequest) -> None:
    """KVS702 for the request's own numbers: needs no spec, so `run_tune` calls it first."""
    for name, number, low in (
        ("--start", request.start, 1),
        ("--eta", request.eta, 2),
        ("--fallbacks", request.fallbacks, 0),
        ("--max-new-tokens", request.max_new_tokens, 1),
        ("--batch-size", request.batch_size, 1),
        ("--limit", request.limit if request.limit is not None else 1, 1),
    ):
        if number < low:
            raise bad_option(f"`{name}` must be at least {low}")
    if not 0 < request.alpha < 1:  # NaN fails too
        raise bad_option("`--alpha` must be between 0 and 1")
    if request.forced_choice not in FORCED_MODES:
        raise bad_option(
            f"unknown forced choice `{request.forced_choice}`",
            help="use " + " or ".join(FORCED_MODES),
        )


# --- the dev set ---------------------------------------------------------------------------

_TEST_WORD = re.compile(r"(?:^|[^a-z])test(?:[^a-z]|$)")


def refuse_test_split(path: str, fmt: str | None) -> None:
    """KVS700 when `path` names a test split (or PIQA's `valid`, kvsl's PIQA test set).

    >>> refuse_test_split("data/ARC-Challenge-Dev.jsonl", "arc")
    >>> try:
    ...     refuse_test_split("gsm8k/test.jsonl", None)
    ... except KvslError as err:
    ...     print(err.diagnostics[0].code)
    KVS700
    """
    name = Path(path).name.lower()
    piqa_valid = (fmt == "piqa" or "piqa" in path.lower()) and re.search(r"valid", name)
    if _TEST_WORD.search(name) or piqa_valid:
        raise KvslError.one(
            "KVS700",
            f"`{path}` is a test split: tuning never sees test questions",
            Span.whole_file(path),
            help="pass the benchmark's dev or train file (ARC-Challenge-Dev.jsonl, "
            "gsm8k/train.jsonl, csqa/dev_rand_split.jsonl, piqa/train.jsonl)",
            exit_code=ExitCode.USAGE,
        )
