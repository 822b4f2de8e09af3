"""pipetool: a content-hash Make for ML and data pipelines.

The Python API is what the CLI calls: `load()`, `status()`, `run()`, `dag()`, and for
experiments `runs()`, `show()`, `branch()`, `checkout()`, `diff()`, `gc()`, for sweeps `sweep()`,
`sweep_show()`, and for the remote cache `push()`, `pull()`.
Attributes load on first use, so `import pipetool.cli` stays cheap.
"""
from __future__ import annotations

__version__ = "0.1.0"

_WHERE = {
    "load": "api", "status": "api", "run": "api", "dag": "api", "StatusReport": "api",
    "runs": "experiments", "show": "experiments", "branch": "experiments",
    "checkout": "experiments", "diff": "experiments", "gc": "experiments",
    "push": "remote.pushpull", "pull": "remote.pushpull",
    "check": "lint", "recover": "recovery", "RunResult": "runflow", "PipetoolError": "errors",
    "sweep": "sweeps.api", "sweep_show": "sweeps.api", "SweepResult": "sweeps.runner",
}
__all__ = [  # noqa: RUF022 - the order of _WHERE: API, experiments, remote, the rest
    "__version__", "load", "status", "run", "dag", "StatusReport", "runs", "show", "branch", "checkout", "diff",
    "gc", "push", "pull", "check", "recover", "RunResult", "PipetoolError", "sweep", "sweep_show", "SweepResult",
]


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pipetool' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
