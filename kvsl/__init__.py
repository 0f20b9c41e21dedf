"""kvsl: a declarative language and compiler-style CLI for KV-cache steering.

The Python API (`generate`, `steered`, `steering_inputs`, `load_artifact`,
`SteeringVectors`) is importable from here; it is loaded on first use, so `import kvsl`
does not import torch.
"""

from typing import Any

__version__ = "0.1.0"

_STEERING_API = ("SteeringVectors", "generate", "load_artifact", "steered", "steering_inputs")


def __getattr__(name: str) -> Any:
    if name in _STEERING_API:
        from kvsl import steering

        return getattr(steering, name)
    raise AttributeError(f"module 'kvsl' has no attribute {name!r}")
