"""Prometheus metrics of one server (its own registry, so several apps can live in a process)."""

from __future__ import annotations


class Metrics:
    """Requests, tokens, latency, batch sizes, slots: what `/metrics` shows."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "kvsl_requests", "Requests answered, by endpoint and status.", ["endpoint", "status"],
            registry=r,
        )
        self.prompt_tokens = Counter("kvsl_prompt_tokens", "Prompt tokens of finished requests.", registry=r)
        self.completion_tokens = Counter(
            "kvsl_completion_tokens", "Generated tokens of finished requests.", registry=r
        )
        self.latency = Histogram(
            "kvsl_request_seconds", "Time from arrival to the last token, by endpoint.", ["endpoint"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128), registry=r,
        )
        self.batch_rows = Histogram(
            "kvsl_batch_rows",
            "Rows decoded together: per decoding step (continuous batching), per batch (dynamic).",
            buckets=(1, 2, 4, 8, 16, 32, 64), registry=r,
        )
        self.joined_running = Counter(
            "kvsl_rows_joined_running", "Rows that joined a batch while it was decoding.", registry=r
        )
        self.disconnects = Counter(
            "kvsl_client_disconnects", "Requests whose client left before the answer.", registry=r
        )
        self.in_flight = Gauge("kvsl_requests_in_flight", "Requests holding a slot.", registry=r)
        self.queued = Gauge("kvsl_requests_queued", "Requests waiting for a batch.", registry=r)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def count(self, endpoint: str, status: int) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()

    def finished(self, endpoint: str, seconds: float, prompt: int, completion: int) -> None:
        self.latency.labels(endpoint=endpoint).observe(seconds)
        self.prompt_tokens.inc(prompt)
        self.completion_tokens.inc(completion)


