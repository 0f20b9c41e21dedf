"""Fixtures for the teacher's tests: the stub server, plans and question files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from teacher_stub import StubServer
from teacher_support import MakePlan

from kvsl.lang.plan import (
    ContrastPlan,
    ExtractPlan,
    GeneratePlan,
    ModelRef,
    Plan,
    SteerPlan,
    TeacherPlan,
)

TEMPLATE = (
    "Explain in the {{ style }} style.\n"
    "{% if domain %}Domain: {{ domain }}\n{% endif %}"
    "Question: {{ question }}\n"
    "{% if choices %}Options: {% for c in choices %}{{ c.label }}={{ c.text }} {% endfor %}\n{% endif %}"
    "Correct answer: {{ answer }}\n"
)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _clean_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own key or base URL must never leak into (or steer) a test.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    # Nor a proxy: the client honours them, and the stubs listen on 127.0.0.1.
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def make_plan(tmp_path: Path) -> MakePlan:
    """Build a Plan whose teacher writes to tmp_path/traces/t.jsonl."""

    def build(
        *,
        questions: Path | None = None,
        question_format: str | None = None,
        base_url: str | None = None,
        template: str = TEMPLATE,
        template_path: str | None = None,
        traces: Path | None = None,
        concurrency: int = 2,
        model: str = "gpt-4o-mini",
        teacher: bool = True,
    ) -> Plan:
        trace_path = traces or tmp_path / "traces" / "t.jsonl"
        teacher_plan = TeacherPlan(
            model=model,
            template_source=template,
            template_path=template_path,
            traces=str(trace_path),
            base_url=base_url,
            questions=str(questions) if questions else None,
            question_format=question_format,  # type: ignore[arg-type]
            concurrency=concurrency,
        )
        return Plan.create(
            style="test-style",
            description="Short steps.",
            spec_path=str(tmp_path / "spec.kvs"),
            model=ModelRef("smollm2-135m", "embedded", "smollm2-135m"),
            teacher=teacher_plan if teacher else None,
            contrast=ContrastPlan(str(trace_path), "", pairs=4, shots=1, selection="random", seed=0),
            extract=ExtractPlan(),
            steer=SteerPlan(),
            generate=GeneratePlan(),
        )

    return build
