"""What a kill leaves in an eval's folder: the sweep plot is the previous one or the new
one, never cut short, and a cache line of any wrong shape is a KVS613 warning on rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvsl.eval.results_cache import ResultsCache


def test_a_sweep_plot_stopped_while_saving_leaves_the_previous_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    from kvsl.eval.plot import plot_sweeps
    from kvsl.eval.stats import Accuracy
    from kvsl.eval.sweep import SweepPoint

    points = [
        SweepPoint("value", v, "cache", Accuracy(k, 8, k / 8, 0.0, 1.0), 40.0 + v, None)
        for k, v in enumerate((2.0, 4.0, 6.0))
    ]
    target = plot_sweeps({"value": points}, tmp_path / "sweep.png")
    before = target.read_bytes()
    assert before.startswith(b"\x89PNG") and before.endswith(b"IEND\xaeB`\x82")

    real = Figure.savefig

    def stopped_halfway(self, fname, **kwargs):  # a kill between two writes of the image
        real(self, fname, **kwargs)
        data = Path(fname).read_bytes()
        Path(fname).write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", stopped_halfway)
    with pytest.raises(KeyboardInterrupt):
        plot_sweeps({"value": points[:2]}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.png"]


@pytest.mark.parametrize(
    "line",
    [
        '{"key": ["a", "list"], "response": "x", "tokens": 1}',  # unhashable key
        '{"key": {"a": 1}, "response": "x", "tokens": 1}',
        '{"key": 7, "response": "x", "tokens": 1}',
        '["key", "response"]',
        '"key"',
        "null",
        '{"key": "k", "response": "x"}',
        '{"key": "k", "resp',  # torn by a kill
    ],
)
def test_a_cache_line_of_any_wrong_shape_is_skipped_with_a_warning(
    tmp_path: Path, line: str
) -> None:
    good = {"key": "plain/h/0/q1/abc", "response": "The answer is 4.", "tokens": 5}
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(good) + "\n" + line + "\n", encoding="utf-8")
    cache = ResultsCache(path)
    assert [w.code for w in cache.warnings] == ["KVS613", "KVS620"]  # warned, then dropped
    assert cache.warnings[0].span.line == 2
    assert list(cache.records) == [good["key"]]
    assert path.read_text(encoding="utf-8") == json.dumps(good) + "\n"
