#!/usr/bin/env python3
"""Read commands at scale: every command that reads a project, timed at two sizes, to show
each grows like N (log N), not N².

    python benchmarks/bench_scale.py                # N = 2,500 and 10,000 (a few minutes)
    python benchmarks/bench_scale.py --sizes 1000,4000 --repeat 3

Then a `foreach` over N data files (one partition each, plus a fan-in), built once:
`status`, a no-op `run`, and a `run` after adding one file (which runs exactly one partition
and the fan-in; its planning overhead is that time less the two commands').

The pipeline is a chain of N targets (each `cp` of its upstream's out, one param per 100
targets) plus a fan-in target reading every out, built once with `run -j 2`, then built
again with one param changed, so `runs`, `show` and `diff` have two real runs of N targets.
Each row is the median of --repeat real `pipetool` subprocesses; `growth` is the time at
the larger size over the time at the smaller, against the size ratio: about the ratio
means linear, its square would mean quadratic. Exits 0.
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

COMMANDS: list[tuple[str, list[str]]] = [
    ("status (spec cache cold)", ["status"]),
    ("status", ["status"]),
    ("status --json", ["status", "--json"]),
    ("run (no-op)", ["run", "-j", "2"]),
    ("dag", ["dag"]),
    ("check", ["check"]),
    ("runs", ["runs"]),
    ("runs --json", ["runs", "--json"]),
    ("show RUN", ["show", "{last}"]),
    ("diff RUN RUN", ["diff", "{first}", "{last}"]),
]


def pipetool_cmd() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "pipetool")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "pipetool"]


def write_project(root: str, n: int) -> None:
    os.makedirs(os.path.join(root, "in"), exist_ok=True)
    with open(os.path.join(root, "in", "seed.txt"), "w") as f:
        f.write("seed\n")
    groups = (n + 99) // 100
    lines = ["params:"] + [f"  g{k}: 0" for k in range(groups)] + ["targets:"]
    for i in range(n):
        dep = "in/seed.txt" if i == 0 else f"out/t{i - 1}.txt"
        echo = f" && echo ${{g{i // 100}}} >> out/t{i}.txt" if i % 100 == 0 else ""
        lines += [f"  t{i}:", f"    cmd: cp {dep} out/t{i}.txt{echo}", f"    deps: [{dep}]",
                  f"    outs: [out/t{i}.txt]"]
    lines += ["  total:", "    cmd: cat out/*.txt | wc -l > total.txt", "    deps: [out/]",
              "    outs: [total.txt]"]
    with open(os.path.join(root, "pipeline.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def run(args: list[str], cwd: str, timeout: float) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(pipetool_cmd() + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - t
    if proc.returncode not in (0, 1) or "Traceback" in proc.stderr:
        raise SystemExit(f"pipetool {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def measure(n: int, repeat: int, workdir: str, timeout: float) -> dict[str, float]:
    root = os.path.join(workdir, f"chain-{n}")
    shutil.rmtree(root, ignore_errors=True)
    write_project(root, n)
    print(f"  N={n}: building twice...", file=sys.stderr, flush=True)
    build_s, out = run(["run", "-j", "2", "--json"], root, timeout)
    first = json.loads(out)["run_id"]
    _, out = run(["run", "-j", "2", "--json", "-S", f"g{(n - 1) // 100}=1"], root, timeout)
    last = json.loads(out)["run_id"]
    times: dict[str, float] = {"full build -j 2": build_s}
    for label, args in COMMANDS:
        args = [a.format(first=first, last=last) for a in args]
        samples = []
        for _ in range(repeat):
            if "cold" in label:
                for name in os.listdir(os.path.join(root, ".pipetool")):
                    if name.startswith("spec.cache"):
                        os.unlink(os.path.join(root, ".pipetool", name))
            samples.append(run(args, root, timeout)[0])
        times[label] = statistics.median(samples)
        print(f"  N={n}: {label} {times[label]:.3f} s", file=sys.stderr, flush=True)
    return times


PARTITIONED = """
targets:
  clean:
    foreach: data/*.csv
    cmd: mkdir -p out && cp ${item} out/${item.stem}.txt
    deps: ["${item}"]
    outs: ["out/${item.stem}.txt"]
  summary:
    cmd: ls out | wc -l > summary.txt
    deps: [out/]
    outs: [summary.txt]
"""


def measure_partitions(n: int, repeat: int, workdir: str, timeout: float) -> dict[str, float]:
    root = os.path.join(workdir, f"foreach-{n}")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "data"))
    for i in range(n):
        with open(os.path.join(root, "data", f"f{i:06d}.csv"), "w") as f:
            f.write(f"{i}\n")
    with open(os.path.join(root, "pipeline.yaml"), "w") as f:
        f.write(PARTITIONED)
    print(f"  foreach N={n}: building...", file=sys.stderr, flush=True)
    times = {"foreach: full build -j 2": run(["run", "-j", "2"], root, timeout)[0]}
    times["foreach: status"] = statistics.median(run(["status"], root, timeout)[0] for _ in range(repeat))
    times["foreach: run (no-op)"] = statistics.median(run(["run"], root, timeout)[0] for _ in range(repeat))
    added = []
    for k in range(repeat):
        with open(os.path.join(root, "data", f"new{k}.csv"), "w") as f:
            f.write("new\n")
        added.append(run(["run", "-j", "2"], root, timeout)[0])
    times["foreach: run after adding a file"] = statistics.median(added)
    for label in [k for k in times if k.startswith("foreach")]:
        print(f"  foreach N={n}: {label} {times[label]:.3f} s", file=sys.stderr, flush=True)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2500,10000", help="two target counts, smaller first")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()
    small, large = (int(x) for x in args.sizes.split(","))
    workdir = args.workdir or tempfile.mkdtemp(prefix="pt-bench-scale-")
    try:
        a = measure(small, args.repeat, workdir, args.timeout)
        b = measure(large, args.repeat, workdir, args.timeout)
        a.update(measure_partitions(small, args.repeat, workdir, args.timeout))
        b.update(measure_partitions(large, args.repeat, workdir, args.timeout))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    ratio = large / small
    print("pipetool read commands at scale: a chain of N targets plus a fan-in, and a foreach over N files; "
          f"median of {args.repeat}")
    print(f"{'command':<34} {f'N={small} s':>12} {f'N={large} s':>12} {'growth':>8}  (x{ratio:g} = linear, "
          f"x{ratio * ratio:g} = quadratic)")
    print("-" * 80)
    for label in a:
        growth = b[label] / a[label] if a[label] else float("nan")
        print(f"{label:<34} {a[label]:>12.3f} {b[label]:>12.3f} {growth:>7.1f}x")


if __name__ == "__main__":
    main()
