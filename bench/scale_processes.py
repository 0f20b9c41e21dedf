"""Wall time of `kvsl eval` against process count on this machine, side by side.

On the same questions (the first `--questions` of ARC-Challenge test, `plain` only,
greedy, the embedded model, nothing cached: a fresh output folder per run), in one run,
interleaved repetitions of:

  1p x 2t   one process, the default threads (both cores of a 2-core machine)
  1p x 1t   one process, `--threads 1`
  2p x 1t   `torchrun --nproc-per-node 2`: the batches split over two gloo processes,
            the default threads (cores / 2 = 1 each)
  and, for the thread rule, two *independent* `kvsl eval` processes side by side, each on
  half the questions:
  2 x 1t    each with `--threads 1` (what the rule gives two processes)
  2 x 2t    each with `--threads 2` (torch's own default: every core, oversubscribed)

Prints each mode's median wall time with its min-max spread and the ratios to `1p x 2t`.
The machine may be shared: the spread says how much to trust a ratio.

    python bench/scale_processes.py [--questions 16] [--max-new-tokens 32] [--repeat 3]

`--command tune` times `kvsl tune step-by-step` instead (the built-in spec and its shipped
vectors, so nothing is extracted) on the first `--questions` of ARC-Challenge dev, c_v 2 and
4 at repetition penalty 1.1, successive halving from half the questions: the modes
`1p x 2t`, `1p x 1t` and `2p x 1t` only.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARC = ROOT.parent / "shared" / "data" / "benchmarks" / "arc_challenge"
DATA = ARC / "ARC-Challenge-Test.jsonl"
DEV = ARC / "ARC-Challenge-Dev.jsonl"


def _eval_args(args: argparse.Namespace, limit: int, out: Path) -> list[str]:
    if args.command == "tune":
        return [
            "tune", "step-by-step", "--dev", str(args.dev), "--format", "arc",
            "--limit", str(limit), "--start-questions", str(max(1, limit // 2)),
            "--values", "2,4", "--repetition-penalties", "1.1", "--max-new-tokens",
            str(args.max_new_tokens), "--batch-size", str(args.batch_size), "--device", "cpu",
            "--json", "--out", str(out),
        ]  # fmt: skip
    return [
        "eval", "--model", "smollm2-135m", "--benchmark", "arc", "--data", str(args.data),
        "--limit", str(limit), "--methods", "plain", "--max-new-tokens",
        str(args.max_new_tokens), "--batch-size", str(args.batch_size), "--device", "cpu",
        "--format", "json", "--out", str(out),
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "KVSL_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _timed(commands: list[list[str]], timeout: float) -> float:
    """Start every command at once; seconds until the last one finished."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            c,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout ends torchrun's workers too
        )
        for c in commands
    ]
    try:
        for proc in procs:
            remaining = max(1.0, timeout - (time.perf_counter() - started))
            _, err = proc.communicate(timeout=remaining)
            if proc.returncode != 0:
                raise SystemExit(f"failed ({proc.returncode}): {err.decode()[-2000:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", choices=("eval", "tune"), default="eval")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--dev", type=Path, default=DEV, help="the dev file of --command tune")
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run")
    parser.add_argument("--modes", default="1p x 2t,2p x 1t,2 x 1t,2 x 2t")
    args = parser.parse_args()
    kvsl = [sys.executable, "-m", "kvsl"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    half = args.questions // 2
    modes = [m.strip() for m in args.modes.split(",")]
    times: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="kvsl-scale-") as tmp:
        for rep in range(args.repeat):
            for mode in modes:
                out = Path(tmp) / f"{mode.replace(' ', '')}-{rep}"
                full = _eval_args(args, args.questions, out)
                if mode == "1p x 2t":
                    commands = [[*kvsl, *full]]
                elif mode == "1p x 1t":  # one process that cannot contend with itself
                    commands = [[*kvsl, *full, "--threads", "1"]]
                elif mode == "2p x 1t":
                    commands = [[*torchrun, "--nproc-per-node=2", "-m", "kvsl", *full]]
                else:
                    threads = mode.split("x")[1].strip().removesuffix("t")
                    commands = [
                        [*kvsl, *_eval_args(args, half, out / str(i)), "--threads", threads]
                        for i in range(2)
                    ]
                seconds = _timed(commands, args.timeout)
                times[mode].append(seconds)
                print(f"rep {rep + 1} {mode:8s} {seconds:7.1f} s", flush=True)
    base = statistics.median(times[modes[0]])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average at the end (1, 5, 15 min): {load}")
    print(f"\nkvsl {args.command}, {args.questions} questions, {args.max_new_tokens} new tokens, batch {args.batch_size}, "
          f"{os.cpu_count()} cores, {args.repeat} interleaved repetitions")  # fmt: skip
    print(f"{'mode':10s} {'median s':>9s} {'min-max s':>15s} {'vs ' + modes[0]:>12s}")
    for mode in modes:
        t = times[mode]
        median = statistics.median(t)
        print(f"{mode:10s} {median:9.1f} {min(t):7.1f}-{max(t):<7.1f} {median / base:11.2f}x")


if __name__ == "__main__":
    main()
