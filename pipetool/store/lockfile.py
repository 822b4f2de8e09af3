"""`pipetool.lock`: the committed, deterministic record of what the workspace was built from.

Sorted JSON (stable diffs, fast to read), written atomically (temp file + fsync + rename)
from the store's records when a run ends, also after a failure or an interrupt.
"""
from __future__ import annotations

import json
import os
from typing import Any

from ..errors import StateError
from ..plan import Record

LOCK_NAME = "pipetool.lock"
LOCK_VERSION = 1


def lock_path(root: str) -> str:
    return os.path.join(root, LOCK_NAME)


def read_lock(root: str) -> dict[str, Any]:
    """Target entries of the lock file; {} when there is none."""
    path = lock_path(root)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{LOCK_NAME} is not valid JSON ({exc}); restore it from version control or delete it") from None
    if not isinstance(data, dict) or data.get("version") != LOCK_VERSION or not isinstance(data.get("targets"), dict):
        raise StateError(f"{LOCK_NAME} is not a version {LOCK_VERSION} pipetool lock file")
    return data["targets"]


def render_lock(records: dict[str, Record]) -> str:
    entries = {}
    for name in sorted(records):
        r = records[name]
        entry: dict[str, Any] = {"fingerprint": r.fingerprint}
        trace = r.trace_dict()
        if trace:
            for key in ("code", "code_files", "params", "deps", "env"):
                value = trace.get(key)
                if value:
                    entry[key] = value
        entry["outs"] = r.outs
        entries[name] = entry
    return json.dumps({"version": LOCK_VERSION, "targets": entries}, indent=2, sort_keys=True) + "\n"


def lock_outdated(root: str, pipeline_file: str, latest_build: float) -> bool:
    """Cheap test: could the lock miss a record or a pipeline edit (dropped targets)?"""
    try:
        lock_mtime = os.stat(lock_path(root)).st_mtime
    except FileNotFoundError:
        return True
    return lock_mtime <= max(latest_build, os.stat(pipeline_file).st_mtime)


def write_lock(root: str, records: dict[str, Record]) -> bool:
    """Write the lock when its content changed; True when written."""
    text = render_lock(records)
    path = lock_path(root)
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return True
