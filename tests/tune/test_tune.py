"""`kvsl tune` on a tiny random Llama and an eight-question dev file (fast).

The numbers a tiny random model produces mean nothing; what is checked is the machinery:
the dev-split guard and dev-file diagnostics, successive halving, vectors built once per
shots value, the per-example cache (a killed tune resumes without redoing answers), the
reports and plot, `--write` through the formatter, and the CLI's exit codes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from tiny_models import TINY_TRACES, tiny_spec
from tune_support import DEV, save_tune_model, write_spec
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.lang import compile_spec, load_plan
from kvsl.lang.diagnostics import KvslError, Severity
from kvsl.tune.grid import TuneRequest, grid
from kvsl.tune.run import run_tune
from kvsl.tune.search import rung_sizes


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tune_model(tmp_path_factory.mktemp("tune-model"))


@pytest.fixture
def spec(tmp_path: Path, model_dir: Path) -> Path:
    return write_spec(tmp_path, model_dir)


def _request(spec: Path, out: Path, **changes) -> TuneRequest:
    request = TuneRequest(
        spec=str(spec),
        dev=str(DEV),
        values=(0.0, 4.0),
        repetition_penalties=(1.0, 1.3),
        max_new_tokens=4,
        start=2,
        eta=2,
        batch_size=4,
        out_dir=str(out),
        device="cpu",
    )
    return replace(request, **changes)


def test_rungs_and_the_default_grid(spec: Path) -> None:
    assert rung_sizes(200, 25, 2, 6) == [(25, 6), (50, 3), (100, 2), (200, 1)]
    assert rung_sizes(8, 2, 2, 4) == [(2, 4), (4, 2), (8, 1)]
    assert rung_sizes(8, 2, 3, 1) == [(2, 1), (8, 1)]
    plan = load_plan(spec)
    settings = grid(TuneRequest(str(spec), str(DEV)), plan)
    assert sorted({s.value for s in settings}) == [4.0, 6.0, 8.0]  # the spec's c_v 6, ± 2
    assert sorted({s.repetition_penalty for s in settings}) == [1.0, 1.15]
    assert {s.shots for s in settings} == {1} and len(settings) == 6
    # A spec with its own c_v and penalty (the built-ins: 5 and 1.1) still gives 6 settings,
    # not 4 values x 3 penalties (12 settings cost a 200-question tune over twice as much).
    tuned = replace(
        plan,
        steer=replace(plan.steer, value=5.0),
        generate=replace(plan.generate, repetition_penalty=1.1),
    )
    settings = grid(TuneRequest(str(spec), str(DEV)), tuned)
    assert sorted({s.value for s in settings}) == [3.0, 5.0, 7.0]
    assert sorted({s.repetition_penalty for s in settings}) == [1.0, 1.1]
    assert len(settings) == 6
    with pytest.raises(KvslError) as err:
        grid(TuneRequest(str(spec), str(DEV), shots=(3,)), plan)  # pairs = 3: k <= 2
    assert err.value.diagnostics[0].code == "KVS702" and err.value.exit_code == 2


@pytest.mark.parametrize("where", ["notes.md", "notes.md/deeper"])
def test_out_that_is_a_file_is_kvs702_before_any_work(spec: Path, tmp_path: Path, where: str) -> None:
    """`--out notes.md` used to end a tune in a mkdir traceback after its first builds."""
    (tmp_path / "notes.md").write_text("keep me", encoding="utf-8")
    with pytest.raises(KvslError) as err:
        run_tune(_request(spec, tmp_path / where))
    assert err.value.diagnostics[0].code == "KVS702" and err.value.exit_code == 2
    assert "is a file, not a folder" in err.value.diagnostics[0].message
    assert (tmp_path / "notes.md").read_text(encoding="utf-8") == "keep me"


@pytest.mark.parametrize(
    "name", ["ARC-Challenge-Test.jsonl", "test.jsonl", "test_rand_split_no_answers.jsonl"]
)
def test_a_test_split_is_refused_before_anything_loads(spec: Path, tmp_path: Path, name) -> None:
    dev = tmp_path / name
    shutil.copy(DEV, dev)
    with pytest.raises(KvslError) as err:
        run_tune(_request(spec, tmp_path / "out", dev=str(dev)))
    assert err.value.diagnostics[0].code == "KVS700"
    piqa = tmp_path / "piqa" / "valid.jsonl"
    piqa.parent.mkdir()
    shutil.copy(DEV, piqa)
    with pytest.raises(KvslError) as err:
        run_tune(_request(spec, tmp_path / "out", dev=str(piqa)))
    assert err.value.diagnostics[0].code == "KVS700"


def test_bad_dev_files_have_coded_diagnostics_at_file_and_line(spec: Path, tmp_path: Path) -> None:
    def code_of(text: str | None, **changes) -> tuple[str, int]:
        dev = tmp_path / "dev.jsonl"
        dev.unlink(missing_ok=True)
        if text is not None:
            dev.write_text(text, encoding="utf-8")
        with pytest.raises(KvslError) as err:
            run_tune(_request(spec, tmp_path / "out", dev=str(dev), **changes))
        first = err.value.diagnostics[0]
        assert first.span.path.endswith("dev.jsonl")
        return first.code, first.span.line

    good = DEV.read_text(encoding="utf-8").splitlines()
    assert code_of(None)[0] == "KVS600"  # missing
    assert code_of("")[0] == "KVS607"  # empty
    assert code_of("\n".join([good[0], "{not json", good[1]]) + "\n") == ("KVS602", 2)
    assert code_of("\n".join(good[:3]) + "\n", format="arc") == ("KVS603", 1)  # wrong format


def test_a_style_without_a_scorer_is_refused(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES[:6]), encoding="utf-8"
    )
    spec = tmp_path / "mine.kvs"
    spec.write_text(tiny_spec(model_dir, style="my-own", pairs=3), encoding="utf-8")
    with pytest.raises(KvslError) as err:
        run_tune(_request(spec, tmp_path / "out"))
    assert err.value.diagnostics[0].code == "KVS701"


def test_tune_halves_reports_and_resumes_from_the_cache(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_tune(_request(spec, out))
    assert first["rungs"] == [[2, 4], [4, 2], [8, 1]]
    assert [t["n"] for t in first["trials"]] == [2, 2, 2, 2, 4, 4, 8]
    chosen = first["chosen"]
    assert chosen is not None and chosen["n"] == 8 and chosen["feasible"]
    # Each rung re-uses the answers of the smaller one: 4×2 + 2×2 + 1×4 steered answers, and
    # plain answers per decoding (two penalties) on the questions their settings reached.
    results = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert first["generated_now"] == len(results)
    steered = [json.loads(line) for line in results if json.loads(line)["method"] != "plain"]
    assert len(steered) == 4 * 2 + 2 * 2 + 1 * 4
    plain_hashes = {json.loads(line)["key"].split("/")[1] for line in results
                    if json.loads(line)["method"] == "plain"}
    assert len(plain_hashes) == 2  # one plain baseline per decoding: comparisons stay fair
    for suffix in (".json", ".md", ".png"):
        assert (out / f"tune-step-by-step-dev{suffix}").stat().st_size > 0
    markdown = (out / "tune-step-by-step-dev.md").read_text(encoding="utf-8")
    assert "**Chosen:**" in markdown and chosen["label"] in markdown

    again = run_tune(_request(spec, out))
    assert again["generated_now"] == 0 and again["chosen"] == chosen

    # A tune killed mid-write: keep the first lines and half of the next one.
    kept = 5
    (out / "results.jsonl").write_text(
        "\n".join(results[:kept]) + "\n" + results[kept][:20], encoding="utf-8"
    )
    resumed = run_tune(_request(spec, out))
    assert resumed["generated_now"] == len(results) - kept
    assert resumed["chosen"] == chosen
    assert [w["code"] for w in resumed["warnings"]] == ["KVS705", "KVS613", "KVS620"]
    again = run_tune(_request(spec, out))  # the torn line was dropped: no warning again
    assert [w["code"] for w in again["warnings"]] == ["KVS705"] and again["generated_now"] == 0


def test_an_interrupted_tune_continues_without_redoing_answers(spec: Path, tmp_path: Path) -> None:
    from kvsl.eval.session import open_context

    request = _request(spec, tmp_path / "out")
    ctx = open_context(spec, out_dir=tmp_path / "out", batch_size=4, device="cpu")
    real = ctx.generator.generate_jobs
    calls = {"n": 0}

    def dies_after_five_answers(jobs, *, on_done):
        def answered(*args):
            on_done(*args)
            calls["n"] += 1
            if calls["n"] >= 5:
                raise KeyboardInterrupt

        return real(jobs, on_done=answered)

    ctx.generator.generate_jobs = dies_after_five_answers
    with pytest.raises(KeyboardInterrupt):
        run_tune(request, context=ctx)
    done = len((tmp_path / "out" / "results.jsonl").read_text().splitlines())
    assert done == 5
    ctx.generator.generate_jobs = real
    resumed = run_tune(request, context=ctx)
    fresh = run_tune(replace(request, out_dir=str(tmp_path / "fresh")), context=ctx)
    assert resumed["generated_now"] == fresh["generated_now"] - done
    assert resumed["chosen"] == fresh["chosen"]


def test_vectors_are_built_once_per_shots(spec: Path, tmp_path: Path, monkeypatch) -> None:
    import kvsl.eval.session as session

    built: list[int] = []
    real = session.vectors_for_contrast

    def counting(ctx, **changes):
        built.append(changes["shots"])
        return real(ctx, **changes)

    monkeypatch.setattr(session, "vectors_for_contrast", counting)
    report = run_tune(_request(spec, tmp_path / "out", shots=(1, 2), repetition_penalties=(1.0,)))
    assert built == [2]  # shots = 1 is the spec's own vectors; 2 is built once for all rungs
    assert {t["setting"]["shots"] for t in report["trials"]} == {1, 2}


def test_write_keeps_comments_and_the_spec_still_checks(spec: Path, tmp_path: Path) -> None:
    before = spec.read_text(encoding="utf-8")
    report = run_tune(_request(spec, tmp_path / "out", values=(2.0,), write=True))
    chosen = report["chosen"]["setting"]
    after = spec.read_text(encoding="utf-8")
    for comment in ("# My style: numbered steps.", "# one line", "# the steering", "# the reference"):
        assert comment in after
    assert after.count("# kvsl tune:") == 1 and "dev `dev.jsonl` (8 questions" in after
    _, diagnostics = compile_spec(spec)
    assert not [d for d in diagnostics if d.severity == Severity.ERROR]
    plan = load_plan(spec)
    assert plan.steer.value == 2.0 == chosen["value"]
    assert plan.generate.repetition_penalty == chosen["repetition_penalty"]
    assert report["written"][0] == "steer.value" and after != before
    # Tuning again replaces the tune comment instead of stacking a second one.
    run_tune(_request(spec, tmp_path / "out", values=(4.0,), write=True))
    again = spec.read_text(encoding="utf-8")
    assert again.count("# kvsl tune:") == 1 and load_plan(spec).steer.value == 4.0


def test_write_refuses_an_installed_builtin_spec_and_an_artifact(
    tmp_path: Path, monkeypatch
) -> None:
    import kvsl.builtin as builtin
    from kvsl.base import locations

    installed = builtin.builtin_spec("step-by-step")
    assert installed is not None
    # In a checkout the built-in specs are not installed: pretend they are (refused before
    # anything loads, so no model is touched).
    monkeypatch.setattr(locations, "PACKAGED_DIR", installed.parent.parent)
    for target in (installed, tmp_path / "vectors.safetensors"):
        with pytest.raises(KvslError) as err:
            run_tune(TuneRequest(str(target), str(DEV), write=True, out_dir=str(tmp_path)))
        (diagnostic,) = err.value.diagnostics
        assert diagnostic.code == "KVS704"
        if target == installed:  # the copy it advises keeps the spec's `../templates/`
            assert f"`specs/` and `templates/` from `{installed.parent.parent}`" in str(
                diagnostic.help
            )


def test_cli_tunes_and_bad_flags_exit_2(spec: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    common = ["tune", str(spec), "--dev", str(DEV), "--max-new-tokens", "3", "--start", "4",
              "--out", str(tmp_path / "out"), "--device", "cpu", "--repetition-penalties", "1"]
    result = runner.invoke(app, [*common, "--values", "0,4", "--json", "--forced-choice", "calibrated"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["forced_choice"] == "calibrated"
    assert report["rungs"] == [[4, 2], [8, 1]] and report["chosen"]["n"] == 8
    text = runner.invoke(app, [*common, "--values", "0,4"])
    assert text.exit_code == 0 and "chosen: " in text.stdout and "report: " in text.stdout
    for bad in (["--values", "2,four"], ["--eta", "1"], ["--fallbacks", "-1"], ["--layers", "1-3"],
                ["--shots", "9"], ["--repetition-penalties", "0"], ["--format", "mmlu"],
                ["--forced-choice", "letters"]):
        failed = runner.invoke(app, [*common, *bad])
        assert failed.exit_code == 2, (bad, failed.output)
        assert "error[KVS" in failed.stderr


class _Stub:
    """A generator whose plain answers are right and whose steered answers loop and are wrong."""

    system_prompt = None
    batch_size = 4

    def __init__(self, answers: dict[str, str], right_at: tuple[float, ...] = ()) -> None:
        self.answers = answers
        self.right_at = right_at  # c_v values whose steered answers are plain's (no style)

    def generate_jobs(self, jobs, **_):
        from kvsl.eval.methods import Generation

        def answer(method, question):
            value = method.coefficients[0][2] if method.coefficients else None
            if method.kind == "plain" or value in self.right_at:
                return Generation(f"The answer is {self.answers[question]}.", 5, 0.01)
            return Generation("1. Step one.\n" * 6, 30, 0.01)

        return [[answer(job.method, q) for q in job.questions] for job in jobs]

    def forced_choices(self, *args):  # pragma: no cover - the dev file is not multiple choice
        raise AssertionError


def test_no_setting_that_costs_accuracy_is_chosen_or_written(spec: Path, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from tiny_models import WORD_GEOMETRY, random_vectors

    from kvsl.formats.questions import load_benchmark

    plan = load_plan(spec)
    answers = {e.question: e.answer for e in load_benchmark(DEV)}
    ctx = SimpleNamespace(
        plan=plan,
        vectors=random_vectors(WORD_GEOMETRY),
        generator=_Stub(answers),
        identity={"model": "stub"},
        num_layers=3,
        console=None,
    )
    before = spec.read_text(encoding="utf-8")
    report = run_tune(_request(spec, tmp_path / "out", write=True), context=ctx)
    assert report["chosen"] is None and "written" not in report
    assert [w["code"] for w in report["warnings"]] == ["KVS705", "KVS703"]
    assert report["fallbacks"] == 2  # two runners-up answered every question, in vain
    assert sum(s["n"] == 8 for s in report["settings"]) == 3
    final = report["settings"][0]
    assert final["n"] == 8 and final["accuracy"] == 0 and final["plain_accuracy"] == 1
    assert final["p_mcnemar"] < 0.05 and not final["feasible"]
    assert final["novelty"] < 0.5  # the loop is seen as such
    assert spec.read_text(encoding="utf-8") == before
    assert "No setting kept dev accuracy" in Path(report["markdown_path"]).read_text("utf-8")


def test_a_winner_that_costs_accuracy_falls_back_to_a_runner_up(spec: Path, tmp_path: Path) -> None:
    """The early rungs are too small to see an accuracy loss, so the style-richest setting
    wins them; on the whole dev set it fails the test, and runners-up (the one that went
    farthest and lost least accuracy first) answer every question until one keeps accuracy."""
    from types import SimpleNamespace

    from tiny_models import WORD_GEOMETRY, random_vectors

    from kvsl.formats.questions import load_benchmark

    answers = {e.question: e.answer for e in load_benchmark(DEV)}
    ctx = SimpleNamespace(
        plan=load_plan(spec),
        vectors=random_vectors(WORD_GEOMETRY),
        generator=_Stub(answers, right_at=(0.0,)),
        identity={"model": "stub"},
        num_layers=3,
        console=None,
    )
    report = run_tune(_request(spec, tmp_path / "out"), context=ctx)
    assert report["fallbacks"] == 2
    assert report["chosen"]["setting"]["value"] == 0.0 and report["chosen"]["feasible"]
    assert report["chosen"]["n"] == 8
    assert "then 2 runners-up on every question" in Path(report["markdown_path"]).read_text("utf-8")
    none = run_tune(_request(spec, tmp_path / "none", fallbacks=0), context=ctx)
    assert none["chosen"] is None and none["fallbacks"] == 0
