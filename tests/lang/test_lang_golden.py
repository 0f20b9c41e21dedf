"""Golden human + JSON output for every front-end code, and the registry meta-test.

Regenerate with `python tests/regen_golden.py`; never edit tests/golden by hand.
"""

from __future__ import annotations

import json

import pytest
from lang_support import ROOT, regen_module

from kvsl.lang.codes import CODES

regen = regen_module()
FRONTEND = regen.frontend_codes()


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # golden paths are relative to the repository root


@pytest.mark.parametrize("code", FRONTEND)
def test_golden_output(code: str) -> None:
    human, data = regen.render_pair(code)
    golden = ROOT / "tests" / "golden"
    assert human == (golden / f"{code}.txt").read_text(encoding="utf-8"), (
        f"{code}: human output changed; run `python tests/regen_golden.py` and review the diff"
    )
    assert data == (golden / f"{code}.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("code", FRONTEND)
def test_fixture_reports_its_code(code: str) -> None:
    diagnostics = regen.produce(code)
    assert code in {d.code for d in diagnostics}
    for d in diagnostics:
        assert d.code in CODES, f"{d.code} is used but not registered"
        assert d.severity is CODES[d.code].severity or d.code == "KVS008"
        assert d.span.line >= 1 and d.span.column >= 1
        assert (d.message and d.message[0].islower()) or d.message[0] == "`"
        assert not d.message.endswith(".")


@pytest.mark.parametrize("code", list(CODES))
def test_every_registered_code_is_covered(code: str) -> None:
    entry = CODES[code]
    assert entry.title.strip() and entry.explanation.strip()
    assert entry.bad.strip() and entry.good.strip() and entry.bad != entry.good
    if code in FRONTEND:
        assert regen.fixture_path(code).exists()
        assert (ROOT / "tests" / "golden" / f"{code}.txt").exists()
        assert (ROOT / "tests" / "golden" / f"{code}.json").exists()


def test_no_stale_golden_files() -> None:
    names = {p.stem for p in (ROOT / "tests" / "golden").glob("KVS[012]*")}
    assert names == set(FRONTEND)


def test_json_golden_is_sorted_and_stable() -> None:
    for code in FRONTEND:
        text = (ROOT / "tests" / "golden" / f"{code}.json").read_text(encoding="utf-8")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
