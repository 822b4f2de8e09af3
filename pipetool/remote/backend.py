"""Opening a remote: which URL (flag, then environment, then `remote:`), its fsspec
filesystem, and the remote's layout. A missing backend is exit 2 naming the extra.

Layout under the URL (the same shape as the local cache, so either can seed the other):
  objects/ab/cdef…       file contents and folder listings, named by their xxh3-128
  runcache/FP.json       a run-cache entry: what the build with fingerprint FP produced
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import EXIT_FAILED, PipetoolError, UsageError

REMOTE_ENV = "PIPETOOL_REMOTE"
# URL scheme -> the pipetool extra that installs its fsspec backend.
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
          "abfss": "azure", "adl": "azure"}


class RemoteError(PipetoolError):
    """The remote could not be read or written (exit 1: nothing about the input was wrong)."""

    exit_code = EXIT_FAILED


@dataclass
class Remote:
    url: str  # as the user gave it (for messages)
    fs: Any  # an fsspec filesystem
    base: str  # the URL's path on that filesystem, no trailing slash

    @property
    def is_local(self) -> bool:
        """A local filesystem writes a file in place: a killed copy would leave a partial
        file under its final name, so uploads there go through a temporary name."""
        proto = self.fs.protocol
        return bool({"file", "local"} & set(proto if isinstance(proto, (tuple, list)) else (proto,)))

    def object_path(self, digest: str) -> str:
        return f"{self.base}/objects/{digest[:2]}/{digest[2:]}"

    def entry_path(self, fingerprint: str) -> str:
        return f"{self.base}/runcache/{fingerprint}.json"

    @property
    def objects_dir(self) -> str:
        return f"{self.base}/objects"


def remote_url(configured: str | None, root: str, flag: str | None = None) -> str | None:
    """The remote in effect: `--remote`, else $PIPETOOL_REMOTE, else the pipeline's
    `remote:`. A plain path is a local folder: relative to the current directory for the
    flag and the variable, to the project root for the pipeline file."""
    for value, base in ((flag, os.getcwd()), (os.environ.get(REMOTE_ENV), os.getcwd()), (configured, root)):
        if value:
            if "://" in value or value.startswith("/"):
                return value
            return os.path.normpath(os.path.join(base, value))
    return None


def open_remote(url: str) -> Remote:
    """The filesystem behind `url`; credentials come from the backend's own configuration
    (AWS environment or profile for s3, and so on), never from the pipeline file."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    extra = EXTRAS.get(scheme, "remote")
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise UsageError(f"remote {url}: fsspec is not installed; "
                         f'pip install "pipetool[{extra}]"') from None
    try:
        fs, path = url_to_fs(url)
    except ImportError as exc:
        raise UsageError(f"remote {url}: the {scheme}:// backend is not installed ({exc}); "
                         f'pip install "pipetool[{extra}]"') from None
    except ValueError as exc:
        raise UsageError(f"remote {url}: {exc}") from None
    return Remote(url, fs, str(path).rstrip("/"))
