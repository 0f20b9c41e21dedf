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
