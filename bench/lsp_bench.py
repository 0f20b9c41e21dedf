"""`kvsl lsp` latency and memory, measured at the client over stdio.

Starts the real server (`python -m kvsl lsp`, its default debounce) with pygls's client and
measures, for each edit, the time from sending `didChange` to receiving the
`publishDiagnostics` of that version:

- a typical spec (the built-in step_by_step.kvs with its template and traces), goal 50 ms;
- a generated 2,000-line spec (many `at` overrides and comments), goal 200 ms.

The two are interleaved (typical, large, typical, ...) so that machine noise hits both;
each edit alternately breaks and fixes a key, so every publication carries new content.
Then the memory phase sends `--edits` incremental edits (10,000 by default) to the
typical spec, waiting for the diagnostics of every `--settle`-th one, and reports the
server's resident memory (VmRSS) at the start, every 1,000 edits and at the end.

    python bench/lsp_bench.py [--repeat 40] [--edits 10000] [--settle 20] [--baseline DIR]

With `--baseline DIR` a second server, from another checkout, takes its turn in every
round (the order alternates), so the two are compared under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30.0


def large_spec(lines: int = 2000) -> str:
    head = (
        'style "large" {\n'
        '  description = "A generated spec of many lines."\n'
        '  teacher {\n    model = "gpt-4o"\n    template = "../templates/step_by_step.j2"\n'
        '    traces = "traces/step_by_step.jsonl"\n  }\n'
        "  contrast {\n    pairs = 40\n    shots = 2\n  }\n"
        "  steer {\n    layers = [1..]\n    value = 6\n"
    )
    body: list[str] = []
    i = 0
    while len(head.splitlines()) + len(body) < lines - 2:
        layer = 1 + i % 29
        body.append(f"    # override {i}: a comment line, as specs carry")
        body.append(f"    at [{layer}..{layer}] {{ value = {4 + i % 3} }}")
        i += 1
    return head + "\n".join(body) + "\n  }\n}\n"


class Client(LanguageClient):
    def __init__(self) -> None:
        super().__init__("kvsl-bench", "1")
        self.arrived: dict[tuple[str, int], float] = {}
        self.event = asyncio.Event()

        @self.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            if params.version is not None:
                self.arrived[(params.uri, params.version)] = time.perf_counter()
                self.event.set()

    async def published(self, uri: str, version: int) -> float:
        deadline = time.perf_counter() + TIMEOUT
        while (uri, version) not in self.arrived:
            self.event.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no diagnostics for version {version} of {uri}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), left)
        return self.arrived.pop((uri, version))

    def change(self, uri: str, version: int, line: int, start: int, end: int, text: str) -> None:
        self.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [
                    lsp.TextDocumentContentChangePartial(
                        range=lsp.Range(lsp.Position(line, start), lsp.Position(line, end)),
                        text=text,
                    )
                ],
            )
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc, clock ticks)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Document:
    """An open document whose `key_line` holds `pairs` (toggled to `pairz` and back)."""

    def __init__(self, client: Client, path: Path) -> None:
        self.client = client
        self.uri = from_fs_path(str(path))
        self.text = path.read_text(encoding="utf-8")
        lines = self.text.split("\n")
        self.line = next(i for i, text in enumerate(lines) if text.strip().startswith("pairs"))
        self.column = lines[self.line].index("pairs") + 4
        self.version = 1
        self.broken = False
        client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(self.uri, "kvs", 1, self.text))
        )

    def toggle(self) -> int:
        """Send one edit; returns its version."""
        self.version += 1
        self.broken = not self.broken
        letter = "z" if self.broken else "s"
        self.client.change(self.uri, self.version, self.line, self.column, self.column + 1, letter)
        return self.version

    async def timed_edit(self, pid: int) -> tuple[float, float]:
        """(wall seconds at the client, server CPU seconds) for one edit."""
        cpu = cpu_seconds(pid)
        start = time.perf_counter()
        version = self.toggle()
        arrived = await self.client.published(self.uri, version)
        return arrived - start, cpu_seconds(pid) - cpu


def summary(name: str, samples: list[float], goal_ms: float) -> str:
    ms = sorted(s * 1000 for s in samples)
    median = statistics.median(ms)
    p10, p90 = ms[len(ms) // 10], ms[min(len(ms) - 1, len(ms) * 9 // 10)]
    verdict = "meets" if median <= goal_ms else "MISSES"
    return (
        f"{name:<24} median {median:7.1f} ms  (p10 {p10:6.1f}, p90 {p90:6.1f}, n={len(ms)})"
        f"  goal {goal_ms:.0f} ms: {verdict}"
    )


class Server:
    """One `kvsl lsp` process (from the checkout `root`) with both documents open."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.client = Client()
        self.times: dict[str, list[float]] = {"typical": [], "large": []}
        self.cpu: dict[str, float] = {"typical": 0.0, "large": 0.0}

    async def start(self, folder: Path, typical_path: Path, large_path: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(self.root), OMP_NUM_THREADS="1")
        client = self.client
        await client.start_io(sys.executable, "-m", "kvsl", "lsp", env=env, cwd=str(folder))
        await client.initialize_async(
            lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), process_id=os.getpid())
        )
        client.initialized(lsp.InitializedParams())
        self.pid = client._server.pid  # type: ignore[union-attr]
        self.docs = {"typical": Document(client, typical_path), "large": Document(client, large_path)}
        for doc in self.docs.values():
            await client.published(doc.uri, 1)
        for _ in range(5):  # warm up (first checks fill caches)
            for doc in self.docs.values():
                await doc.timed_edit(self.pid)

    async def timed_round(self) -> None:
        for name, doc in self.docs.items():
            wall, used = await doc.timed_edit(self.pid)
            self.times[name].append(wall)
            self.cpu[name] += used

    def report(self, lines: int, repeat: int) -> None:
        times, cpu = self.times, self.cpu
        print(f"{self.name} ({self.root}):")
        print("  didChange → publishDiagnostics at the client (server debounce included):")
        print("  " + summary("typical spec", times["typical"], 50))
        print("  " + summary(f"{lines}-line spec", times["large"], 200))
        ratio = statistics.median(times["large"]) / statistics.median(times["typical"])
        print(f"  large / typical (medians): {ratio:.2f}x")
        print(
            "  server CPU per edit (mean; wall minus CPU is debounce and waiting for a core): "
            f"typical {cpu['typical'] / repeat * 1000:.1f} ms, "
            f"large {cpu['large'] / repeat * 1000:.1f} ms"
        )

    async def stop(self) -> None:
        client = self.client
        await asyncio.wait_for(client.shutdown_async(None), TIMEOUT)
        client.exit(None)
        await asyncio.wait_for(client._server.wait(), TIMEOUT)  # type: ignore[union-attr]
        await client.stop()


async def main(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="kvsl-lsp-bench-"))
    try:
        shutil.copytree(ROOT / "specs", folder / "specs")
        shutil.copytree(ROOT / "templates", folder / "templates")
        typical_path = folder / "specs" / "step_by_step.kvs"
        large_path = folder / "specs" / "large.kvs"
        large_path.write_text(large_spec(args.lines), encoding="utf-8")
        servers = [Server("this checkout", ROOT)]
        if args.baseline:
            servers.append(Server("baseline", Path(args.baseline).resolve()))
        for server in servers:
            await server.start(folder, typical_path, large_path)
        typical_lines = len(servers[0].docs["typical"].text.splitlines())
        print(f"typical spec: {typical_lines} lines; large spec: {args.lines} lines")
        for rep in range(args.repeat):  # the servers take turns, so load hits both alike
            for server in servers[rep % len(servers) :] + servers[: rep % len(servers)]:
                await server.timed_round()
        for server in servers:
            server.report(args.lines, args.repeat)
        if args.baseline:
            this, base = servers
            for name in ("typical", "large"):
                ratios = [a / b for a, b in zip(this.times[name], base.times[name], strict=True)]
                print(
                    f"this / baseline, {name} spec: median {statistics.median(ratios):.2f}x "
                    f"(p10 {sorted(ratios)[len(ratios) // 10]:.2f}, "
                    f"p90 {sorted(ratios)[len(ratios) * 9 // 10]:.2f}; paired by round)"
                )
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for server in servers[1:]:
            await server.stop()
        client, pid = servers[0].client, servers[0].pid
        typical = servers[0].docs["typical"]

        start_rss = rss_kib(pid)
        print(f"\nmemory over {args.edits} edits (every {args.settle}th awaited):")
        print(f"  start RSS {start_rss / 1024:7.1f} MiB")
        began = time.perf_counter()
        for n in range(1, args.edits + 1):
            version = typical.toggle()
            if n % args.settle == 0:
                await client.published(typical.uri, version)
                client.arrived.clear()
            if n % 1000 == 0:
                print(f"  after {n:>6} edits: RSS {rss_kib(pid) / 1024:7.1f} MiB")
        end_rss = rss_kib(pid)
        print(
            f"  end RSS {end_rss / 1024:7.1f} MiB  (change {(end_rss - start_rss) / 1024:+.1f} MiB, "
            f"{time.perf_counter() - began:.1f} s)"
        )
        await servers[0].stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=40, help="timed edits per file")
    parser.add_argument("--lines", type=int, default=2000, help="lines of the large spec")
    parser.add_argument("--edits", type=int, default=10_000, help="edits in the memory phase")
    parser.add_argument("--settle", type=int, default=20, help="await diagnostics every N edits")
    parser.add_argument(
        "--baseline",
        help="another kvsl checkout (e.g. a `git archive` of an older commit): its server "
        "is timed in the same run, round by round, and the ratios printed",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
