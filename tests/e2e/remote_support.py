"""Remotes for the end-to-end tests: a `file://` folder, and a real S3 API server on
loopback (moto's server mode) that s3fs talks to, credentials from the environment as
in any AWS setup. Both give the same small interface, so each flow runs against both."""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash


@dataclass
class RemoteUnderTest:
    kind: str  # "file" | "s3"
    url: str
    env: dict[str, str] = field(default_factory=dict)  # what a pipetool subprocess needs
    fs: Any = None  # an fsspec filesystem for the test's own looks
    base: str = ""

    def files(self, sub: str) -> dict[str, bytes]:
        """Every file under objects/ or runcache/, by path relative to that folder."""
        root = f"{self.base}/{sub}"
        self.fs.invalidate_cache()
        try:
            paths = self.fs.find(root)
        except FileNotFoundError:
            return {}
        out = {}
        for p in paths:
            rel = p[p.find(root.lstrip("/")) + len(root.lstrip("/")):].lstrip("/") if self.kind == "s3" else \
                os.path.relpath(p, root)
            out[rel] = self.fs.cat_file(p)
        return out

    def count(self, sub: str) -> int:
        """How many files are under objects/ or runcache/ (cheap: nothing is read)."""
        self.fs.invalidate_cache()
        try:
            return len(self.fs.find(f"{self.base}/{sub}"))
        except FileNotFoundError:
            return 0

    def objects(self) -> dict[str, bytes]:
        """digest -> bytes of every remote object."""
        return {rel.replace("/", ""): data for rel, data in self.files("objects").items()
                if not rel.endswith(".tmp")}

    def entries(self) -> dict[str, bytes]:
        return {rel[:-len(".json")]: data for rel, data in self.files("runcache").items()
                if rel.endswith(".json")}

    def overwrite(self, digest: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.base}/objects/{digest[:2]}/{digest[2:]}", data)
        self.fs.invalidate_cache()


def file_remote(tmp: Path) -> RemoteUnderTest:
    import fsspec

    folder = tmp / "remote"
    folder.mkdir()
    return RemoteUnderTest("file", f"file://{folder}", {}, fsspec.filesystem("file"), str(folder))


class MotoS3:
    """One moto S3 server on 127.0.0.1 for a test module; a fresh bucket per remote."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_MAX_ATTEMPTS": "2", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def remote(self) -> RemoteUnderTest:
        import s3fs

        bucket = f"cache-{uuid.uuid4().hex[:12]}"
        fs = s3fs.S3FileSystem(key="testing", secret="testing", skip_instance_cache=True,
                               use_listings_cache=False,
                               client_kwargs={"endpoint_url": self.endpoint, "region_name": "us-east-1"})
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=bucket)
        return RemoteUnderTest("s3", f"s3://{bucket}/team/cache", dict(self.env), fs, f"{bucket}/team/cache")

    def stop(self) -> None:
        self.server.stop()


def digest(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)
