"""kvsl: a declarative language and compiler-style CLI for KV-cache steering."""

__version__ = "0.1.0"
