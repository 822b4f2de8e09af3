"""`pipetool.lock`: the committed, deterministic record of what the workspace was built from.

Sorted JSON (stable diffs, fast to read), written atomically (temp file + fsync + rename)
from the store's records when a run ends, also after a failure or an interrupt.
"""
from __future__ import annotations

import json
import os
from typing import Any

from ..digests import hash_bytes
from ..errors import StateError
from ..jsontext import dumps
from .failures import raise_write_error, remove_quietly
from .records import TRACE_KEYS, Record

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
        raise StateError(
            f"{LOCK_NAME} is not valid JSON ({exc}); restore it from version control or delete it") from None
    if not isinstance(data, dict) or data.get("version") != LOCK_VERSION or not isinstance(data.get("targets"), dict):
        raise StateError(f"{LOCK_NAME} is not a version {LOCK_VERSION} pipetool lock file")
    for name, entry in data["targets"].items():
        problem = _entry_problem(entry)
        if problem:
            raise StateError(f"{LOCK_NAME}: entry of target '{name}' {problem}; "
                             "restore the file from version control or delete it")
    return data["targets"]


def _is_digest_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) or v is None for v in value.values())


def _entry_problem(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "is not a mapping"
    if not isinstance(entry.get("fingerprint"), str):
        return "has no fingerprint string"
    if not _is_digest_map(entry.get("outs", {})):
        return "has 'outs' that is not a mapping of paths to hashes"
    for key in ("deps", "env", "code_files"):
        if key in entry and not _is_digest_map(entry[key]):
            return f"has '{key}' that is not a mapping of names to hashes"
    if "params" in entry and not isinstance(entry["params"], dict):
        return "has 'params' that is not a mapping"
    if "code" in entry and not isinstance(entry["code"], str):
        return "has 'code' that is not a string"
    if "execs" in entry and not (isinstance(entry["execs"], list) and all(isinstance(x, str) for x in entry["execs"])):
        return "has 'execs' that is not a list of paths"
    return ""


def render_lock(records: dict[str, Record]) -> str:
    entries = {}
    for name in sorted(records):
        r = records[name]
        entry: dict[str, Any] = {"fingerprint": r.fingerprint}
        trace = r.trace_dict()
        if trace:
            for key in TRACE_KEYS:
                value = trace.get(key)
                if value or (key == "item" and key in trace):  # a partition's item may be 0 or null
                    entry[key] = value
        entry["outs"] = r.outs
        entries[name] = entry
    return dumps({"version": LOCK_VERSION, "targets": entries}, indent=2, sort_keys=True) + "\n"


def file_digest(root: str) -> str | None:
    """Content hash of the lock file as it is on disk (None when absent)."""
    try:
        with open(lock_path(root), "rb") as f:
            return hash_bytes(f.read())
    except FileNotFoundError:
        return None


def write_lock(root: str, records: dict[str, Record]) -> bool:
    """Write the lock when its content changed; True when written."""
    text = render_lock(records)
    path = lock_path(root)
    if file_digest(root) == hash_bytes(text.encode("utf-8")):
        return False
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        raise_write_error(exc, path, f"{LOCK_NAME} (it still holds what it held before)")
    return True
