"""A real `kvsl serve` in a subprocess on 127.0.0.1, over a tiny random model saved to disk.

`tiny_workspace(root)` writes the tiny Llama (byte tokenizer), a trace file and two specs
(`alpha`, c_v = 6; `beta`, c_v = -4, other demos), each generating 8 greedy tokens.
`ServerProcess` starts `python -m kvsl serve ... --port 0`, reads the address from its
first line, and stops it with SIGTERM (returning the exit code). `raw(...)` sends one HTTP
request with the standard library, for bodies the `openai` client would never send.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tiny_models import TINY_TRACES, make_tiny_model, tiny_spec

ROOT = Path(__file__).resolve().parents[2]
MODEL_ID = "tiny-llama"


def tiny_workspace(root: Path) -> Path:
    model, tokenizer = make_tiny_model("llama")
    model.save_pretrained(root / MODEL_ID)
    tokenizer.save_pretrained(root / MODEL_ID)
    (root / "traces.jsonl").write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES))
    (root / "alpha.kvs").write_text(tiny_spec(root / MODEL_ID, style="alpha", max_new_tokens=8))
    beta = tiny_spec(root / MODEL_ID, style="beta", value=-4, max_new_tokens=8)
    (root / "beta.kvs").write_text(beta.replace("seed = 0", "seed = 3"))
    return root


def environment(root: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # One torch thread (kvsl's own rule reads KVSL_THREADS, not OMP_NUM_THREADS): the servers
    # share the machine with the tests and each other.
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", KVSL_THREADS="1",
               KVSL_CACHE_DIR=str(root / "cache"))
    env.pop("KVSL_API_KEY", None)
    env.update(extra)
    return env


class ServerProcess:
    """`kvsl serve` running in `root`; `base` is its `http://127.0.0.1:PORT` once started."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kvsl", "serve", *args, "--host", "127.0.0.1", "--port", "0"],
            cwd=root,
            env=env or environment(root),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self.base = self._wait_for_address(timeout=180)

    def _wait_for_address(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        assert self.process.stderr is not None
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                raise RuntimeError("kvsl serve exited before listening:\n" + "".join(self.log))
            self.log.append(line)
            if "listening on http://" in line:
                return line.split("listening on ")[1].split("/v1")[0]
        self.process.kill()
        raise RuntimeError("kvsl serve did not start in time:\n" + "".join(self.log))

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def client(self, **kwargs: Any) -> Any:
        import openai

        kwargs.setdefault("api_key", "unused")
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 120)
        return openai.OpenAI(base_url=self.base + "/v1", **kwargs)

    def health(self) -> dict[str, Any]:
        status, _, body = raw(self.port, "GET", "/health")
        assert status == 200
        return json.loads(body)

    def wait_idle(self, timeout: float = 30) -> dict[str, Any]:
        """/health once no request holds a slot (or the last reading after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if (health["in_flight"] == 0 and health["running_rows"] == 0) or time.monotonic() > deadline:
                return health
            time.sleep(0.05)

    def stop(self, timeout: float = 60) -> tuple[int, str]:
        """SIGTERM, then the exit code and the rest of stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return self.process.returncode, "".join(self.log) + (err or "")


def raw(
    port: int,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict[str, str], str]:
    """One plain HTTP request: (status, headers, body text)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body.encode() if isinstance(body, str) else body
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=data, headers=all_headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()
