"""Benchmark: `kvsl serve` throughput, latency, mixed styles and faults, side by side in one run.

Starts a real `kvsl serve` subprocess on 127.0.0.1 (a free port) and measures, with
repetitions interleaved so that load on the machine hits both sides alike (medians, with
min..max):

1. throughput: N requests sent at once vs the same N one at a time (aggregate tokens/s);
   goal ≥ 4× for N = 16 on 2 CPU cores;
2. latency: one request alone through the server vs the same generation run directly in
   this process (what `kvsl run` calls: `generate_batch`, with the style's own settings; the
   texts are compared); goal ≤ 1.1×;
3. mixed styles: N requests at once mixing styles, coefficients and plain rows vs N of one
   style (seconds per generated token); goal ≤ 1.05×;
4. staggered arrivals: N requests arriving one every `--stagger-ms` (default 75 ms), sent to
   a continuous-batching server and to a dynamic-batching one (`--batching dynamic`),
   interleaved: median latency per request and aggregate tokens/s of each, and their
   ratios (continuous batching lets a late request join the running batch; dynamic batching
   makes it wait for the batch to end);
5. faults: a bounded run of requests (default 500) of which 10% are malformed or whose
   clients disconnect; reports crashes, 5xx answers and slots left in use (goal: 0, 0, 0).

The main server uses `--batching` (default continuous); the staggered case starts a second
server with the other kind of batching. The load average is printed at the start and end.

    python bench/serve_bench.py                              # embedded SmolLM2-135M
    python bench/serve_bench.py --tiny                       # a tiny random Llama (smoke)
    python bench/serve_bench.py --threads 1                  # on a shared, oversubscribed machine

On a machine busier than its cores, give both sides `--threads 1`: a spinning team of two
OpenMP threads (`kvsl run`'s, and the server's) then slows down by an order of magnitude,
and the timings say more about the other work than about the server.
    python bench/serve_bench.py --requests 8 --max-tokens 16 --reps 2 --faults 200   # reduced
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "A train travels 60 km in 1.5 hours. What is its average speed?",
    "Why does ice float on water?",
    "Is 91 a prime number?",
    "What happens to a puddle on a hot, sunny day?",
    "Tom has 3 apples and buys 5 more. He gives away 2. How many does he have?",
    "Which gas do plants absorb from the air?",
    "Why do we see lightning before we hear thunder?",
    "How many legs do three spiders have in total?",
]


class Server:
    def __init__(self, cwd: Path, args: list[str], env: dict[str, str]) -> None:
        self.batching = args[args.index("--batching") + 1] if "--batching" in args else "continuous"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kvsl", "serve", *args, "--port", "0"],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if "listening on http://" in line:
                self.port = int(line.split("listening on http://")[1].split("/")[0].rsplit(":", 1)[1])
                self.models = line.split("(models: ")[1].rstrip(")\n").split(", ")
                break
            print("  server:", line.rstrip(), file=sys.stderr)
        else:
            raise SystemExit("kvsl serve did not start")
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # drain

    def request(self, method: str, path: str, body: Any = None, timeout: float = 600) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, bytes | str) or body is None else json.dumps(body)
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            text = response.read().decode()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text
        finally:
            connection.close()

    def chat(self, model: str, prompt: str, max_tokens: int, kvsl: dict[str, Any] | None = None) -> int:
        body: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                                "messages": [{"role": "user", "content": prompt}]}
        if kvsl:
            body["kvsl"] = kvsl
        status, answer = self.request("POST", "/v1/chat/completions", body)
        if status != 200:
            raise RuntimeError(f"{status}: {answer}")
        return int(answer["usage"]["completion_tokens"])

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


def _timed(work: Any) -> tuple[float, int]:
    started = time.perf_counter()
    tokens = work()
    return time.perf_counter() - started, tokens


def _at_once(server: Server, requests: list[tuple[str, str, dict[str, Any] | None]], max_tokens: int) -> int:
    with ThreadPoolExecutor(len(requests)) as pool:
        return sum(pool.map(lambda r: server.chat(r[0], r[1], max_tokens, r[2]), requests))


def _one_by_one(server: Server, requests: list[tuple[str, str, dict[str, Any] | None]], max_tokens: int) -> int:
    return sum(server.chat(m, p, max_tokens, k) for m, p, k in requests)


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} ({min(values):.3g}..{max(values):.3g})"


def _batches(server: Server) -> tuple[float, float]:
    """(rows, batches) so far, from the server's `kvsl_batch_rows` histogram."""
    _, text = server.request("GET", "/metrics")
    values = {line.split()[0]: float(line.split()[1]) for line in str(text).splitlines()
              if line.startswith("kvsl_batch_rows_")}
    return values.get("kvsl_batch_rows_sum", 0.0), values.get("kvsl_batch_rows_count", 0.0)


def throughput(server: Server, style: str, n: int, max_tokens: int, reps: int) -> float:
    requests = [(style, PROMPTS[i % len(PROMPTS)], None) for i in range(n)]
    together, alone, ratios, sizes = [], [], [], []
    for rep in range(reps):
        order = (True, False) if rep % 2 == 0 else (False, True)
        rates = {}
        for at_once in order:
            rows_before, batches_before = _batches(server)
            seconds, tokens = _timed(lambda a=at_once: (_at_once if a else _one_by_one)(server, requests, max_tokens))
            rates[at_once] = tokens / seconds
            if at_once:
                rows, batches = _batches(server)
                sizes.append((rows - rows_before) / max(1.0, batches - batches_before))
        together.append(rates[True])
        alone.append(rates[False])
        ratios.append(rates[True] / rates[False])
    per = "decoding step" if server.batching == "continuous" else "batch"
    print(f"throughput, {n} requests × {max_tokens} tokens: at once {_summary(together)} tok/s, "
          f"one at a time {_summary(alone)} tok/s, ratio {_summary(ratios)}  (goal ≥ 4); "
          f"rows per {per} at once {_summary(sizes)}")
    return statistics.median(ratios)


def latency(server: Server, args: argparse.Namespace, style: str, reps: int) -> float:
    """One request through the server vs the same generation run directly: the same prompt
    ids, the style's own `generate { ... }` settings (as the server and `kvsl run` use them),
    the same new tokens (checked), torch's threads as the server's."""
    import dataclasses

    import torch

    from kvsl.engine.generate import GenerationSettings, chat_prompt, generate_batch
    from kvsl.serve.catalog import load_catalog

    catalog = load_catalog(args.targets, model=args.model, precision="fp32")
    loaded = catalog.loaded
    name = style.partition(":")[2]
    served = catalog.styles.get(name)
    edit = offset = None
    system = None
    settings = GenerationSettings(max_new_tokens=args.max_tokens)
    if served is not None:
        from kvsl.engine.steer import resolve_edit

        coefficients = served.plan.steer.coefficients(loaded.geometry.num_layers)
        edit, offset, system = resolve_edit(served.vectors, coefficients), served.offset_id, served.system_prompt
        settings = dataclasses.replace(served.plan.generate, max_new_tokens=args.max_tokens)
    if args.threads:
        torch.set_num_threads(args.threads)
    prompt = PROMPTS[0]
    ids = [chat_prompt(loaded.tokenizer, prompt, system)]

    def direct() -> str:
        tokens = generate_batch(loaded.model, loaded.tokenizer, ids, settings=settings,
                                offset_id=offset, edit=edit)[0]
        return str(loaded.tokenizer.decode(tokens, skip_special_tokens=True))

    def through_server() -> str:
        body = {"model": style, "max_tokens": args.max_tokens,
                "messages": [{"role": "user", "content": prompt}]}
        status, answer = server.request("POST", "/v1/chat/completions", body)
        if status != 200:
            raise RuntimeError(f"{status}: {answer}")
        return str(answer["choices"][0]["message"]["content"])

    same = direct() == through_server()  # also the warm-up of both sides
    direct_s, served_s, ratios = [], [], []
    for rep in range(reps):
        times = {}
        for side in (("direct", "server") if rep % 2 == 0 else ("server", "direct")):
            started = time.perf_counter()
            (direct if side == "direct" else through_server)()
            times[side] = time.perf_counter() - started
        direct_s.append(times["direct"])
        served_s.append(times["server"])
        ratios.append(times["server"] / times["direct"])
    print(f"latency, one request of {args.max_tokens} tokens: server {_summary(served_s)} s, "
          f"direct {_summary(direct_s)} s, ratio {_summary(ratios)}  (goal ≤ 1.1); "
          f"same text on both sides: {'yes' if same else 'NO'}")
    return statistics.median(ratios)


def mixed(server: Server, styles: list[str], plain: str, n: int, max_tokens: int, reps: int) -> float:
    one = [(styles[0], PROMPTS[i % len(PROMPTS)], None) for i in range(n)]
    kinds: list[tuple[str, dict[str, Any] | None]] = [(s, None) for s in styles]
    kinds += [(plain, None), (styles[0], {"value": 3.0}), (styles[-1], {"value": 9.0, "layers": "2.."})]
    mix = [(kinds[i % len(kinds)][0], PROMPTS[i % len(PROMPTS)], kinds[i % len(kinds)][1]) for i in range(n)]
    per_token = {True: [], False: []}
    ratios = []
    for rep in range(reps):
        got = {}
        for is_mixed in ((True, False) if rep % 2 == 0 else (False, True)):
            seconds, tokens = _timed(lambda m=is_mixed: _at_once(server, mix if m else one, max_tokens))
            got[is_mixed] = seconds / max(1, tokens)
            per_token[is_mixed].append(got[is_mixed] * 1000)
        ratios.append(got[True] / got[False])
    print(f"mixed styles, {n} at once: mixed {_summary(per_token[True])} ms/token, one style "
          f"{_summary(per_token[False])} ms/token, ratio {_summary(ratios)}  (goal ≤ 1.05)")
    return statistics.median(ratios)


def _staggered(server: Server, style: str, n: int, max_tokens: int, gap: float) -> tuple[float, float]:
    """N requests, the i-th sent at i × `gap` seconds: (median latency, aggregate tokens/s)."""
    started = time.perf_counter()
    latencies: list[float] = [0.0] * n

    def one(i: int) -> int:
        time.sleep(max(0.0, started + i * gap - time.perf_counter()))
        sent = time.perf_counter()
        tokens = server.chat(style, PROMPTS[i % len(PROMPTS)], max_tokens)
        latencies[i] = time.perf_counter() - sent
        return tokens

    with ThreadPoolExecutor(n) as pool:
        tokens = sum(pool.map(one, range(n)))
    return statistics.median(latencies), tokens / (time.perf_counter() - started)


def staggered(servers: dict[str, Server], style: str, n: int, max_tokens: int, gap_ms: float,
              reps: int) -> float:
    latency_s: dict[str, list[float]] = {kind: [] for kind in servers}
    rate: dict[str, list[float]] = {kind: [] for kind in servers}
    latency_ratios, rate_ratios = [], []
    for rep in range(reps):
        got = {}
        for kind in (("continuous", "dynamic") if rep % 2 == 0 else ("dynamic", "continuous")):
            got[kind] = _staggered(servers[kind], style, n, max_tokens, gap_ms / 1000)
            latency_s[kind].append(got[kind][0])
            rate[kind].append(got[kind][1])
        latency_ratios.append(got["continuous"][0] / got["dynamic"][0])
        rate_ratios.append(got["continuous"][1] / got["dynamic"][1])
    print(f"staggered arrivals, {n} requests × {max_tokens} tokens, one every {gap_ms:g} ms: "
          f"median latency continuous {_summary(latency_s['continuous'])} s, dynamic "
          f"{_summary(latency_s['dynamic'])} s, ratio {_summary(latency_ratios)} (< 1: continuous "
          f"answers sooner); tokens/s continuous {_summary(rate['continuous'])}, dynamic "
          f"{_summary(rate['dynamic'])}, ratio {_summary(rate_ratios)}")
    return statistics.median(latency_ratios)


def _fault(server: Server, kind: str, model: str) -> str:
    """One faulty request; returns what came back."""
    import socket

    if kind == "malformed":
        body = random.choice([b"{oops", b"[]", json.dumps({"model": model, "messages": "x"}).encode(),
                              json.dumps({"model": model + ":nope", "messages": []}).encode(),
                              json.dumps({"model": model, "max_tokens": -3, "messages": [
                                  {"role": "user", "content": "x"}]}).encode()])
        status, _ = server.request("POST", "/v1/chat/completions", body)
        return str(status)
    body = json.dumps({"model": model, "max_tokens": 64, "stream": kind == "stream-drop",
                       "messages": [{"role": "user", "content": random.choice(PROMPTS)}]}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        if kind == "stream-drop":
            sock.recv(256)  # the first bytes of the stream, then hang up
        else:
            time.sleep(random.uniform(0.0, 0.2))  # hang up before the answer
    return "dropped"


def faults(server: Server, models: list[str], total: int, seconds: float) -> bool:
    kinds = ["malformed", "stream-drop", "drop"]
    plan = ["ok"] * total
    for i in random.Random(0).sample(range(total), total // 10):
        plan[i] = kinds[i % 3]
    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    lock = threading.Lock()

    def one(i: int) -> None:
        if time.monotonic() > deadline:
            result = "skipped (time limit)"
        elif plan[i] == "ok":
            try:
                server.chat(models[i % len(models)], PROMPTS[i % len(PROMPTS)], 4)
                result = "200"
            except RuntimeError as err:
                result = str(err).split(":")[0]
            except OSError as err:
                result = f"connection error {type(err).__name__}"
        else:
            try:
                result = f"{plan[i]}:{_fault(server, plan[i], models[0])}"
            except OSError as err:
                result = f"{plan[i]}:connection error {type(err).__name__}"
        with lock:
            outcomes[result] = outcomes.get(result, 0) + 1

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(total)))
    alive = server.process.poll() is None
    health: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while alive and time.monotonic() < deadline:
        _, health = server.request("GET", "/health")
        if health["in_flight"] == 0 and health["running_rows"] == 0:
            break
        time.sleep(0.1)
    server_errors = sum(v for k, v in outcomes.items() if k.startswith("5"))
    leaked = health.get("in_flight", "?") if alive else "?"
    print(f"faults, {total} requests (10% malformed or disconnecting): crashes {0 if alive else 1}, "
          f"5xx {server_errors}, leaked slots {leaked}; outcomes {dict(sorted(outcomes.items()))}")
    return alive and server_errors == 0 and leaked == 0


def _tiny_workspace() -> tuple[Path, list[str]]:
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    sys.path.insert(0, str(ROOT / "tests" / "serve"))
    from serve_support import tiny_workspace

    root = tiny_workspace(Path(tempfile.mkdtemp(prefix="kvsl-serve-bench-")))
    return root, [str(root / "alpha.kvs"), str(root / "beta.kvs")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help="styles to serve (default: step-by-step)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--tiny", action="store_true", help="a tiny random Llama and two specs")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--faults", type=int, default=500, help="requests in the fault run (0: skip)")
    parser.add_argument("--fault-seconds", type=float, default=600)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for the server and the direct runs (0: torch's default)")
    parser.add_argument("--batching", default="continuous", choices=["continuous", "dynamic"],
                        help="the main server's batching")
    parser.add_argument("--stagger-ms", type=float, default=75.0,
                        help="gap between arrivals in the staggered case")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["throughput", "latency", "mixed", "staggered"])
    args = parser.parse_args()
    # A `timeout` or Ctrl-C still stops the server: SIGTERM becomes SystemExit (finally runs).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cwd = Path.cwd()
    if args.tiny:
        cwd, args.targets = _tiny_workspace()
    elif not args.targets:
        args.targets = ["step-by-step"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if args.threads:  # kvsl's thread rule reads --threads or KVSL_THREADS, not OMP_NUM_THREADS
        env["KVSL_THREADS"] = env["OMP_NUM_THREADS"] = str(args.threads)
    server_args = [*args.targets, *(["--model", args.model] if args.model else []),
                   "--max-batch", str(max(16, args.requests)), "--max-queue", "1000",
                   "--gather-ms", "10", "--max-new-tokens", str(max(64, args.max_tokens))]
    print(f"load average at the start: {_load()}")
    server = Server(cwd, [*server_args, "--batching", args.batching], env)
    plain, styles = server.models[0], server.models[1:] or server.models[:1]
    other: Server | None = None
    try:
        server.chat(styles[0], PROMPTS[0], 2)  # warm-up
        if "throughput" not in args.skip:
            throughput(server, styles[0], args.requests, args.max_tokens, args.reps)
        if "latency" not in args.skip:
            latency(server, args, styles[0], args.reps * 2)
        if "mixed" not in args.skip:
            mixed(server, styles, plain, args.requests, args.max_tokens, args.reps)
        if "staggered" not in args.skip:
            kind = "dynamic" if args.batching == "continuous" else "continuous"
            other = Server(cwd, [*server_args, "--batching", kind], env)
            other.chat(styles[0], PROMPTS[0], 2)  # warm-up
            staggered({args.batching: server, kind: other}, styles[0], args.requests,
                      args.max_tokens, args.stagger_ms, args.reps)
            print(f"second server exit code after SIGTERM: {other.stop()}")
            other = None
        if args.faults:
            faults(server, [plain, *styles], args.faults, args.fault_seconds)
    finally:
        if other is not None:
            other.stop()
        code = server.stop()
        print(f"server exit code after SIGTERM: {code}")
        print(f"load average at the end: {_load()}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


if __name__ == "__main__":
    from kvsl.base.interrupt import stop_on_interrupt

    with stop_on_interrupt(None):  # Ctrl-C: exit 130 at once, no traceback
        main()
