#!/usr/bin/env python3
"""Benchmarks for runs, the cache and branching (issue #4); prints a table.

    python benchmarks/bench_runs.py                 # 5000 runs, 1 GiB restore, 1000-target branch
    python benchmarks/bench_runs.py --quick         # smaller (under a minute)

Rows:
  runs with N recorded runs      `pipetool runs` (the tree) over an index of N runs
  restore K MiB from run cache   a run that restores one K MiB out instead of rebuilding it,
                                 minus a no-op run: the restore's own time and its MB/s
  branch one chain of M targets  `branch --from RUN -S chains.cK=…` on a layered pipeline where
                                 one param feeds one chain: reruns exactly that chain; planning
                                 overhead = branch time - the chain's commands run alone
Every timing is the median of --repeat real `pipetool` subprocesses. Exits 0; PASS/MISS
lines are informational.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def pipetool_cmd() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "pipetool")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "pipetool"]


def timed(args: list[str], cwd: str) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, proc


def median_of(repeat: int, fn) -> float:
    return statistics.median(fn() for _ in range(repeat))


# -- runs over a large index ---------------------------------------------------------------

def bench_runs(root: str, n_runs: int, repeat: int) -> float:
    """Record N runs through pipetool's own store API (running N real runs would take
    the benchmark hours), then time the real `pipetool runs`."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "pipeline.yaml"), "w") as f:
        f.write("params: {train: {lr: 0.1}}\ntargets:\n  a: {cmd: 'true'}\n")
    sys.path.insert(0, os.path.dirname(HERE))
    from pipetool.store import runs as store_runs
    from pipetool.store.db import open_db

    conn = open_db(root)
    parent = None
    t0 = time.time()
    for i in range(n_runs):
        rid = f"{int((t0 + i) * 1000):013d}"[:9] + f"{i:04x}"
        params = {"train": {"lr": 0.1 + (i % 7) / 100, "epochs": 10}}
        store_runs.start(conn, rid, parent, ["pipetool", "run"], "2026-11-25T00:00:00+00:00", params,
                         {"train.lr": params["train"]["lr"]}, [f"train.lr: 0.1 -> {params['train']['lr']}"], "run")
        rows = [(f"t{k}", "built", "f" * 32, "param changed", 0.1, {f"o{k}": "d" * 32}, []) for k in range(5)]
        store_runs.record_targets(conn, rid, rows)
        store_runs.finish(conn, rid, "succeeded", "2026-11-25T00:00:01+00:00",
                          {"metrics/eval.json": {"acc": 0.9 + (i % 10) / 1000, "loss": 0.2}})
        parent = rid if i % 50 else None  # a forest of chains, as branching makes
    conn.close()
    return median_of(repeat, lambda: timed(pipetool_cmd() + ["runs"], root)[0])


# -- restoring a big output from the run cache -------------------------------------------------

def bench_restore(root: str, mib: int, repeat: int) -> tuple[float, float]:
    os.makedirs(os.path.join(root, "src"), exist_ok=True)
    with open(os.path.join(root, "src", "make_big.py"), "w") as f:
        f.write(
            "import os, sys\n"
            "size, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n"
            "block = os.urandom(1 << 20)\n"
            "with open(out, 'wb') as f:\n"
            "    f.write(seed.to_bytes(8, 'little'))\n"
            "    for _ in range(size): f.write(block)\n")
    with open(os.path.join(root, "pipeline.yaml"), "w") as f:
        f.write(f"params: {{seed: 1}}\ntargets:\n  big:\n"
                f"    cmd: python src/make_big.py {mib} ${{seed}} out/big.bin\n"
                f"    deps: [src/make_big.py]\n    outs: [out/big.bin]\n")
    pt = pipetool_cmd()
    timed(pt + ["run", "-S", "seed=1"], root)
    timed(pt + ["run", "-S", "seed=2"], root)
    noop = median_of(repeat, lambda: timed(pt + ["run", "-S", "seed=2"], root)[0])

    def once() -> float:
        timed(pt + ["run", "-S", "seed=2"], root)  # the workspace holds seed 2's output
        elapsed, proc = timed(pt + ["run", "-S", "seed=1"], root)  # seed 1's comes back
        assert "restored" in proc.stderr, proc.stderr
        return elapsed

    restore = median_of(repeat, once)
    own = max(restore - noop, 1e-6)
    return own, (mib * (1 << 20)) / own / 1e6


# -- branching one chain of a layered pipeline -----------------------------------------------

def bench_branch(root: str, n: int, repeat: int) -> tuple[float, float, int]:
    chains = n // 10
    os.makedirs(os.path.join(root, "in"), exist_ok=True)
    os.makedirs(os.path.join(root, "out"), exist_ok=True)
    lines = ["params:", "  chains: {" + ", ".join(f"c{c}: 1" for c in range(chains)) + "}", "targets:"]
    for c in range(chains):
        for k in range(10):
            name = f"t{c:03d}_{k}"
            src = f"in/{name}.txt"
            with open(os.path.join(root, src), "w") as f:
                f.write(f"{name}\n" * 100)
            deps = [src] + ([f"out/t{c:03d}_{k - 1}.txt"] if k else [])
            extra = f" && echo ${{chains.c{c}}} >> out/{name}.txt" if k == 0 else ""
            cmd = f"cat {' '.join(deps)} > out/{name}.txt{extra}"
            lines += [f"  {name}:", f"    cmd: {cmd}", f"    deps: [{', '.join(deps)}]", f"    outs: [out/{name}.txt]"]
    with open(os.path.join(root, "pipeline.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    pt = pipetool_cmd()
    timed(pt + ["run", "-j", "2"], root)
    first = json.loads(timed(pt + ["runs", "--json"], root)[1].stdout)[0]["id"]
    counter = iter(range(2, 10_000))

    def once() -> tuple[float, int]:
        elapsed, proc = timed(pt + ["branch", "--from", first, "-S", f"chains.c5={next(counter)}",
                                    "-j", "2", "--json"], root)
        built = sum(1 for t in json.loads(proc.stdout)["targets"].values() if t["action"] == "built")
        return elapsed, built

    samples = [once() for _ in range(repeat)]
    branch = statistics.median(s[0] for s in samples)
    # the same 10 commands, run alone with bash as pipetool runs them
    chain = [f"cat in/t005_{k}.txt {f'out/t005_{k - 1}.txt' if k else ''} > /tmp/pt-bench-x.txt" for k in range(10)]
    t = time.perf_counter()
    for c in chain:
        subprocess.run(["bash", "-c", c], cwd=root, check=True)
    cmds = time.perf_counter() - t
    return branch, max(branch - cmds, 0.0), max(s[1] for s in samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--restore-mib", type=int, default=1024)
    ap.add_argument("--n", type=int, default=1000, help="targets in the branching pipeline")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.restore_mib, args.n, args.repeat = 500, 128, 200, 2
    work = tempfile.mkdtemp(prefix="pipetool-bench-runs-")
    try:
        rows = []
        t_runs = bench_runs(os.path.join(work, "runs"), args.runs, args.repeat)
        rows.append((f"runs with {args.runs} recorded runs", f"{t_runs:.3f} s", "target < 0.5 s",
                     t_runs < 0.5))
        own, rate = bench_restore(os.path.join(work, "restore"), args.restore_mib, args.repeat)
        rows.append((f"restore {args.restore_mib} MiB from run cache", f"{own:.3f} s, {rate:.0f} MB/s",
                     "target > 500 MB/s", rate > 500))
        branch, overhead, built = bench_branch(os.path.join(work, "branch"), args.n, args.repeat)
        rows.append((f"branch one chain of {args.n} targets", f"{branch:.3f} s ({built} built)",
                     "", built == 10))
        rows.append(("  planning overhead", f"{overhead:.3f} s", "target < 0.5 s", overhead < 0.5))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement'.ljust(width)}  {'result':<28}  target")
    for name, result, target, ok in rows:
        print(f"{name.ljust(width)}  {result:<28}  {target:<18} {'PASS' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
