"""Data parallelism: the launcher's environment, and two gloo processes under torchrun
giving the same vectors and the same eval results as one process.

The torchrun tests are marked `distributed` (`-m "not distributed"` skips them) and are
skipped where torch.distributed or its launcher is missing. Each launches two processes of
`python -m kvsl` on a tiny random model saved to a temp folder, with one thread each.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_models as tiny
import torch
from tune_support import DEV, write_spec

from kvsl.engine.distributed import DistEnv, all_gather, all_reduce_sum, dist_env, shard
from kvsl.eval.results_cache import ResultsCache, shard_paths
from kvsl.lang.diagnostics import KvslError

REPO = Path(__file__).resolve().parents[2]
ARC = REPO / "tests" / "eval" / "fixtures" / "arc.jsonl"


# --- the environment -----------------------------------------------------------------------


def test_no_launcher_is_one_process():
    assert dist_env({}) == DistEnv(0, 1, 0)
    assert not dist_env({"WORLD_SIZE": "1", "RANK": "0"}).active


def test_launcher_variables_are_read():
    env = dist_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (env.rank, env.world_size, env.local_rank, env.is_main) == (3, 4, 1, False)
    assert str(env) == "rank 3 of 4"


@pytest.mark.parametrize(
    "environ",
    [
        {"RANK": "1"},
        {"RANK": "2", "WORLD_SIZE": "2"},
        {"RANK": "x", "WORLD_SIZE": "2"},
    ],
)
def test_inconsistent_launcher_variables_are_kvs315(environ):
    with pytest.raises(KvslError) as err:
        dist_env(environ)
    assert err.value.diagnostics[0].code == "KVS315"


def test_one_process_needs_no_process_group(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert shard([1, 2, 3]) == [1, 2, 3]
    t = torch.ones(2)
    assert all_reduce_sum(t) is t and all_gather(5) == [5]
    assert not torch.distributed.is_initialized()


def test_a_joined_group_is_left_at_exit(monkeypatch):
    """Joining registers `leave_group` with atexit, and it destroys the group: gloo left to
    the interpreter's teardown can abort a rank whose work is done (SIGABRT)."""
    import kvsl.engine.distributed as distributed

    dist = torch.distributed
    registered = []
    monkeypatch.setattr(distributed.atexit, "register", registered.append)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")
    # A group of one over an in-memory store stands in for the launcher's rendezvous.
    real = dist.init_process_group
    monkeypatch.setattr(
        dist,
        "init_process_group",
        lambda backend: real(backend, store=dist.HashStore(), rank=0, world_size=1),
    )
    distributed.init_distributed()
    assert dist.is_initialized() and registered == [distributed.leave_group]
    distributed.leave_group()
    assert not dist.is_initialized()
    distributed.leave_group()  # twice (an explicit leave, then atexit): no error


def test_the_deal_goes_on_across_lists(monkeypatch):
    """Rank 1 of 2: its share of each list, the round-robin continuing from `offset`, so
    lists of one item each (one batch per method) alternate between the ranks."""
    import kvsl.engine.distributed as distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(distributed, "_group_ready", lambda: True)
    assert shard(["a", "b", "c"]) == ["b"]
    assert shard(["a", "b", "c"], offset=3) == ["a", "c"]
    deal = [shard([method], offset=turn) for turn, method in enumerate(["m0", "m1", "m2"])]
    assert deal == [[], ["m1"], []]


def test_results_cache_shards_are_read_and_merged(tmp_path):
    path = tmp_path / "results.jsonl"
    for rank in (0, 1):
        ResultsCache(path, rank=rank).add(
            [{"key": f"k{rank}", "response": f"r{rank}", "tokens": rank}]
        )
    assert not path.exists() and len(shard_paths(path)) == 2
    # An interrupted run's shards count as cached (resume).
    assert set(ResultsCache(path).records) == {"k0", "k1"}
    assert ResultsCache(path, rank=0).merge_shards() == 2
    assert shard_paths(path) == [] and set(ResultsCache(path).records) == {"k0", "k1"}


# --- two processes under torchrun ----------------------------------------------------------

HAS_LAUNCHER = torch.distributed.is_available() and importlib.util.find_spec(
    "torch.distributed.run"
)
torchrun = pytest.mark.skipif(not HAS_LAUNCHER, reason="torch.distributed / torchrun missing")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _kvsl(args: list[str], nproc: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    launcher = (
        [*run, f"--nproc-per-node={nproc}", "-m", "kvsl"]
        if nproc > 1
        else [sys.executable, "-m", "kvsl"]
    )
    result = subprocess.run(
        [*launcher, *args, "--threads", "1"],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    model, tokenizer = tiny.make_tiny_model("llama", num_layers=3)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.distributed
@torchrun
def test_two_process_build_equals_one_process(tmp_path, model_dir):
    from kvsl.engine.artifact import load_artifact

    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in tiny.TINY_TRACES), encoding="utf-8"
    )
    spec = tmp_path / "tiny.kvs"
    spec.write_text(tiny.tiny_spec(model_dir, pairs=5), encoding="utf-8")
    one = _kvsl(["build", str(spec), "--out", "one", "-q", "--device", "cpu"], 1, tmp_path)
    two = _kvsl(["build", str(spec), "--out", "two", "-q", "--device", "cpu"], 2, tmp_path)
    assert "rank 0 of 2" in two.stderr and "rank 1" not in two.stderr  # rank 0 alone prints
    assert two.stdout.strip().count("\n") == 0  # one artifact path, printed once
    a = load_artifact(tmp_path / one.stdout.strip())
    b = load_artifact(tmp_path / two.stdout.strip())
    assert a.manifest["pairs"] == b.manifest["pairs"] == 5
    for layer in a.keys:
        assert torch.allclose(a.keys[layer], b.keys[layer], atol=1e-5, rtol=0)
        assert torch.allclose(a.values[layer], b.values[layer], atol=1e-5, rtol=0)
    assert max(float((a.values[i] - b.values[i]).abs().max()) for i in a.values) <= 1e-5


def _records(folder: Path) -> dict[str, tuple[str, int, object]]:
    out = {}
    for line in (folder / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[r["key"]] = (r["response"], r["tokens"], r.get("forced_model"))
    return out


@pytest.mark.distributed
@torchrun
def test_two_process_eval_equals_one_process(tmp_path, model_dir):
    args = ["eval", "--model", str(model_dir), "--benchmark", "arc", "--data", str(ARC)]
    args += ["--methods", "plain,cot", "--max-new-tokens", "6", "--batch-size", "2"]
    args += ["--device", "cpu", "--format", "json"]
    one = _kvsl([*args, "--out", "one"], 1, tmp_path)
    two = _kvsl([*args, "--out", "two"], 2, tmp_path)
    first, second = json.loads(one.stdout), json.loads(two.stdout)  # rank 0 alone prints
    assert second["generated_now"] == first["generated_now"] > 0
    assert _records(tmp_path / "two") == _records(tmp_path / "one")  # greedy: same tokens
    assert [m["accuracy"] for m in second["methods"]] == [m["accuracy"] for m in first["methods"]]
    assert shard_paths(tmp_path / "two" / "results.jsonl") == []  # merged by rank 0
    reports = list((tmp_path / "two").glob("eval-*.json"))
    assert len(reports) == 1
    # The same command again resumes: nothing is generated by either rank.
    again = json.loads(_kvsl([*args, "--out", "two"], 2, tmp_path).stdout)
    assert again["generated_now"] == 0


# --- CAA's directions: a sum and a count -----------------------------------------------------


def test_caa_rank_without_pairs_adds_zeros_and_the_mean_is_exact(monkeypatch):
    """Two ranks simulated in one process: rank 0 holds every pair, rank 1 none (more
    ranks than pairs). Rank 1's zero sums plus rank 0's sums over their count are the
    one-process directions."""
    import kvsl.engine.distributed as distributed
    from kvsl.eval.caa import extract_caa

    model, tokenizer = tiny.make_tiny_model("llama", num_layers=3)
    ids = [tokenizer(t)["input_ids"] for t in ("a b c", "a b", "x y z w", "x y", "p", "q r")]
    pairs = [(ids[0], ids[1]), (ids[2], ids[3]), (ids[4], ids[5])]
    whole = extract_caa(model, pairs)
    # Rank 0's contributions to the two reductions: its sums (layers, hidden) and its count.
    rank0 = [torch.stack([whole.directions[i] * 3 for i in range(3)]), torch.tensor([3.0])]
    seen: list[torch.Tensor] = []

    def reduce_with_rank0(tensor: torch.Tensor) -> torch.Tensor:
        seen.append(tensor.clone())
        return tensor + rank0[len(seen) - 1].to(tensor.dtype)

    monkeypatch.setattr(distributed, "shard", lambda items: [])  # rank 1: no pairs
    monkeypatch.setattr(distributed, "all_reduce_sum", reduce_with_rank0)
    rank1 = extract_caa(model, pairs)
    assert seen[0].shape == (3, 64) and not seen[0].any() and float(seen[1][0]) == 0
    assert rank1.pairs == 3
    for layer in range(3):
        torch.testing.assert_close(rank1.directions[layer], whole.directions[layer])


# --- commands that run as one process --------------------------------------------------------


def test_refuse_launcher_only_under_several_processes():
    from kvsl.engine.distributed import refuse_launcher

    refuse_launcher("run", {})
    refuse_launcher("run", {"WORLD_SIZE": "1", "RANK": "0"})
    with pytest.raises(KvslError) as err:
        refuse_launcher("run", {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    assert err.value.diagnostics[0].code == "KVS317" and err.value.exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["run", "specs/missing.kvs", "-p", "Why?"],
        ["serve", "--port", "0"],
        ["teach", "specs/missing.kvs"],
    ],
)
def test_one_process_commands_refuse_a_launcher_before_anything_loads(args, tmp_path):
    """What torchrun sets for rank 1 of 2: the command stops with KVS317 (exit 2) before it
    reads the spec, loads a model or binds a port (the spec does not even exist)."""
    launched = {**_env(), "WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}
    launched.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"})
    result = subprocess.run(
        [sys.executable, "-m", "kvsl", *args],
        cwd=tmp_path,
        env=launched,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "KVS317" in result.stderr and f"`kvsl {args[0]}` runs as one process" in result.stderr
    assert "Traceback" not in result.stderr


# --- tune and CAA under torchrun -------------------------------------------------------------


def _answers(path: Path) -> dict[str, dict[str, object]]:
    """The per-example cache by key, without the wall time of each answer, and with the
    forced choice's label scores rounded: they are logits of batches padded differently
    in one process and in two, equal to float precision (the pick itself stays exact)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record.pop("seconds")
        scores = record.pop("forced_scores", None)
        record["forced_scores"] = (
            {k: round(v, 3) for k, v in scores.items()} if scores is not None else None
        )
        out[record["key"]] = record
    return out


@pytest.mark.distributed
@torchrun
def test_two_process_tune_equals_one_process(tmp_path, model_dir):
    """Each folder builds its own vectors (so the two-process build is sharded too) and
    `--write`s its own copy of the spec."""
    args = ["tune", "tiny.kvs", "--dev", str(DEV), "--values", "0,4"]
    args += ["--repetition-penalties", "1,1.3", "--max-new-tokens", "4", "--batch-size", "2"]
    # `--start-questions`, not `--start`: torchrun's parser takes `--start` for an ambiguous
    # prefix of its own `--start-method` and stops.
    args += ["--start-questions", "2", "--device", "cpu", "--write", "--json", "--out", "out"]
    one_dir, two_dir = (write_spec(tmp_path / name, model_dir).parent for name in ("one", "two"))
    one = json.loads(_kvsl(args, 1, one_dir).stdout)
    two_run = _kvsl(args, 2, two_dir)
    two = json.loads(two_run.stdout)  # one JSON document: rank 0 alone prints
    assert "rank 0 of 2" in two_run.stderr and "rank 1" not in two_run.stderr
    assert two["rungs"] == one["rungs"] == [[2, 4], [4, 2], [8, 1]]
    assert two["trials"] == one["trials"]  # the same scores, rung by rung: the same halving
    assert two["chosen"] == one["chosen"] is not None
    assert two["generated_now"] == one["generated_now"] > 0
    assert _answers(two_dir / "out" / "results.jsonl") == _answers(
        one_dir / "out" / "results.jsonl"
    )
    assert shard_paths(two_dir / "out" / "results.jsonl") == []  # merged by rank 0
    # Rank 0 alone wrote the reports, the plot and the spec: one of each, as in one process.
    assert sorted(p.name for p in (two_dir / "out").iterdir()) == sorted(
        p.name for p in (one_dir / "out").iterdir()
    )
    assert two["written"] == one["written"] and two["written"]
    spec_one = (one_dir / "tiny.kvs").read_text(encoding="utf-8")
    assert (two_dir / "tiny.kvs").read_text(encoding="utf-8") == spec_one
    assert spec_one.count("# kvsl tune:") == 1
    # Resumed under torchrun: nothing generated again, the same choice.
    again = json.loads(_kvsl(args, 2, two_dir).stdout)
    assert again["generated_now"] == 0 and again["chosen"] == one["chosen"]


@pytest.mark.distributed
@torchrun
def test_two_process_caa_eval_equals_one_process(tmp_path, model_dir):
    """CAA's contrast pairs (5: three on rank 0, two on rank 1) and its dev grid and test
    questions are split; the directions and every answer equal one process's."""
    from safetensors.torch import load_file

    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in tiny.TINY_TRACES), encoding="utf-8"
    )
    (tmp_path / "tiny.kvs").write_text(tiny.tiny_spec(model_dir, pairs=5), encoding="utf-8")
    args = ["eval", "tiny.kvs", "--benchmark", "arc", "--data", str(ARC), "--dev", str(ARC)]
    args += ["--methods", "plain,caa", "--caa-layers", "1,2", "--caa-multipliers", "1,4"]
    args += ["--max-new-tokens", "6", "--batch-size", "2", "--device", "cpu", "--format", "json"]
    one = json.loads(_kvsl([*args, "--out", "one"], 1, tmp_path).stdout)
    two = json.loads(_kvsl([*args, "--out", "two"], 2, tmp_path).stdout)
    (a_path,) = (tmp_path / "one" / "caa").iterdir()
    (b_path,) = (tmp_path / "two" / "caa").iterdir()
    assert a_path.name == b_path.name
    a, b = load_file(str(a_path)), load_file(str(b_path))
    assert a.keys() == b.keys() and len(a) == 3
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-5
    assert two["caa"] == one["caa"]  # the same dev grid scores, layer and multiplier
    assert _answers(tmp_path / "two" / "results.jsonl") == _answers(
        tmp_path / "one" / "results.jsonl"
    )
    assert [m["accuracy"] for m in two["methods"]] == [m["accuracy"] for m in one["methods"]]
    assert len(list((tmp_path / "two").glob("eval-*.json"))) == 1
