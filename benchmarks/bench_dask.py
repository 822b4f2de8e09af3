#!/usr/bin/env python3
"""Benchmark the Dask executor against the local one; prints a table.

    python benchmarks/bench_dask.py              # -j 2: 200 `true` targets, 64 x `sleep 0.5`
    python benchmarks/bench_dask.py --jobs 16    # on a 16-core machine (ideal sleep makespan 2 s)
    python benchmarks/bench_dask.py --quick      # 100 targets, 16 sleeps, 1 repeat

Rows, each the wall time of a real `pipetool run --force -j J` subprocess (median of
--repeat), for three executors: `local`; `dask` on a LocalCluster started by this script
(J one-thread worker processes, passed as --scheduler: the per-target cost); `dask, own
cluster` (no --scheduler: pipetool starts and stops its own LocalCluster, as a user would):
  one `true` target           the fixed cost of a run (start-up, imports, cluster)
  N `true` targets            makespan; /N; and (makespan - one target) / (N - 1), the
                              marginal cost of a target (the 20 ms target is for dask)
  M x `sleep 0.5`             makespan of M independent sleeps; ideal = M x 0.5 / J
Exits 0; the PASS/MISS lines are informational.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_MS = 20.0  # per-target overhead on Dask


def pipetool_cmd() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "pipetool")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "pipetool"]


def project(root: str, n: int, cmd: str) -> str:
    os.makedirs(root)
    with open(os.path.join(root, "pipeline.yaml"), "w") as f:
        f.write("targets:\n" + "".join(f"  t{i:04d}: {{cmd: '{cmd}'}}\n" for i in range(n)))
    return root


def timed_run(root: str, args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(pipetool_cmd() + ["run", "--force", *args], cwd=root, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"pipetool run {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--n", type=int, default=200, help="`true` targets")
    ap.add_argument("--sleeps", type=int, default=64, help="`sleep 0.5` targets")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    if a.quick:
        a.n, a.sleeps, a.repeat = 100, 16, 1

    import distributed

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPETOOL_")}
    work = tempfile.mkdtemp(prefix="bench-dask-", dir=a.workdir)
    cluster = distributed.LocalCluster(n_workers=a.jobs, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR,
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    executors = {
        "local": ["-j", str(a.jobs)],
        "dask": ["-j", str(a.jobs), "--executor", "dask", "--scheduler", cluster.scheduler_address],
        "dask, own cluster": ["-j", str(a.jobs), "--executor", "dask"],
    }
    one = project(os.path.join(work, "one"), 1, "true")
    many = project(os.path.join(work, "many"), a.n, "true")
    sleeps = project(os.path.join(work, "sleeps"), a.sleeps, "sleep 0.5")
    rows: dict[str, dict[str, float]] = {}
    try:
        for name, args in executors.items():
            print(f"{name} ...", file=sys.stderr, flush=True)
            timed_run(one, args, env)  # warm: the page cache, the workers' imports
            r = rows[name] = {}
            r["one"] = statistics.median(timed_run(one, args, env) for _ in range(a.repeat))
            r["many"] = statistics.median(timed_run(many, args, env) for _ in range(a.repeat))
            r["sleeps"] = timed_run(sleeps, args, env)
    finally:
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)

    ideal = a.sleeps * 0.5 / a.jobs
    cols = list(rows)
    print(f"\npipetool on Dask vs local, -j {a.jobs}, {os.cpu_count()} cores, median of {a.repeat}\n")
    print(f"{'measurement':<34}" + "".join(f"{c:>19}" for c in cols))
    lines = [
        ("one `true` target (s)", lambda r: f"{r['one']:.2f}"),
        (f"{a.n} `true` targets (s)", lambda r: f"{r['many']:.2f}"),
        ("  makespan / N (ms)", lambda r: f"{r['many'] / a.n * 1000:.1f}"),
        ("  marginal per target (ms)", lambda r: f"{(r['many'] - r['one']) / (a.n - 1) * 1000:.1f}"),
        (f"{a.sleeps} x sleep 0.5 (s)", lambda r: f"{r['sleeps']:.2f}"),
        (f"  / ideal {ideal:g} s", lambda r: f"{r['sleeps'] / ideal:.2f}"),
    ]
    for label, cell in lines:
        print(f"{label:<34}" + "".join(f"{cell(rows[c]):>19}" for c in cols))
    per = (rows["dask"]["many"] - rows["dask"]["one"]) / (a.n - 1) * 1000
    print(f"\n{'PASS' if per < TARGET_MS else 'MISS'}: dask marginal per-target overhead "
          f"{per:.1f} ms (target < {TARGET_MS:g} ms)")


if __name__ == "__main__":
    main()
