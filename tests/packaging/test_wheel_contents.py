"""The wheel ships the built-in styles (specs, traces, templates) as `kvsl/_builtin/`.

Builds a real wheel from a copy of the source (about 5 s, no network: the installed
setuptools is the backend), then imports kvsl from the unpacked wheel, outside the
checkout, and checks that the built-in names resolve into it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "kvsl", "specs", "templates")


def _shipped_files() -> dict[str, Path]:
    """Wheel name → source file, for every file of the built-in styles."""
    files = {
        **{f"kvsl/_builtin/specs/{p.name}": p for p in (ROOT / "specs").glob("*.kvs")},
        **{
            f"kvsl/_builtin/specs/traces/{p.name}": p
            for p in (ROOT / "specs" / "traces").glob("*.jsonl")
        },
        **{f"kvsl/_builtin/templates/{p.name}": p for p in (ROOT / "templates").glob("*.j2")},
        **{
            f"kvsl/_builtin/specs/vectors/{p.name}": p
            for p in (ROOT / "specs" / "vectors").glob("*")
            if p.suffix in (".safetensors", ".json")
        },
        **{
            f"kvsl/_builtin/specs/questions/{p.name}": p
            for p in (ROOT / "specs" / "questions").glob("*")
            if p.suffix in (".jsonl", ".md")
        },
    }
    assert len(files) > 10
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("the build backend needs setuptools>=77")
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".kvsl", "*.egg-info")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    out = work / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("kvsl-*.whl")
    return built


def test_wheel_ships_specs_traces_and_templates_byte_for_byte(wheel) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name, source in _shipped_files().items():
            assert name in names, name
            assert archive.read(name) == source.read_bytes(), name
        assert "kvsl/lang/grammar.lark" in names
        assert "kvsl/builtin.py" in names
        # Nothing from the top of the repository leaks into the wheel as its own package.
        assert not [n for n in names if n.startswith(("specs/", "templates/"))]


def test_installed_wheel_resolves_builtin_names_outside_a_checkout(wheel, tmp_path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    script = (
        "import kvsl, kvsl.builtin as b\n"
        "from kvsl.lang import check_paths, load_plan\n"
        "from kvsl.engine.build import artifact_dir_for\n"
        "print('FILE', kvsl.__file__)\n"
        "print('SPECS', b.builtin_specs_dir())\n"
        "print('CHECK', check_paths([str(b.builtin_specs_dir())]))\n"
        "plan = load_plan(b.resolve_target('step-by-step'))\n"
        "print('TRACES', plan.contrast.traces)\n"
        "print('ARTIFACTS', artifact_dir_for(plan.spec_path))\n"
        "from kvsl.engine.shipped import find_shipped\n"
        "print('SHIPPED', find_shipped(plan))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "KVSL_CACHE_DIR": str(tmp_path / "cache")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=elsewhere,
        env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    packaged = site / "kvsl" / "_builtin"
    assert lines["FILE"] == str(site / "kvsl" / "__init__.py")
    assert lines["SPECS"] == str(packaged / "specs")
    assert lines["CHECK"] == "[]"
    assert lines["TRACES"] == str(packaged / "specs" / "traces" / "step_by_step.jsonl")
    assert lines["ARTIFACTS"] == str(tmp_path / "cache" / "artifacts")
    # The installed built-in spec finds its shipped vectors, verified, inside the wheel.
    assert lines["SHIPPED"] == str(packaged / "specs" / "vectors" / "step-by-step.safetensors")
