"""pipetool: a content-hash Make for ML and data pipelines.

The Python API is what the CLI calls: `load()`, `status()`, `run()`, `dag()`.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .api import RunResult, StatusReport, dag, load, run, status  # noqa: E402
from .errors import PipetoolError  # noqa: E402

__all__ = ["__version__", "load", "status", "run", "dag", "RunResult", "StatusReport", "PipetoolError"]
