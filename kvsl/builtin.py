"""The built-in styles' spec files, found wherever kvsl runs from, and style names as targets.

The five built-in styles are spec files (`specs/*.kvs`, their traces in `specs/traces/`,
their teacher templates in `templates/`). In a checkout, or an editable install, they are
the repository's own top-level folders; a wheel ships the same two folders as package data
under `kvsl/_builtin/` (see setup.py), with the same relative layout, so a spec's
`../templates/x.j2` and `traces/x.jsonl` resolve in both.

Commands that take a spec (`kvsl build`, `run`, `eval`, `plan`) pass their argument through
`resolve_target`: a path that exists is used as given; a bare built-in style name such as
`step-by-step` (any spelling `kvsl.styles.canonical_style_name` accepts) names the built-in
spec.

Nothing here imports more than the standard library, `kvsl.base` and `kvsl.lang` (the
built-in registry `kvsl.styles` is imported inside the functions that need it). Where
package data lives, and that it is never written, is `kvsl.base.locations`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kvsl.base import locations
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.source import Span

# The repository root, when kvsl runs from a checkout (plain or editable install).
_CHECKOUT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BuiltinStyle:
    """A built-in style as `kvsl styles` lists it: its name, what it does, its spec file."""

    name: str
    description: str
    spec_path: Path


# Held-out figures of the built-in styles, written by `scripts/style_evidence.py --summary`.
EVIDENCE_FILE = "evidence.json"


@dataclass(frozen=True)
class StyleEvidence:
    """How well a built-in style's shipped vectors steer its model, on held-out questions."""

    model: str
    questions: int
    plain: float  # mean adherence of plain answers under the style's decoding
    steered: float  # mean adherence of steered answers
    goals_met: bool  # issue 9's goals: steered >= 0.6, plain <= 0.3, no loops, specific

    def line(self) -> str:
        """One line for `kvsl styles`: 'held out on smollm2-135m (40 questions): 0.19 → 0.72'."""
        from kvsl.base.plurals import counted

        line = (
            f"held out on {self.model} ({counted(self.questions, 'question')}): "
            f"adherence {self.plain:.2f} plain → {self.steered:.2f} steered"
        )
        return line if self.goals_met else line + " (below the 0.6 goal)"


def builtin_root() -> Path:
    """The folder holding the built-in `specs/` and `templates/`.

    The wheel's package data when it is there, else the checkout's top level (an editable
    install uses the files being edited).

    >>> (builtin_root() / "specs" / "step_by_step.kvs").is_file()
    True
    """
    packaged = locations.PACKAGED_DIR  # read at call time: tests point it elsewhere
    if (packaged / "specs").is_dir():
        return packaged
    if (_CHECKOUT_DIR / "specs" / "_base.kvs").is_file():
        return _CHECKOUT_DIR
    return packaged  # neither: the caller reports the missing file


def builtin_specs_dir() -> Path:
    """The folder of the built-in spec files (`kvsl check $(...)` checks them all).

    >>> builtin_specs_dir().name
    'specs'
    """
    return builtin_root() / "specs"


def builtin_styles() -> list[BuiltinStyle]:
    """Every built-in style, in the registry's order, with the path of its spec.

    >>> [s.name for s in builtin_styles()][:2]
    ['step-by-step', 'strategy-and-execute']
    """
    from kvsl.styles import BUILTIN_STYLES

    folder = builtin_specs_dir()
    return [
        BuiltinStyle(info.name, spec_description(folder / info.spec_file), folder / info.spec_file)
        for info in BUILTIN_STYLES.values()
    ]


def spec_description(path: str | os.PathLike[str]) -> str:
    """The `description` a spec declares (the one place a style says what it is).

    "" when the spec has errors (`kvsl check` reports them) or declares none.

    >>> spec_description(builtin_specs_dir() / "step_by_step.kvs")
    'Numbered steps, each making one small inference, then the answer.'
    """
    from kvsl.lang import compile_spec

    plan, _ = compile_spec(path)
    return plan.description if plan is not None and plan.description else ""


def builtin_spec(name: str) -> Path | None:
    """The spec file of the built-in style `name`, or None if `name` is not one.

    Accepts the spellings `kvsl.styles.builtin_style` does, with or without `.kvs`.

    >>> builtin_spec("step_by_step").name
    'step_by_step.kvs'
    >>> builtin_spec("my-style") is None
    True
    """
    from kvsl.styles import builtin_style

    stem = name.removesuffix(".kvs")
    info = builtin_style(stem) if stem.strip() else None
    return None if info is None else builtin_specs_dir() / info.spec_file


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.startswith((".", "~"))


def resolve_target(
    target: str | os.PathLike[str], *, code: str = "KVS008", exit_code: ExitCode = ExitCode.USAGE
) -> Path:
    """The path a command should open for `target`: itself if it exists, else a built-in spec.

    A path that exists always wins, and so does anything that looks like a path (a
    directory part, a leading `.` or `~`): those go on to the command's own "no such
    file" report. A bare name that is not a built-in style raises `code` (KVS008, "no such
    file", by default; `kvsl run` passes its KVS455) listing the built-in names.

    >>> resolve_target("step-by-step").name
    'step_by_step.kvs'
    >>> resolve_target("specs/nope.kvs")
    PosixPath('specs/nope.kvs')
    """
    path = Path(target)
    text = os.fspath(target)
    if not text:  # Path("") is the current folder: "`.` is a directory" would puzzle
        raise _unknown_style(text, code, exit_code)
    # A link counts even when it leads nowhere or loops: the command's reader says which.
    if path.exists() or os.path.islink(path) or _looks_like_path(text):
        return path
    found = builtin_spec(text)
    if found is not None:
        return found
    raise _unknown_style(text, code, exit_code)


def _unknown_style(name: str, code: str, exit_code: ExitCode) -> KvslError:
    from difflib import get_close_matches

    from kvsl.styles import BUILTIN_STYLES, canonical_style_name

    if not name:
        return KvslError.one(
            code,
            "the spec's path is empty",
            Span.whole_file(name),
            help="pass the path of a `.kvs` spec, or a built-in style (`kvsl styles`)",
            exit_code=exit_code,
        )
    if name == "-":  # standard input, which only the front-end commands read
        return KvslError.one(
            code,
            "this command does not read a spec from standard input (`-`)",
            Span.whole_file(name),
            help="`kvsl check -`, `kvsl fmt -` and `kvsl plan -` do; save the spec to a "
            "`.kvs` file and pass its path",
            exit_code=exit_code,
        )
    names = list(BUILTIN_STYLES)
    close = get_close_matches(canonical_style_name(name.removesuffix(".kvs")), names, n=1)
    return KvslError.one(
        code,
        f"`{name}` is neither a file nor a built-in style",
        Span.whole_file(name),
        help=(f"did you mean `{close[0]}`? " if close else "")
        + "built-in styles: "
        + ", ".join(f"`{n}`" for n in names)
        + " (`kvsl styles` lists them); or pass the path of a `.kvs` spec",
        exit_code=exit_code,
    )


def builtin_evidence() -> dict[str, StyleEvidence]:
    """Each built-in style's held-out figures (docs/style_evidence.md), by style name.

    Read from the shipped `specs/vectors/evidence.json`; {} when it is missing or is not
    what the script writes (the figures are advice, never a reason to fail a command).

    >>> builtin_evidence()["step-by-step"].model
    'smollm2-135m'
    """
    from kvsl.base.jsonl import loads

    path = builtin_specs_dir() / "vectors" / EVIDENCE_FILE
    try:
        data = loads(path.read_text(encoding="utf-8"))
        model, questions = str(data["model"]), int(data["questions"])
        return {
            str(name): StyleEvidence(
                model, questions, float(r["plain"]), float(r["steered"]), r["goals_met"] is True
            )
            for name, r in data["styles"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def evidence_note(spec: Path) -> str | None:
    """A note for `kvsl run` of a built-in spec whose style misses its goals held out on
    the spec's model (annotated deduction on the embedded model), else None."""
    from kvsl.lang import compile_spec
    from kvsl.styles import BUILTIN_STYLES

    try:
        real = Path(os.path.realpath(spec))  # Path.resolve() raises on a link loop
        if spec.suffix != ".kvs" or real.parent != Path(os.path.realpath(builtin_specs_dir())):
            return None
    except OSError:
        return None
    name = next((n for n, i in BUILTIN_STYLES.items() if i.spec_file == spec.name), None)
    figures = builtin_evidence().get(name or "")
    if figures is None or figures.goals_met:
        return None
    plan, _ = compile_spec(spec)
    if plan is None or plan.model.name != figures.model:
        return None
    return (
        f"note: held out, `{name}` reaches adherence {figures.steered:.2f} on {figures.model} "
        f"(plain {figures.plain:.2f}, goal 0.6): expect answers that do not take its form "
        "(docs/style_evidence.md)"
    )
