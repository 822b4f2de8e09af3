"""pipetool: a content-hash Make for ML and data pipelines.

The Python API is what the CLI calls: `load()`, `status()`, `run()`, `dag()`.
Attributes load on first use, so `import pipetool.cli` stays cheap.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load", "status", "run", "dag", "RunResult", "StatusReport", "PipetoolError"]


def __getattr__(name: str):
    if name == "PipetoolError":
        from .errors import PipetoolError

        return PipetoolError
    if name == "RunResult":
        from .runflow import RunResult

        return RunResult
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'pipetool' has no attribute {name!r}")
