"""How long `kvsl check` takes on 100 specs, next to `python -c pass`.

Generates 100 specs (each with a teacher, a template file, a trace file, overrides and
markers) in a temporary directory, then times, in one run, the best of several
`kvsl check DIR` subprocesses against the best of `python -c pass`, and prints both and
the ratio. Goal: under 0.5 s for the 100 specs on a 2-core machine.

    python bench/check_speed.py [--specs 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = """Write a worked answer in the style "{{ style }}": {{ description }}
{% if domain %}Domain: {{ domain }}.{% endif %}
Question: {{ question }}
{% for c in choices %}{{ c.label }}. {{ c.text }}
{% endfor %}"""

SPEC = """# generated spec {i}
style "bench-{i:03d}" {{
  description = "Generated style number {i}."
  model = "smollm2-135m"

  teacher {{
    model = "gpt-4o"
    template = "templates/style.j2"
    traces = "traces/t{i:03d}.jsonl"
    format = "gsm8k"
  }}

  contrast {{
    pairs = {pairs}
    shots = 2
    select = random
    seed = {i}
  }}

  steer {{
    layers = [1..]
    key = 0
    value = 6
    at [1..4] {{ value = 4.5 }}
    at [-4..-1] {{ value = 2 }}
  }}

  generate {{
    max_new_tokens = 256
    mode = sample
    temperature = 0.7
    top_p = 0.9
    stop = ["\\n\\nQuestion:"]
  }}

  markers = ["(?m)^\\\\s*\\\\d+\\\\.", "(?i)the answer is"]
}}
"""


def generate(root: Path, count: int) -> None:
    (root / "templates").mkdir(parents=True)
    (root / "traces").mkdir()
    (root / "templates" / "style.j2").write_text(TEMPLATE, encoding="utf-8")
    for i in range(count):
        (root / "traces" / f"t{i:03d}.jsonl").write_text(
            '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}\n',
            encoding="utf-8",
        )
        (root / f"spec_{i:03d}.kvs").write_text(SPEC.format(i=i, pairs=10 + i), encoding="utf-8")


def best_of(command: list[str], repeat: int, env: dict[str, str]) -> tuple[float, float, int]:
    """Best wall time, best CPU time (user + sys of the child) and the exit status.

    CPU time is printed too because on a shared 2-core machine the wall time mostly
    measures the other processes.
    """
    best_wall, best_cpu, code = float("inf"), float("inf"), 0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, env=env, check=False)
        best_wall = min(best_wall, time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best_cpu = min(best_cpu, cpu)
        code = done.returncode
    return best_wall, best_cpu, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--specs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    kvsl = shutil.which("kvsl")
    command = [kvsl] if kvsl else [sys.executable, "-m", "kvsl"]
    env = dict(os.environ, NO_COLOR="1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "specs"
        generate(root, args.specs)
        # One untimed run warms the OS file cache and lark's grammar cache.
        subprocess.run([*command, "check", str(root)], capture_output=True, env=env, check=False)
        baseline, baseline_cpu, _ = best_of([sys.executable, "-c", "pass"], args.repeat, env)
        checked, checked_cpu, code = best_of([*command, "check", str(root)], args.repeat, env)
    label = f"kvsl check ({args.specs} specs)"
    width = max(len(label), len("python -c pass"))
    print(f"{'':{width}}   {'wall':>9}   {'cpu':>9}")
    print(f"{'python -c pass':{width}}   {baseline * 1000:6.1f} ms   {baseline_cpu * 1000:6.1f} ms")
    print(f"{label:{width}}   {checked * 1000:6.1f} ms   {checked_cpu * 1000:6.1f} ms   (exit {code})")
    print(f"{'ratio':{width}}   {checked / baseline:7.1f}x   {checked_cpu / max(baseline_cpu, 1e-9):7.1f}x")
    verdict = "met" if checked < 0.5 else "NOT met (wall)"
    print(f"goal: < 500 ms wall for {args.specs} specs: {verdict}")


if __name__ == "__main__":
    main()
