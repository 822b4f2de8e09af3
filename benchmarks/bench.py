#!/usr/bin/env python3
"""Benchmark pipetool against ninja and doit on identical generated workloads.

Standard library only; ninja and doit are optional peers (``pip install
'pipetool[bench]'``) and are skipped cleanly when they cannot be found.

    python benchmarks/bench.py                     # full run: N=1000, 5 repeats, 2 GiB bigfile
    python benchmarks/bench.py --quick             # small N, small bigfile, 3 repeats (< 1 min)
    python benchmarks/bench.py --workloads layered --n 200 --repeat 3
    python benchmarks/bench.py --json > bench.json

Every timing is the wall-clock time of a real subprocess (the tool's CLI, as a user would
start it); each figure is the median of --repeat runs. See benchmarks/README.md for what each
row means. The script always exits 0 when it could run: the PASS/MISS lines are informational.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REFERENCE = (
    "reference (2-core, issue #3): no-op layered N=1000 ninja 0.017 doit 0.27; "
    "one change ninja 0.031 doit 0.32; full flat N=1000 ninja 1.31 doit 2.6"
)

ALL_WORKLOADS = ("layered", "flat", "bigfile", "tiny")
ALL_TOOLS = ("pipetool", "ninja", "doit")
CHAIN = 10                      # layered: targets per chain
LAYERED_INPUTS = 4              # layered: private input files per target
LAYERED_INPUT_SIZE = 64 * 1024
FLAT_INPUT_SIZE = 1024
BIG_CHUNK = 64 * 1024 * 1024
SEED = 20240603
INPUT_AGE_S = 3600              # generated inputs get an mtime this far in the past
JOBS = 2

# measurement keys, in table order
M_FULL = "full build -j2"
M_STATUS1 = "status, 1st after build"
M_NOOP = "no-op run"
M_NOOP_STATUS = "no-op status"
M_CHANGE = "one change"
M_TOUCH = "touch only"
M_HASH = "hash throughput GB/s"
M_CMDS = "commands alone (est.)"
MEASUREMENT_ORDER = (M_FULL, M_STATUS1, M_NOOP, M_NOOP_STATUS, M_CHANGE, M_TOUCH, M_HASH, M_CMDS)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- workloads

@dataclass
class Target:
    name: str
    deps: list[str]
    outs: list[str]
    cmd: str


@dataclass
class Workload:
    name: str
    targets: list[Target]
    params: dict
    make_inputs: object                      # callable(Path) -> None, deterministic
    change_input: str | None = None          # input rewritten by "one change" / "touch only"
    change_kind: str = "rewrite"             # "rewrite" (new random content) | "flip-byte"
    touch: bool = True                       # measure "touch only"
    expected_rebuild: int = 0                # targets "one change" must rebuild
    rebuild_set: list[str] = field(default_factory=list)
    input_bytes: int = 0


def _name(i: int, n: int) -> str:
    return f"t{i:0{max(4, len(str(n - 1)))}d}"


def _write_random_files(root: Path, files: list[str], size: int, seed: int) -> None:
    rng = random.Random(seed)
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(size))


def make_layered(n: int) -> Workload:
    targets = []
    inputs = []
    for i in range(n):
        name = _name(i, n)
        private = [f"in/{name}_{k}.bin" for k in range(LAYERED_INPUTS)]
        inputs += private
        deps = list(private)
        if i % CHAIN:
            deps.append(f"out/{_name(i - 1, n)}.txt")
        out = f"out/{name}.txt"
        targets.append(Target(name, deps, [out], f"cat {' '.join(deps)} > {out}"))
    first_chain = min(CHAIN, n)
    pos = min(5, first_chain - 1)            # chain 0, position 5
    changed = targets[pos]
    rebuild = [t.name for t in targets[pos:first_chain]]
    return Workload(
        "layered", targets, {"n": n, "chain": CHAIN, "inputs_per_target": LAYERED_INPUTS,
                             "input_size": LAYERED_INPUT_SIZE},
        lambda root: _write_random_files(root, inputs, LAYERED_INPUT_SIZE, SEED),
        change_input=changed.deps[0], expected_rebuild=len(rebuild), rebuild_set=rebuild,
        input_bytes=len(inputs) * LAYERED_INPUT_SIZE)


def make_flat(n: int) -> Workload:
    targets = []
    inputs = []
    for i in range(n):
        name = _name(i, n)
        src, out = f"in/{name}.txt", f"out/{name}.txt"
        inputs.append(src)
        targets.append(Target(name, [src], [out], f"cp {src} {out}"))
    mid = targets[n // 2]
    return Workload(
        "flat", targets, {"n": n, "input_size": FLAT_INPUT_SIZE},
        lambda root: _write_random_files(root, inputs, FLAT_INPUT_SIZE, SEED + 1),
        change_input=mid.deps[0], expected_rebuild=1, rebuild_set=[mid.name],
        input_bytes=n * FLAT_INPUT_SIZE)


_CHUNK_CACHE: dict[int, bytes] = {}


def _big_chunk() -> bytes:
    if BIG_CHUNK not in _CHUNK_CACHE:
        _CHUNK_CACHE[BIG_CHUNK] = random.Random(SEED + 2).randbytes(BIG_CHUNK)
    return _CHUNK_CACHE[BIG_CHUNK]


def _write_bigfile(root: Path, size: int) -> None:
    """`size` bytes of incompressible data: one random 64 MiB block, each copy stamped
    with its index so that no two chunks are identical."""
    chunk = _big_chunk()
    p = root / "in" / "big.bin"
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "wb") as f:
        left, i = size, 0
        while left > 0:
            block = i.to_bytes(8, "little") + chunk[8:]
            f.write(block[:left] if left < len(block) else block)
            left -= len(block)
            i += 1


def make_bigfile(size: int) -> Workload:
    t = Target("big", ["in/big.bin"], ["out/big.txt"], "wc -c in/big.bin > out/big.txt")
    return Workload(
        "bigfile", [t], {"size_bytes": size, "size_gib": round(size / 2**30, 3)},
        lambda root: _write_bigfile(root, size),
        change_input="in/big.bin", change_kind="flip-byte", touch=False,
        expected_rebuild=1, rebuild_set=["big"], input_bytes=size)


def make_tiny() -> Workload:
    targets = [
        Target("a", ["in/a.txt"], ["out/a.txt"], "cp in/a.txt out/a.txt"),
        Target("b", ["out/a.txt"], ["out/b.txt"], "cat out/a.txt > out/b.txt"),
        Target("c", ["out/b.txt"], ["out/c.txt"], "cat out/b.txt > out/c.txt"),
    ]
    return Workload(
        "tiny", targets, {"n": 3},
        lambda root: _write_random_files(root, ["in/a.txt"], 100, SEED + 3),
        change_input=None, touch=False, input_bytes=100)


# --------------------------------------------------------------------------- tools

def _sibling(exe: str) -> str | None:
    """An executable installed next to the running interpreter (the same venv)."""
    p = Path(sys.executable).parent / exe
    return str(p) if p.is_file() and os.access(p, os.X_OK) else None


@dataclass
class RunResult:
    seconds: float
    rc: int
    out: str


def run_cmd(argv: list[str], cwd: Path, timeout: float) -> RunResult:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.output.decode(errors="replace") if e.output else ""
        return RunResult(time.perf_counter() - t0, 124, out + f"\n[timed out after {timeout}s]")
    dt = time.perf_counter() - t0
    return RunResult(dt, p.returncode, p.stdout.decode(errors="replace"))


class Tool:
    name = ""
    has_status = False
    state_paths: tuple[str, ...] = ()
    state_globs: tuple[str, ...] = ()

    def __init__(self, argv: list[str] | None):
        self.argv = argv
        self.version = ""
        self.why_missing = "" if argv else "not found"

    @property
    def available(self) -> bool:
        return bool(self.argv) and not self.why_missing

    def write_config(self, root: Path, wl: Workload) -> None:
        raise NotImplementedError

    def clean(self, root: Path) -> None:
        for rel in self.state_paths:
            p = root / rel
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
        for pattern in self.state_globs:
            for p in root.glob(pattern):
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()
        out = root / "out"
        if out.exists():
            shutil.rmtree(out)
        out.mkdir()

    def full(self, root: Path) -> list[str]:
        raise NotImplementedError

    def incremental(self, root: Path) -> list[str]:
        raise NotImplementedError

    def status(self, root: Path) -> list[str]:
        raise NotImplementedError


class Pipetool(Tool):
    name = "pipetool"
    has_status = True
    state_paths = (".pipetool", "pipetool.lock")

    def write_config(self, root: Path, wl: Workload) -> None:
        q = json.dumps  # JSON strings are valid YAML double-quoted scalars
        lines = [f"# generated by benchmarks/bench.py: workload {wl.name}", "version: 1",
                 "targets:"]
        for t in wl.targets:
            lines.append(f"  {t.name}:")
            lines.append(f"    cmd: {q(t.cmd)}")
            lines.append(f"    deps: [{', '.join(q(d) for d in t.deps)}]")
            lines.append(f"    outs: [{', '.join(q(o) for o in t.outs)}]")
        (root / "pipeline.yaml").write_text("\n".join(lines) + "\n")

    def full(self, root):
        return [*self.argv, "-C", str(root), "run", "-j", str(JOBS)]

    def incremental(self, root):
        return [*self.argv, "-C", str(root), "run", "-j", str(JOBS)]

    def status(self, root):
        return [*self.argv, "-C", str(root), "status"]


class Ninja(Tool):
    name = "ninja"
    state_paths = (".ninja_log", ".ninja_deps")

    def write_config(self, root: Path, wl: Workload) -> None:
        def esc(s: str) -> str:
            return s.replace("$", "$$").replace(" ", "$ ").replace(":", "$:")
        lines = [f"# generated by benchmarks/bench.py: workload {wl.name}",
                 "rule sh", "  command = $cmd", ""]
        for t in wl.targets:
            lines.append(f"build {' '.join(esc(o) for o in t.outs)}: sh "
                         f"{' '.join(esc(d) for d in t.deps)}")
            lines.append(f"  cmd = {t.cmd.replace('$', '$$')}")
        lines.append(f"default {' '.join(esc(o) for t in wl.targets for o in t.outs)}")
        (root / "build.ninja").write_text("\n".join(lines) + "\n")

    def full(self, root):
        return [*self.argv, "-C", str(root), "-j", str(JOBS)]

    def incremental(self, root):
        return [*self.argv, "-C", str(root), "-j", str(JOBS)]


class Doit(Tool):
    name = "doit"
    state_globs = (".doit.db*",)

    def write_config(self, root: Path, wl: Workload) -> None:
        data = [(t.name, t.deps, t.outs, t.cmd) for t in wl.targets]
        src = (
            f"# generated by benchmarks/bench.py: workload {wl.name}\n"
            "# file_dep uses doit's default 'md5' checker (mtime shortcut, then md5).\n"
            f"TARGETS = {data!r}\n\n"
            "def task_build():\n"
            "    for name, deps, outs, cmd in TARGETS:\n"
            "        yield {'name': name, 'file_dep': deps, 'targets': outs,\n"
            "               'actions': [cmd], 'verbosity': 0}\n"
        )
        (root / "dodo.py").write_text(src)

    def full(self, root):
        return [*self.argv, "run", "-n", str(JOBS), "-P", "thread"]

    def incremental(self, root):
        return [*self.argv, "run"]


def find_tools(args) -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]

    if args.pipetool:
        pt = shlex.split(args.pipetool)
    else:
        exe = _sibling("pipetool") or shutil.which("pipetool")
        if exe:
            pt = [exe]
        elif importlib.util.find_spec("pipetool") is not None:
            pt = [sys.executable, "-m", "pipetool"]
        else:
            pt = None
    if args.ninja:
        nj = shlex.split(args.ninja)
    else:
        exe = _sibling("ninja") or shutil.which("ninja")
        nj = [exe] if exe else None
    if args.doit:
        dt = shlex.split(args.doit)
    else:
        exe = _sibling("doit") or shutil.which("doit")
        if exe:
            dt = [exe]
        elif importlib.util.find_spec("doit") is not None:
            dt = [sys.executable, "-m", "doit"]
        else:
            dt = None

    for cls, argv in ((Pipetool, pt), (Ninja, nj), (Doit, dt)):
        tool = cls(argv)
        if cls.name not in wanted:
            tool.argv, tool.why_missing = None, "not selected"
        elif argv:
            tool.why_missing = ""
            for flag in ("--version", "--help"):   # a CLI without --version still counts
                probe = [*argv, flag]
                try:
                    p = subprocess.run(probe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, timeout=60)
                except (OSError, subprocess.TimeoutExpired) as e:
                    tool.why_missing = f"cannot run {shlex.join(probe)}: {e}"
                    break
                text = p.stdout.decode(errors="replace").strip()
                if p.returncode == 0:
                    tool.why_missing = ""
                    tool.version = (" ".join(text.split())[:80] if flag == "--version"
                                    else "no --version")
                    break
                tool.why_missing = (f"`{shlex.join(probe)}` exited {p.returncode}: "
                                    f"{' '.join(text.split())[-300:]}")
        tools[cls.name] = tool
    return tools


# --------------------------------------------------------------------------- measuring

def out_mtimes(root: Path, wl: Workload) -> dict[str, tuple]:
    snap = {}
    for t in wl.targets:
        stamps = []
        for o in t.outs:
            try:
                stamps.append((root / o).stat().st_mtime_ns)
            except FileNotFoundError:
                stamps.append(None)
        snap[t.name] = tuple(stamps)
    return snap


def count_rebuilt(before: dict, after: dict) -> int:
    return sum(1 for k in before if before[k] != after.get(k))


def missing_outs(root: Path, wl: Workload) -> list[str]:
    return [o for t in wl.targets for o in t.outs if not (root / o).exists()]


def backdate_inputs(root: Path, age_s: float) -> None:
    t = time.time() - age_s
    for p in (root / "in").rglob("*"):
        if p.is_file():
            os.utime(p, (t, t))


def apply_change(root: Path, wl: Workload, r: int) -> None:
    p = root / wl.change_input
    if wl.change_kind == "flip-byte":
        size = p.stat().st_size
        with open(p, "r+b") as f:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            # a different byte every repeat: never back to an earlier content
            f.write(bytes([(b[0] + 1) % 256]))
    else:
        size = p.stat().st_size
        p.write_bytes(random.Random(SEED * 7 + r + 1).randbytes(size))


def touch(root: Path, wl: Workload) -> None:
    p = root / wl.change_input
    ns = max(time.time_ns(), p.stat().st_mtime_ns + 1_000_000_000)
    os.utime(p, ns=(ns, ns))


class Recorder:
    def __init__(self):
        self.data: dict = {}

    def add(self, wl: str, m: str, tool: str, seconds: float | None = None,
            rebuilt: int | None = None, **extra) -> None:
        cell = self.data.setdefault(wl, {}).setdefault(m, {}).setdefault(
            tool, {"samples": [], "rebuilt": []})
        if seconds is not None:
            cell["samples"].append(seconds)
        if rebuilt is not None:
            cell["rebuilt"].append(rebuilt)
        cell.update(extra)

    def error(self, wl: str, m: str, tool: str, msg: str) -> None:
        self.add(wl, m, tool, error=msg)

    def cell(self, wl: str, m: str, tool: str) -> dict | None:
        return self.data.get(wl, {}).get(m, {}).get(tool)

    def median(self, wl: str, m: str, tool: str) -> float | None:
        c = self.cell(wl, m, tool)
        if not c or c.get("error") or not c["samples"]:
            return c.get("value") if c and not c.get("error") else None
        return statistics.median(c["samples"])


class ToolFailed(Exception):
    pass


def bench_tool(tool: Tool, wl: Workload, root: Path, master: Path, args, rec: Recorder) -> None:
    """All measurements of one tool on one workload, in a directory of its own."""
    R = args.repeat

    def timed(m: str, argv: list[str], rebuilt_of: bool = False) -> RunResult:
        before = out_mtimes(root, wl) if rebuilt_of else None
        res = run_cmd(argv, root, args.timeout)
        if res.rc != 0:
            msg = f"`{shlex.join(argv)}` exited {res.rc}: {res.out.strip()[-800:]}"
            rec.error(wl.name, m, tool.name, msg)
            raise ToolFailed(msg)
        n = count_rebuilt(before, out_mtimes(root, wl)) if rebuilt_of else None
        rec.add(wl.name, m, tool.name, res.seconds, n)
        extra = f" rebuilt {n}" if n is not None else ""
        log(f"  [{wl.name}] {tool.name:8s} {m:24s} {res.seconds:8.3f} s{extra}")
        return res

    # fresh workspace: generated inputs + this tool's build file
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(master, root, symlinks=True)
    tool.write_config(root, wl)

    # 1. full builds from scratch (state and outputs removed each time)
    for _ in range(R):
        tool.clean(root)
        timed(M_FULL, tool.full(root))
        miss = missing_outs(root, wl)
        if miss:
            msg = f"{len(miss)} outs missing after full build, e.g. {miss[:3]}"
            rec.error(wl.name, M_FULL, tool.name, msg)
            raise ToolFailed(msg)
        if tool.has_status:
            timed(M_STATUS1, tool.status(root))

    # 2. no-op: everything up to date
    for _ in range(R):
        timed(M_NOOP, tool.incremental(root), rebuilt_of=True)
    if tool.has_status:
        for _ in range(R):
            timed(M_NOOP_STATUS, tool.status(root))

    # 3. one change: new content in one input
    if wl.change_input:
        for r in range(R):
            apply_change(root, wl, r)
            timed(M_CHANGE, tool.incremental(root), rebuilt_of=True)

    # 4. touch only: newer mtime, same content
    if wl.change_input and wl.touch:
        for _ in range(R):
            touch(root, wl)
            timed(M_TOUCH, tool.incremental(root), rebuilt_of=True)

    # what the rebuilt commands cost on their own (bash -c each, in order), so that the
    # "one change" target can be read as tool overhead + commands
    if tool.name == "pipetool" and wl.rebuild_set:
        by_name = {t.name: t for t in wl.targets}
        for _ in range(R):
            t0 = time.perf_counter()
            for name in wl.rebuild_set:
                subprocess.run(["bash", "-c", by_name[name].cmd], cwd=root, check=True)
            rec.add(wl.name, M_CMDS, tool.name, time.perf_counter() - t0)


def bench_workload(wl: Workload, tools: dict[str, Tool], base: Path, args, rec: Recorder):
    wdir = base / wl.name
    master = wdir / "_master"
    log(f"[{wl.name}] generating inputs ({wl.input_bytes / 2**20:.1f} MiB) ...")
    t0 = time.perf_counter()
    (master / "out").mkdir(parents=True)
    wl.make_inputs(master)
    backdate_inputs(master, INPUT_AGE_S)
    log(f"[{wl.name}] generated in {time.perf_counter() - t0:.1f} s")
    rec.data.setdefault(wl.name, {})
    for tool in tools.values():
        if not tool.available:
            continue
        root = wdir / tool.name
        try:
            bench_tool(tool, wl, root, master, args, rec)
        except ToolFailed as e:
            log(f"  [{wl.name}] {tool.name}: FAILED, skipping its remaining measurements: {e}")
        finally:
            if not args.keep and root.exists():
                shutil.rmtree(root)
    if not args.keep:
        shutil.rmtree(wdir, ignore_errors=True)

    # derived: hashing throughput on the changed big file
    if wl.name == "bigfile":
        for tname in ("pipetool", "doit"):
            ch, base_t = rec.median(wl.name, M_CHANGE, tname), rec.median(wl.name, M_NOOP, tname)
            if ch is not None and base_t is not None:
                extra = ch - base_t
                gbs = (wl.input_bytes / 1e9) / extra if extra > 0 else float("inf")
                formula = f"{wl.input_bytes} B / ({ch:.4f} s - {base_t:.4f} s no-op)"
                if extra < 0.02:
                    formula += "; difference within noise, use a bigger --bigfile-gib"
                rec.add(wl.name, M_HASH, tname, value=gbs, formula=formula)


# --------------------------------------------------------------------------- report

def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 100 else f"{x:.1f}"


def build_rows(rec: Recorder, tools: dict[str, Tool], workloads: dict[str, Workload]):
    rows = []
    for wname, wl in workloads.items():
        ms = rec.data.get(wname, {})
        for m in MEASUREMENT_ORDER:
            if m not in ms:
                continue
            cells, vals, rebuilt = {}, {}, {}
            for tname in ALL_TOOLS:
                c = ms[m].get(tname)
                if c is None:
                    cells[tname] = "-" if tools[tname].available or tname == "pipetool" \
                        else "n/a"
                    if not tools[tname].available:
                        cells[tname] = "n/a"
                    continue
                if c.get("error"):
                    cells[tname] = "ERR"
                    continue
                v = rec.median(wname, m, tname)
                vals[tname] = v
                if m == M_HASH:
                    cells[tname] = "inf" if v == float("inf") else f"{v:.2f} GB/s"
                else:
                    cells[tname] = fmt_s(v)
                if c["rebuilt"]:
                    rb = sorted(set(c["rebuilt"]))
                    rebuilt[tname] = "/".join(str(x) for x in rb)
            ratios = {}
            for peer in ("ninja", "doit"):
                p, q = vals.get("pipetool"), vals.get(peer)
                if m != M_HASH and p is not None and q:
                    ratios[peer] = f"{p / q:.2f}x"
                else:
                    ratios[peer] = ""
            note = ""
            if rebuilt and m in (M_CHANGE, M_TOUCH, M_NOOP):
                note = "rebuilt " + " ".join(f"{k[0]}={v}" for k, v in rebuilt.items())
                if m == M_CHANGE:
                    note += f" (expect {wl.expected_rebuild})"
                elif m in (M_TOUCH, M_NOOP) and rebuilt.get("pipetool", "0") != "0":
                    note += "  <-- pipetool should rebuild 0"
            if m == M_TOUCH and "ninja" in rebuilt and rebuilt["ninja"] != "0":
                note += " (ninja: mtime)"
            label = wname if wname != "tiny" else "tiny (3 targets)"
            if wname in ("layered", "flat"):
                label = f"{wname} N={wl.params['n']}"
            elif wname == "bigfile":
                label = f"bigfile {wl.params['size_gib']:g} GiB"
            rows.append([label, m, cells["pipetool"], cells["ninja"], cells["doit"],
                         ratios["ninja"], ratios["doit"], note])
    return rows


def targets_check(rec: Recorder, workloads: dict[str, Workload]) -> list[dict]:
    out = []

    def add(name, value, limit, ok_if_le, unit, detail=""):
        if value is None or limit is None:
            out.append({"target": name, "value": value, "limit": limit, "verdict": "n/a",
                        "detail": detail or "not measured"})
            return
        ok = value <= limit if ok_if_le else value >= limit
        out.append({"target": name, "value": value, "limit": limit,
                    "verdict": "PASS" if ok else "MISS", "unit": unit, "detail": detail})

    if "layered" in workloads:
        n = workloads["layered"].params["n"]
        note = "" if n == 1000 else f"(stated for N=1000; measured N={n})"
        add("layered no-op run <= 0.13 s", rec.median("layered", M_NOOP, "pipetool"),
            0.13, True, "s", note)
        add("layered no-op status <= 0.13 s", rec.median("layered", M_NOOP_STATUS, "pipetool"),
            0.13, True, "s", note)
        cmds = rec.median("layered", M_CMDS, "pipetool")
        add("layered one change <= 0.2 s + commands",
            rec.median("layered", M_CHANGE, "pipetool"),
            None if cmds is None else 0.2 + cmds, True, "s",
            (f"commands alone {cmds:.3f} s " if cmds is not None else "") + note)
    if "flat" in workloads:
        nj = rec.median("flat", M_FULL, "ninja")
        n = workloads["flat"].params["n"]
        note = "" if n == 1000 else f"(stated for N=1000; measured N={n})"
        add("flat full build <= 1.5x ninja", rec.median("flat", M_FULL, "pipetool"),
            None if nj is None else 1.5 * nj, True, "s",
            (f"ninja {nj:.3f} s " if nj is not None else "ninja not measured ") + note)
    if "bigfile" in workloads:
        c = rec.cell("bigfile", M_HASH, "pipetool")
        add("bigfile hashing >= 2 GB/s", rec.median("bigfile", M_HASH, "pipetool"), 2.0, False,
            "GB/s", c.get("formula", "") if c else "")
    if "tiny" in workloads:
        add("status on 3 targets <= 0.12 s", rec.median("tiny", M_NOOP_STATUS, "pipetool"),
            0.12, True, "s")
    return out


def print_table(rows: list[list[str]]) -> None:
    head = ["workload", "measurement", "pipetool s", "ninja s", "doit s",
            "pipetool/ninja", "pipetool/doit", "notes"]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    right = {2, 3, 4, 5, 6}

    def line(r):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print(line(head))
    print("  ".join("-" * w for w in widths))
    prev = None
    for r in rows:
        if prev is not None and r[0] != prev:
            print()
        print(line(r))
        prev = r[0]


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Time pipetool against ninja and doit on generated workloads.")
    ap.add_argument("--n", type=int, default=None,
                    help="targets in the layered and flat workloads (default 1000; --quick 100)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="repeats per measurement; the median is reported (default 5; --quick 3)")
    ap.add_argument("--workloads", default=",".join(ALL_WORKLOADS),
                    help=f"comma-separated subset of {','.join(ALL_WORKLOADS)}")
    ap.add_argument("--bigfile-gib", type=float, default=None,
                    help="size of the bigfile input in GiB (default 2; --quick 0.5)")
    ap.add_argument("--quick", action="store_true",
                    help="small N, small bigfile, 3 repeats: a smoke run in under a minute")
    ap.add_argument("--tools", default=",".join(ALL_TOOLS),
                    help="comma-separated subset of pipetool,ninja,doit")
    ap.add_argument("--pipetool", default=None,
                    help="pipetool command (default: pipetool next to this Python, on PATH, "
                         "or python -m pipetool)")
    ap.add_argument("--ninja", default=None, help="ninja command (default: found like pipetool)")
    ap.add_argument("--doit", default=None,
                    help="doit command (default: doit next to this Python, on PATH, "
                         "or python -m doit)")
    ap.add_argument("--workdir", default=None,
                    help="where to create the temporary workspaces (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the generated workspaces")
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds before one tool invocation counts as failed")
    ap.add_argument("--json", action="store_true",
                    help="print all samples, medians and verdicts as JSON instead of the table")
    args = ap.parse_args(argv)
    if args.n is None:
        args.n = 100 if args.quick else 1000
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.bigfile_gib is None:
        args.bigfile_gib = 0.5 if args.quick else 2.0
    if args.n < 1 or args.repeat < 1 or args.bigfile_gib <= 0:
        ap.error("--n and --repeat must be >= 1 and --bigfile-gib > 0")
    bad = [w for w in args.workloads.split(",") if w and w not in ALL_WORKLOADS]
    if bad:
        ap.error(f"unknown workload(s) {bad}; choose from {','.join(ALL_WORKLOADS)}")
    bad = [t for t in args.tools.split(",") if t and t not in ALL_TOOLS]
    if bad:
        ap.error(f"unknown tool(s) {bad}; choose from {','.join(ALL_TOOLS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    tools = find_tools(args)
    for t in tools.values():
        if t.available:
            log(f"{t.name:8s}: {shlex.join(t.argv)}  ({t.version})")
        else:
            log(f"{t.name:8s}: skipped ({t.why_missing})")

    makers = {"layered": lambda: make_layered(args.n), "flat": lambda: make_flat(args.n),
              "bigfile": lambda: make_bigfile(int(args.bigfile_gib * 2**30)),
              "tiny": make_tiny}
    workloads = {w: makers[w]() for w in args.workloads.split(",") if w}

    rec = Recorder()
    base = Path(tempfile.mkdtemp(prefix="pipetool-bench-", dir=args.workdir))
    t_start = time.perf_counter()
    try:
        for wl in workloads.values():
            bench_workload(wl, tools, base, args, rec)
    finally:
        if args.keep:
            log(f"workspaces kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    elapsed = time.perf_counter() - t_start

    rows = build_rows(rec, tools, workloads)
    checks = targets_check(rec, workloads)
    errors = [(w, m, t, c["error"]) for w, ms in rec.data.items() for m, cs in ms.items()
              for t, c in cs.items() if c.get("error")]
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
               f"Python {platform.python_version()}")

    if args.json:
        doc = {
            "machine": machine, "elapsed_s": elapsed, "reference": REFERENCE,
            "args": dict(vars(args).items()),
            "tools": {t.name: {"argv": t.argv, "version": t.version,
                               "skipped": None if t.available else t.why_missing}
                      for t in tools.values()},
            "workloads": {w: {"params": wl.params, "change_input": wl.change_input,
                              "expected_rebuild": wl.expected_rebuild}
                          for w, wl in workloads.items()},
            "results": {w: {m: {t: {**c, "median": rec.median(w, m, t)}
                                for t, c in cs.items()}
                            for m, cs in ms.items()}
                        for w, ms in rec.data.items()},
            "targets": checks,
            "table": [dict(zip(["workload", "measurement", "pipetool_s", "ninja_s", "doit_s",
                                "pipetool_over_ninja", "pipetool_over_doit", "notes"], r))
                      for r in rows],
        }
        json.dump(doc, sys.stdout, indent=2, default=str)
        print()
        return 0

    print(f"pipetool benchmark: {machine}; median of {args.repeat} runs; -j {JOBS} for full "
          f"builds; total {elapsed:.0f} s")
    for t in tools.values():
        print(f"  {t.name:8s} " + (f"{shlex.join(t.argv)} ({t.version})" if t.available
                                   else f"skipped: {t.why_missing}"))
    print()
    print_table(rows)
    print()
    print(REFERENCE)
    print()
    print("targets (informational; exit status is 0 either way):")
    for c in checks:
        v = c["value"]
        if v is None:
            shown = "-"
        elif v == float("inf"):
            shown = "inf"
        else:
            shown = f"{v:.3f} {c.get('unit', '')}"
        lim = "" if c["limit"] is None else f"(limit {c['limit']:.3f})"
        print(f"  {c['verdict']:4s}  {c['target']:40s} {shown:>12s} {lim:18s} {c['detail']}")
    if errors:
        print()
        print("errors:")
        for w, m, t, msg in errors:
            print(f"  [{w}] {t} {m}: {msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
