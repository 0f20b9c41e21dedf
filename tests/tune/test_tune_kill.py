"""SIGKILL in the middle of `kvsl tune` (no handler runs, nothing is flushed), at chosen
file operations (tests/support/killing.py), so the same moment is hit on any machine.

A tune killed while it builds vectors or while it answers resumes from the per-example
cache and ends with the uninterrupted run's choice and numbers; nothing it leaves is
half-written. `--write` killed before any file operation leaves the spec's old text or the
new one, never a mix, and no stray file beside it once a later write has run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from killing import every_kill, killed_before_operation
from tune_support import DEV, save_tune_model, write_spec

ROOT = Path(__file__).resolve().parents[2]
# Two shots values (two vector builds), two c_v, two decodings: 2×4 + 2×2 + 1×4 steered and
# 2+4+8 plain answers per decoding reached, 44 lines, in three rounds.
FLAGS = ["--values", "0,4", "--repetition-penalties", "1,1.3", "--shots", "1,2",
         "--max-new-tokens", "4", "--start", "2", "--batch-size", "4", "--device", "cpu",
         "--threads", "1", "--json"]  # fmt: skip
# What must not differ between a resumed tune and an uninterrupted one.
SAME = ("chosen", "settings", "trials", "rungs", "fallbacks", "dev", "style")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tune_model(tmp_path_factory.mktemp("tune-kill-model"))


def _args(spec: Path, out: Path) -> list[str]:
    return ["-m", "kvsl", "tune", str(spec), "--dev", str(DEV), "--out", str(out), *FLAGS]


def _tune(spec: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, *_args(spec, out)],
        cwd=spec.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _killed(n: int, folder: Path, spec: Path, out: Path, events: tuple[str, ...]) -> str:
    """`kvsl tune` killed before its n-th file operation (of `events`) under `folder`."""
    done = killed_before_operation(n, folder, _args(spec, out), cwd=spec.parent, events=events)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode(errors="replace")
    return done.stderr.decode(errors="replace")


def _report(process: subprocess.Popen[bytes]) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode(errors="replace")
    return json.loads(out)


def _valid_lines(results: Path) -> int:
    """Whole records in the cache; only the last line may be torn (a kill mid-append)."""
    if not results.exists():
        return 0
    lines = results.read_text(encoding="utf-8", errors="replace").split("\n")
    whole = 0
    for number, line in enumerate(lines, start=1):
        try:
            json.loads(line)
            whole += 1
        except json.JSONDecodeError:
            assert number == len(lines), f"line {number} of {len(lines)} is torn"
    return whole


def _nothing_half_written(folder: Path) -> None:
    """Every file kvsl writes whole is whole under its own name: reports, plot, vectors."""
    from safetensors.torch import load_file

    for path in folder.rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".png":
            assert path.read_bytes().endswith(b"IEND\xaeB`\x82"), f"{path} is cut short"
        elif path.suffix == ".md":
            assert path.read_text(encoding="utf-8").endswith("|\n"), f"{path} is cut short"
        elif path.suffix == ".safetensors":
            load_file(str(path))


def test_sigkill_while_building_and_answering_then_rerun_gives_the_uninterrupted_report(
    model_dir: Path, tmp_path: Path
) -> None:
    reference = _tune(write_spec(tmp_path / "whole", model_dir), tmp_path / "whole" / "out")
    folder = tmp_path / "killed"
    spec, out = write_spec(folder, model_dir), folder / "out"
    results, artifacts = out / "results.jsonl", folder / ".kvsl" / "artifacts"

    # 1. While the vectors are built: the first shots value's are in their temporary file,
    # about to be renamed (a kill at the same point of an eval or a build is the same).
    killed = _killed(1, artifacts, spec, out, ("os.rename",))
    assert not list(artifacts.glob("*.safetensors")) and not results.exists(), killed
    _nothing_half_written(folder)
    assert len(list(artifacts.glob(".*.tmp"))) == 1  # the dead writer's, for the rerun to remove

    # 2. While answering: a rerun builds the vectors and is killed before its 13th opening
    # of the results cache (two per appended answer but the first).
    _killed(13, out, spec, out, ("open",))
    _nothing_half_written(folder)
    saved = _valid_lines(results)
    assert 2 <= saved < 44

    whole = _report(reference)
    resumed = _report(_tune(spec, out))
    assert {k: resumed[k] for k in SAME} == {k: whole[k] for k in SAME}
    assert whole["generated_now"] == 44 and resumed["generated_now"] == 44 - saved
    assert _valid_lines(results) == 44
    _nothing_half_written(folder)
    leftovers = [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [], "temporary files of the killed runs were left"
    assert sorted(p.name for p in folder.iterdir()) == [".kvsl", "out", "tiny.kvs", "traces.jsonl"]


def test_write_killed_before_any_file_operation_leaves_the_old_or_the_new_spec(
    tmp_path: Path,
) -> None:
    """`kvsl tune --write`'s last step, `write_spec`, in a child killed before its 1st,
    2nd, ... file operation in the spec's folder; the spec is always one of two texts."""
    folder = tmp_path / "spec"
    model = tmp_path / "model"  # only named by the spec: nothing loads it
    model.mkdir()
    spec = write_spec(folder, model)
    old = spec.read_text(encoding="utf-8")
    child = (
        "import sys\n"
        "from kvsl.lang import load_plan\n"
        "from kvsl.lang.overrides import parse_layers\n"
        "from kvsl.tune.grid import Setting\n"
        "from kvsl.tune.write import write_spec\n"
        f"spec = {str(spec)!r}\n"
        "setting = Setting(2, parse_layers('2..'), 0.0, 4.0, 1.3, 0)\n"
        "write_spec(spec, load_plan(spec), setting, 'dev `dev.jsonl`: a test')\n"
    )
    kills = 0
    for _ in every_kill(folder, ["-c", child], cwd=tmp_path, before=lambda: spec.write_text(old)):
        kills += 1
        now = spec.read_text(encoding="utf-8")
        assert now == old or _is_new(now), f"a mixed or cut spec after kill {kills}:\n{now}"
        # Beside it at most a temporary file that the next write removes: no second `.kvs`
        # (the check's copy, `.tiny.tune-check.kvs`, was left by a kill, and then
        # `kvsl check DIR` failed on two styles of one name, KVS119).
        others = {p.name for p in folder.iterdir()} - {"tiny.kvs", "traces.jsonl"}
        assert all(n.startswith(".tiny.kvs.") and n.endswith(".tmp") for n in others), others
    new = spec.read_text(encoding="utf-8")
    assert _is_new(new) and kills >= 4  # read, temporary created, written, checked, renamed
    for comment in ("# My style", "# one line", "# the steering", "# the reference"):
        assert comment in new
    # The last (whole) write removed what the killed writers left beside the spec.
    assert sorted(p.name for p in folder.iterdir()) == ["tiny.kvs", "traces.jsonl"]


def _is_new(text: str) -> bool:
    from kvsl.lang.fmt import format_text

    formatted, _ = format_text(text, "tiny.kvs")
    return (
        formatted == text
        and "# kvsl tune: dev `dev.jsonl`: a test" in text
        and "shots = 2" in text
        and "value = 4" in text
        and "repetition_penalty = 1.3" in text
    )


def test_a_tune_write_killed_before_its_reports_ends_as_if_never_stopped(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spec changes last, after the reports: killed before (here at the reports), a
    tune runs again on the same spec and ends with the uninterrupted run's spec and report.
    (Written first, the spec was tuned already on the rerun, which then wrote nothing.)"""
    import kvsl.tune.run as tune_run
    from kvsl.tune.grid import TuneRequest

    def request(folder: Path) -> TuneRequest:
        return TuneRequest(
            spec=str(write_spec(folder, model_dir)), dev=str(DEV), values=(2.0, 4.0),
            repetition_penalties=(1.0,), max_new_tokens=2, start=8, batch_size=8,
            out_dir=str(folder / "out"), device="cpu", threads=1, write=True,
        )  # fmt: skip

    whole = tune_run.run_tune(request(tmp_path / "whole"))
    assert whole["written"]  # c_v 2 or 4 instead of the spec's 6
    killed = request(tmp_path / "killed")
    old = Path(killed.spec).read_text(encoding="utf-8")
    real = tune_run.write_reports

    def killed_here(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # stands for a kill: what is on disk is what counts

    monkeypatch.setattr(tune_run, "write_reports", killed_here)
    with pytest.raises(KeyboardInterrupt):
        tune_run.run_tune(killed)
    assert Path(killed.spec).read_text(encoding="utf-8") == old
    monkeypatch.setattr(tune_run, "write_reports", real)
    again = tune_run.run_tune(killed)
    assert again["generated_now"] == 0 and again["written"] == whole["written"]
    assert {k: again[k] for k in SAME} == {k: whole[k] for k in SAME}
    tuned = Path(whole["spec"]).read_text(encoding="utf-8")
    assert Path(killed.spec).read_text(encoding="utf-8") == tuned != old
