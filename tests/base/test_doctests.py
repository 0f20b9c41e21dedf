"""The examples in the floor's docstrings run (atomic, jsonl, hashing, locations, answers)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["atomic", "jsonl", "hashing", "locations", "answers"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(f"kvsl.base.{name}"))
    assert result.attempted > 0 and result.failed == 0
