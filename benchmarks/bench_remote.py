#!/usr/bin/env python3
"""Restoring from a remote cache into a fresh clone (issue #6); prints a table.

    python benchmarks/bench_remote.py                 # layered N=1000, file:// and loopback S3
    python benchmarks/bench_remote.py --n 200         # smaller

Project A builds the layered workload of bench.py and pushes it. For each remote
(`file://` folder; a moto S3 server on 127.0.0.1 through s3fs), two fresh clones (the
sources and pipetool.lock only) are timed:
  pull             `pipetool pull`: every out put back from the remote
  run (restore)    `pipetool run`: every target judged, then restored from the remote
against the baseline, an `aws s3 sync`-style copy of the same objects with fsspec
(`fs.get(objects/, dir, recursive=True)` in a fresh interpreter, so both pay start-up).
MB/s counts the bytes of the outs restored. Target: pipetool within 1.5x the baseline.
Exits 0; the PASS/MISS column is informational.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import Pipetool, make_layered  # noqa: E402


def pipetool_cmd() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "pipetool")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "pipetool"]


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def clone(a: Path, dst: Path, sources: list[str]) -> Path:
    dst.mkdir(parents=True)
    for rel in ["pipeline.yaml", "pipetool.lock", *sources]:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(a / rel, dst / rel)
    return dst


BASELINE = """
import sys
from fsspec.core import url_to_fs
fs, path = url_to_fs(sys.argv[1])
fs.get(path.rstrip("/") + "/objects/", sys.argv[2], recursive=True)
"""


def start_moto() -> tuple[object, dict[str, str]]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="bench",
                 aws_secret_access_key="bench", region_name="us-east-1").create_bucket(Bucket="bench")
    return server, env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="layered targets (default 1000)")
    ap.add_argument("--remotes", default="file,s3", help="file, s3 or both (default)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    pt = pipetool_cmd()
    base = Path(tempfile.mkdtemp(prefix="pipetool-bench-remote-"))
    env = dict(os.environ)
    rows = []
    server = None
    try:
        wl = make_layered(args.n)
        a = base / "a"
        a.mkdir()
        wl.make_inputs(a)
        Pipetool(pt).write_config(a, wl)
        sources = sorted(str(p.relative_to(a)) for p in (a / "in").rglob("*") if p.is_file())
        print(f"building layered N={args.n} in A ...", file=sys.stderr, flush=True)
        timed([*pt, "run", "-j", "2"], a, env)
        out_bytes = sum((a / o).stat().st_size for t in wl.targets for o in t.outs)
        for kind in args.remotes.split(","):
            if kind == "file":
                url, renv = f"file://{base / 'remote'}", env
            else:
                server, extra = start_moto()
                url, renv = "s3://bench/cache", {**env, **extra}
            push_s = timed([*pt, "push", "--remote", url], a, renv)
            rows.append((kind, "push (from A)", push_s, out_bytes))
            pull_s = timed([*pt, "pull", "--remote", url], clone(a, base / f"{kind}-pull", sources), renv)
            rows.append((kind, "pull", pull_s, out_bytes))
            run_s = timed([*pt, "run", "-j", "2", "--remote", url], clone(a, base / f"{kind}-run", sources), renv)
            rows.append((kind, "run (restore)", run_s, out_bytes))
            dst = base / f"{kind}-baseline"
            base_s = timed([sys.executable, "-c", BASELINE, url, str(dst)], base, renv)
            copied = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
            rows.append((kind, "baseline fsspec copy", base_s, copied))
            for what, s in (("pull", pull_s), ("run (restore)", run_s)):
                ratio = s / base_s
                rows.append((kind, f"  {what} / baseline", ratio, None))
            if server is not None:
                server.stop()  # type: ignore[attr-defined]
                server = None
    finally:
        if server is not None:
            server.stop()  # type: ignore[attr-defined]
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}", file=sys.stderr)

    print(f"\nRestore from a remote into a fresh clone: layered N={args.n}, "
          f"outs {out_bytes / 1e6:.0f} MB, {os.cpu_count()} cores")
    print(f"{'remote':<6} {'measurement':<28} {'seconds':>9} {'MB/s':>8}  target")
    for kind, what, value, nbytes in rows:
        if nbytes is None:
            verdict = "PASS" if value <= 1.5 else "MISS"
            print(f"{kind:<6} {what:<28} {value:>8.2f}x {'':>8}  <= 1.5x  {verdict}")
        else:
            print(f"{kind:<6} {what:<28} {value:>9.2f} {nbytes / 1e6 / value:>8.0f}")


if __name__ == "__main__":
    main()
