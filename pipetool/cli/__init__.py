"""The `pipetool` command: a thin typer skin over the Python API (parse, call, render).

`app.py` holds the typer app and the options commands share; each module registers its
commands on it: `build` (run, branch, status, check, dag), `history` (runs, show, checkout,
diff, gc, recover), `sync` (push, pull).
"""
from __future__ import annotations

import sys

import typer

from ..errors import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, PipetoolError
from . import build, history, sweep, sync  # noqa: F401 - importing them registers their commands
from .app import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one paragraph on stderr and an exit status."""
    from click import exceptions as click_exc

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="pipetool", standalone_mode=False)
    except PipetoolError as exc:
        print(f"pipetool: error: {exc.render()}", file=sys.stderr)
        code = exc.exit_code
    except click_exc.Exit as exc:
        code = exc.exit_code
    except click_exc.ClickException as exc:
        exc.show()
        code = EXIT_INVALID if exc.exit_code == 2 else exc.exit_code
    except (click_exc.Abort, KeyboardInterrupt):
        print("pipetool: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code if isinstance(code, int) else EXIT_OK)
