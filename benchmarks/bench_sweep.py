#!/usr/bin/env python3
"""Sweeps (SPEC §10): one -j for all points, shared work once, inputs by reference.

    python benchmarks/bench_sweep.py                 # the issue's three figures (~1 min)
    python benchmarks/bench_sweep.py --big-mib 256 --repeat 1

1. **makespan**: 16 points whose `train` sleeps 1 s after a shared `prep` that sleeps
   1 s, at `-j 16`. The bound is 2 s (prep, then the 16 trains at once); the goal 2.3 s.
   Shown: the wall time of the whole `pipetool sweep` command (interpreter start-up,
   validation of the 16 points and the table included; the pipeline read once before, as
   in any project) and the sweep's own makespan (the first point run's start to the last
   one's end, from the manifests).
2. **disk**: 8 points whose target reads a 1 GiB input: what the points' workspaces
   (`du -sk .pipetool/sweeps`) and all of `.pipetool/` grew by. Goal: under 50 MiB.
3. **setup**: making one point's workspace (its symlink forest) for a project of 1,000
   files, laid out three ways: in one data folder, at the top level, and in the folder an
   out is written to (each of its files a link). Goal: 50 ms. A link costs what creating
   an empty file costs (~20 µs on an idle ext4 disk, 20 times that when other processes
   keep the journal busy): the median and the fastest of 5 are shown.

Each figure is the median of --repeat; fresh projects every time. Exits 0.
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
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def pipetool_cmd() -> list[str]:
    beside = os.path.join(os.path.dirname(sys.executable), "pipetool")
    return [beside] if os.path.exists(beside) else [sys.executable, "-m", "pipetool"]


def run(cwd: str, *args: str) -> subprocess.CompletedProcess:
    # As installed: compiled modules kept (PYTHONDONTWRITEBYTECODE would compile pipetool
    # anew at every start, ~0.2 s that no installed pipetool pays).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    res = subprocess.run([*pipetool_cmd(), *args], cwd=cwd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"pipetool {' '.join(args)} exited {res.returncode}:\n{res.stderr}")
    return res


def write(root: str, rel: str, text: str) -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path) or root, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def makespan(work: str) -> tuple[float, float, int]:
    root = tempfile.mkdtemp(dir=work)
    write(root, "pipeline.yaml", """
params:
  train: {lr: 0}
targets:
  prep:
    cmd: sleep 1 && echo prepared > out/prep.txt
    outs: [out/prep.txt]
  train:
    cmd: sleep 1 && cat out/prep.txt > out/model.txt && echo ${train.lr} >> out/model.txt
    deps: [out/prep.txt]
    outs: [out/model.txt]
""")
    run(root, "status")  # the pipeline read once, as in any project (its spec cache)
    t0 = time.perf_counter()
    res = run(root, "sweep", "-S", "train.lr=range(0,16)", "-j", "16", "--json")
    wall = time.perf_counter() - t0
    table = json.loads(res.stdout)
    manifests = [json.loads(run(root, "show", p["run"], "--json").stdout) for p in table["points"]]
    start = min(datetime.fromisoformat(m["started_at"]) for m in manifests)
    end = max(datetime.fromisoformat(m["finished_at"]) for m in manifests)
    built = sum(t["action"] == "built" for m in manifests for t in m["targets"].values())
    shutil.rmtree(root)
    return wall, (end - start).total_seconds(), built


def du_kib(path: str) -> int:
    if not os.path.exists(path):
        return 0
    return int(subprocess.run(["du", "-sk", path], capture_output=True, text=True).stdout.split()[0])


def disk(work: str, mib: int) -> tuple[int, int, float]:
    root = tempfile.mkdtemp(dir=work)
    os.makedirs(os.path.join(root, "data"))
    chunk = os.urandom(1 << 20)
    with open(os.path.join(root, "data", "big.bin"), "wb") as f:
        f.writelines(chunk for _ in range(mib))
    write(root, "pipeline.yaml", """
params:
  train: {lr: 0}
targets:
  train:
    cmd: wc -c < data/big.bin > out/n.txt && echo ${train.lr} >> out/n.txt
    deps: [data/big.bin]
    outs: [out/n.txt]
""")
    run(root, "status")  # the project's stat cache knows the input, as after any command
    before = du_kib(os.path.join(root, ".pipetool"))
    t0 = time.perf_counter()
    run(root, "sweep", "-S", "train.lr=range(0,8)", "-j", "8")
    wall = time.perf_counter() - t0
    points = du_kib(os.path.join(root, ".pipetool", "sweeps"))
    grew = du_kib(os.path.join(root, ".pipetool")) - before
    shutil.rmtree(root)
    return points, grew, wall


LAYOUTS = {
    "1,000 files in data/": lambda i: f"data/f{i:04d}.csv",
    "1,000 files at the top": lambda i: f"f{i:04d}.csv",
    "1,000 files beside an out": lambda i: f"out/f{i:04d}.csv",
}


def setup(work: str, layout: str) -> tuple[float, float]:
    from pipetool.sweeps.forest import make_forest, plan_forest, project_lister

    root = tempfile.mkdtemp(dir=work)
    for i in range(1000):
        write(root, LAYOUTS[layout](i), "x\n")
    outs = ["out/model.pkl", "metrics/train.json"]
    t0 = time.perf_counter()
    plan = plan_forest(project_lister(root), outs)  # once per sweep
    t1 = time.perf_counter()
    point = os.path.join(root, ".pipetool", "sweeps", "s", "p")
    make_forest(plan, root, point)  # once per point
    t2 = time.perf_counter()
    shutil.rmtree(root)
    return t1 - t0, t2 - t1


def empty_files(work: str) -> float:
    """What 1,000 empty files cost to create on this disk now (a link costs about the same)."""
    root = tempfile.mkdtemp(dir=work)
    t0 = time.perf_counter()
    for i in range(1000):
        os.close(os.open(os.path.join(root, f"f{i:04d}"), os.O_CREAT | os.O_WRONLY, 0o644))
    took = time.perf_counter() - t0
    shutil.rmtree(root)
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-sweep-", dir=a.workdir)
    rows: list[tuple[str, str, str]] = []
    try:
        spans = [makespan(work) for _ in range(a.repeat)]
        wall = statistics.median(s[0] for s in spans)
        inner = statistics.median(s[1] for s in spans)
        builds = sorted({s[2] for s in spans})
        rows.append(("16 points, 1 s shared + 1 s each, -j 16: command wall time", f"{wall:.2f} s", "goal 2.3 s"))
        rows.append(("  the sweep's makespan (first point start to last end)", f"{inner:.2f} s", "bound 2 s"))
        rows.append(("  jobs built (prep once + 16 trains)", "/".join(map(str, builds)), "17"))
        points_kib, grew_kib, dwall = disk(work, a.big_mib)
        rows.append((f"8 points over a {a.big_mib} MiB input: point workspaces (du)", f"{points_kib / 1024:.2f} MiB",
                     "goal < 50 MiB"))
        rows.append(("  all of .pipetool/ grew by", f"{grew_kib / 1024:.2f} MiB", f"(sweep took {dwall:.2f} s)"))
        for layout in LAYOUTS:
            got = [setup(work, layout) for _ in range(max(5, a.repeat))]
            plan = statistics.median(g[0] for g in got) * 1000
            make = statistics.median(g[1] for g in got) * 1000
            fastest = min(g[1] for g in got) * 1000
            rows.append((f"setup, {layout}: plan once / make a point's workspace", f"{plan:.1f} / {make:.1f} ms",
                         f"goal 50 ms (fastest of 5: {fastest:.1f} ms)"))
        base = statistics.median(empty_files(work) for _ in range(5)) * 1000
        rows.append(("  for scale: 1,000 empty files created on this disk now", f"{base:.1f} ms", ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value':>16}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>16}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
