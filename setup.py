"""Packaging: the built-in styles ship inside the wheel as `kvsl/_builtin/{specs,templates}`.

Everything else is declared in pyproject.toml. In the repository the built-in specs and
their templates stay at the top level (`specs/`, `templates/`), where users of a checkout
edit them; `package_dir` maps them into the package for a wheel, keeping their relative
layout (a spec names `../templates/x.j2` and `traces/x.jsonl` relative to itself). An
editable install uses the checkout's own folders instead (see `kvsl.builtin`).
"""

from setuptools import find_packages, setup

# Data-only packages (no __init__.py) and the files each one ships.
BUILTIN_DATA = {
    "kvsl._builtin.specs": ["*.kvs"],
    "kvsl._builtin.specs.traces": ["*.jsonl"],  # found under specs/ through the mapping below
    "kvsl._builtin.specs.questions": ["*.jsonl", "*.md"],  # the query pools
    "kvsl._builtin.specs.vectors": ["*.safetensors", "index.json", "evidence.json"],  # prebuilt vectors, their held-out figures
    "kvsl._builtin.templates": ["*.j2"],
}

setup(
    packages=[*find_packages(include=["kvsl", "kvsl.*"]), *BUILTIN_DATA],
    package_dir={"kvsl._builtin.specs": "specs", "kvsl._builtin.templates": "templates"},
    package_data={
        "kvsl": ["**/*.lark", "**/*.j2", "**/*.jsonl", "**/*.kvs", "**/*.md"],
        **BUILTIN_DATA,
    },
)
