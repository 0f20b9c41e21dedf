"""Hypothesis settings of kvsl's fuzz properties: small in the default suite, long on demand.

`fuzz(N)` runs N examples per property, or `KVSL_FUZZ_EXAMPLES` of them when that is set
(`KVSL_FUZZ_EXAMPLES=20000 pytest tests/lang/test_lang_grammar_fuzz.py` for a long run).
No example database: a long run's failures are reported and shrunk, not replayed later.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def fuzz_examples(default: int) -> int:
    """`default`, or the number in `KVSL_FUZZ_EXAMPLES`."""
    override = os.environ.get("KVSL_FUZZ_EXAMPLES", "").strip()
    if not override:
        return default
    # Said plainly at collection, rather than int()'s or Hypothesis' own error per module.
    if not override.isdigit() or int(override) < 1:
        raise ValueError(f"KVSL_FUZZ_EXAMPLES={override!r}: give a whole number ≥ 1, e.g. 3000")
    return int(override)


def fuzz(default: int) -> settings:
    """Settings for a property: `default` examples (or the override), no deadline."""
    return settings(
        max_examples=fuzz_examples(default),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
        database=None,
    )
