"""The tune report: JSON (everything), markdown (for people) and a plot.

The plot shows each setting at the last rung it reached: dev accuracy (x) against the
objective, adherence × novelty (y); plain generation under each decoding as grey crosses;
the chosen setting marked with a star.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kvsl.base.jsonl import dumps
from kvsl.base.plurals import counted
from kvsl.tune.search import Trial, TuneResult


def final_trials(trials: Sequence[Trial]) -> list[Trial]:
    """Each setting's trial at the last (largest) rung it reached."""
    last: dict[object, Trial] = {}
    for trial in trials:
        if trial.setting not in last or trial.rung > last[trial.setting].rung:
            last[trial.setting] = trial
    return sorted(last.values(), key=lambda t: (-t.rung, -t.adherence))


def plot_tune(result: TuneResult, path: Path, title: str) -> Path:
    """Adherence × novelty against dev accuracy, the chosen point marked; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    from kvsl.base.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    finals = final_trials(result.trials)
    rungs = max(t.rung for t in finals) + 1 if finals else 1
    for rung in range(rungs):
        pts = [t for t in finals if t.rung == rung]
        if pts:
            ax.scatter(
                [100 * t.accuracy for t in pts],
                [t.adherence for t in pts],
                s=[28 + 14 * rung for _ in pts],
                alpha=0.75,
                label=counted(pts[0].n, "question"),
            )
    plains = {(t.n, t.setting.decode_key()): t for t in finals}
    ax.scatter(
        [100 * t.plain_accuracy for t in plains.values()],
        [t.plain_adherence for t in plains.values()],
        marker="x",
        color="grey",
        label="plain (same decoding)",
    )
    if result.chosen is not None:
        chosen = result.chosen
        ax.scatter(
            [100 * chosen.accuracy], [chosen.adherence], marker="*", s=320, color="crimson",
            edgecolor="black", zorder=5, label="chosen",
        )  # fmt: skip
        ax.annotate(
            chosen.setting.label(),
            (100 * chosen.accuracy, chosen.adherence),
            textcoords="offset points",
            xytext=(8, -14),
            fontsize=7,
        )
    ax.set_xlabel("dev accuracy (%)")
    ax.set_ylabel("style adherence × novelty")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=120, format="png")
    plt.close(fig)
    return path


def markdown(report: dict[str, Any]) -> str:
    """The report for people: what was chosen, why, and every setting's last rung."""
    dev = report["dev"]
    lines = [
        f"# kvsl tune: `{report['style']}` on `{Path(dev['path']).name}`",
        "",
        f"Dev set: {counted(dev['examples'], 'question')} ({dev['format']}, "
        f"sha256 {dev['sha256'][:12]}); "
        f"rungs (questions × settings): "
        + ", ".join(f"{n}×{k}" for n, k in report["rungs"])
        + (
            f", then {counted(report['fallbacks'], 'runner-up', 'runners-up')} on every "
            "question (the winner cost accuracy)"
            if report.get("fallbacks")
            else ""
        )
        + f"; {counted(report['generated_now'], 'answer')} generated now, "
        f"{report['seconds']:.0f} s.",
        "",
        "Objective: mean style adherence × novelty (`kvsl.styles.score`), subject to dev "
        f"accuracy not significantly below plain under the same decoding (exact McNemar, "
        f"alpha {report['alpha']}; unreadable multiple-choice answers decided by the "
        f"{report.get('forced_choice', 'model')} forced choice, docs/eval.md).",
        "",
    ]
    chosen = report["chosen"]
    if chosen is None:
        lines += ["**No setting kept dev accuracy (KVS703): nothing chosen.**", ""]
    else:
        lines += [
            f"**Chosen:** `{chosen['label']}`: adherence × novelty {chosen['adherence']:.2f} "
            f"(plain {chosen['plain_adherence']:.2f}), novelty {chosen['novelty']:.2f}, "
            f"accuracy {100 * chosen['accuracy']:.1f}% (plain {100 * chosen['plain_accuracy']:.1f}%, "
            f"Δ {100 * chosen['difference']:+.1f} [{100 * chosen['low']:+.1f}, "
            f"{100 * chosen['high']:+.1f}], McNemar p {chosen['p_mcnemar']:.3f}).",
            "",
        ]
    lines += [
        f"![adherence against accuracy]({Path(report['plot']).name})",
        "",
        "| setting | questions | adherence × novelty | novelty | accuracy | plain | Δ | p | kept accuracy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in report["settings"]:
        lines.append(
            f"| `{t['label']}` | {t['n']} | {t['adherence']:.2f} | {t['novelty']:.2f} | "
            f"{100 * t['accuracy']:.1f}% | {100 * t['plain_accuracy']:.1f}% | "
            f"{100 * t['difference']:+.1f} | {t['p_mcnemar']:.3f} | "
            f"{'yes' if t['feasible'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def write_reports(report: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    """`<stem>.json` and `<stem>.md` in `out_dir` (atomic writes)."""
    from kvsl.base.atomic import atomic_path

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    with atomic_path(json_path) as temporary:
        temporary.write_text(
            dumps(report, indent=2, default=str) + "\n", encoding="utf-8"
        )
    with atomic_path(md_path) as temporary:
        temporary.write_text(markdown(report), encoding="utf-8")
    return json_path, md_path
