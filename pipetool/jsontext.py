"""Strict JSON text for everything pipetool writes (the store, manifests, the lock, remote
entries, `--json`): a NaN or an infinity is an error here, never `NaN` in a file that a
strict parser (jq, JavaScript, Go) then refuses. Params cannot hold them (the loader
refuses them) and metrics keep them as strings, so this only ever catches a bug."""
from __future__ import annotations

import json
from typing import Any


def dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(value, allow_nan=False, **kwargs)
