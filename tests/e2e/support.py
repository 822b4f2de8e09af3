"""End-to-end support: the real `pipetool` command run as a subprocess in a temporary project.

`project` is a folder with helpers to write `pipeline.yaml` and files; `project.pt(*args)`
(also the `pt` fixture) runs `pipetool` there. Commands in test pipelines append their
target's name to `runs.log`, so `project.runs()` says exactly which targets executed.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path


def _pipetool_argv() -> list[str]:
    # The script beside the running interpreter first (the venv under test even when it
    # is not activated), then whatever is on PATH, then the module.
    beside = Path(sys.executable).parent / "pipetool"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("pipetool")
    if found:
        return [found]
    return [sys.executable, "-m", "pipetool"]


PIPETOOL = _pipetool_argv()


def _env(extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> dict[str, str]:
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("PIPETOOL_"):
            del env[k]
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for k in drop:
        env.pop(k, None)
    if extra:
        env.update(extra)
    return env


def _default_sigint() -> None:
    # A pytest started from a non-interactive shell's background job inherits SIGINT
    # ignored, and Python keeps an ignored SIGINT ignored: give the child the default back,
    # as a terminal's ^C would find it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Project:
    def __init__(self, root: Path):
        self.root = root
        self.popened: list[subprocess.Popen] = []
        self.kill_at_end: list[int] = []  # process groups/pids a test may leave running

    # -- files ------------------------------------------------------------------
    def write(self, rel: str, text: str = "", dedent: bool = True) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if dedent else text)
        return path

    def pipeline(self, text: str) -> Path:
        return self.write("pipeline.yaml", text)

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def runs(self) -> list[str]:
        """Target names in the order their commands executed (from runs.log)."""
        log = self.root / "runs.log"
        if not log.exists():
            return []
        return [line.strip() for line in log.read_text().splitlines() if line.strip()]

    def clear_runs(self) -> None:
        (self.root / "runs.log").unlink(missing_ok=True)

    # -- the command ------------------------------------------------------------
    def pt(self, *args: str, timeout: float = 60, env: dict[str, str] | None = None,
           cwd: Path | str | None = None, drop_env: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        return subprocess.run(
            PIPETOOL + [str(a) for a in args], cwd=str(cwd or self.root), env=_env(env, drop_env),
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start pipetool in the background (own session, so a test can clean up its group)."""
        p = subprocess.Popen(
            PIPETOOL + [str(a) for a in args], cwd=str(self.root), env=_env(env),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_default_sigint,  # noqa: PLW1509 - resets one signal, takes no lock
        )
        self.popened.append(p)
        return p

    def wait_for(self, cond: Callable[[], bool], timeout: float = 15, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def wait_file(self, rel: str, timeout: float = 15) -> str:
        """Wait until the file exists and is non-empty; its text."""
        path = self.root / rel

        def ok() -> bool:
            try:
                return path.read_text().strip() != ""
            except FileNotFoundError:
                return False

        self.wait_for(ok, timeout, f"{rel} to be written")
        return path.read_text()


def pid_alive(pid: int) -> bool:
    """True when the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if fields and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            out.append(int(entry))
    return out


def kill_group_quietly(pgid: int) -> None:
    """SIGKILL a process group this test started (or, if `pgid` leads none, that process)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
        return
    except (ProcessLookupError, PermissionError):
        pass
    if pid_alive(pgid):
        try:
            os.kill(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def assert_invalid(res: subprocess.CompletedProcess, *needles: str, project: Project | None = None,
                   one_paragraph: bool = True) -> None:
    """Exit 2, a one-paragraph message naming every needle, no traceback, nothing run.

    (`one_paragraph=False` for command-line usage errors, which keep click's usual
    "Usage: ... / Error: ..." layout.)"""
    err = res.stderr
    print(f"pipetool {' '.join(map(str, res.args[1:]))}\n{err}")  # shown with -rP
    assert res.returncode == 2, f"expected exit 2, got {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{err}"
    assert "Traceback" not in err, err
    assert err.strip(), "no error message"
    if one_paragraph:
        assert "\n\n" not in err.strip(), f"more than one paragraph:\n{err}"
    for n in needles:
        assert n in err, f"{n!r} not in error message:\n{err}"
    if project is not None:
        assert project.runs() == [], "something ran"
        assert not project.exists("runs.log")


def chain(project: Project) -> None:
    """in/a.txt -> a -> out/a.txt -> b -> out/b.txt -> c -> out/c.txt, and independent x
    (in/x.txt -> out/x.txt). Each command appends its target's name to runs.log."""
    project.write("in/a.txt", "alpha\n")
    project.write("in/x.txt", "xray\n")
    project.pipeline("""
        targets:
          a:
            cmd: echo a >> runs.log && cat in/a.txt > out/a.txt
            deps: [in/a.txt]
            outs: [out/a.txt]
          b:
            cmd: echo b >> runs.log && cat out/a.txt > out/b.txt && echo b >> out/b.txt
            deps: [out/a.txt]
            outs: [out/b.txt]
          c:
            cmd: echo c >> runs.log && cat out/b.txt > out/c.txt && echo c >> out/c.txt
            deps: [out/b.txt]
            outs: [out/c.txt]
          x:
            cmd: echo x >> runs.log && cat in/x.txt > out/x.txt
            deps: [in/x.txt]
            outs: [out/x.txt]
        """)


def ok(res: subprocess.CompletedProcess, code: int = 0) -> subprocess.CompletedProcess:
    """Assert the exit status, showing both streams when it differs."""
    assert res.returncode == code, (
        f"expected exit {code}, got {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")
    if code != 1:  # a failing Python target shows its traceback, on purpose
        assert "Traceback" not in res.stderr, res.stderr
    return res


def status_json(project: Project, *args: str) -> dict:
    import json

    res = ok(project.pt("status", "--json", *args))
    return json.loads(res.stdout)


# -- runs, manifests and the cache (issue 4) ----------------------------------------------

def experiment(project: Project) -> None:
    """prep -> train -> eval, with params prep.seed and train.lr, and metrics in JSON
    (train), YAML and TOML (eval). Each command appends its target's name to runs.log."""
    project.pipeline("""
        params:
          prep: {seed: 1}
          train: {lr: 0.01, epochs: 3}
        targets:
          prep:
            cmd: echo prep >> runs.log && echo seed=${prep.seed} > out/prep.txt
            outs: [out/prep.txt]
          train:
            cmd: |-
              echo train >> runs.log && cat out/prep.txt > out/model.txt && echo lr=${train.lr} >> out/model.txt && echo '{"acc": ${train.lr}, "loss": 2, "epochs": ${train.epochs}}' > metrics/train.json
            deps: [out/prep.txt]
            outs: [out/model.txt]
            metrics: [metrics/train.json]
          eval:
            cmd: |-
              echo eval >> runs.log && (echo evaluated; cat out/model.txt) > out/eval.txt && printf 'score: 7\\nname: ev\\n' > metrics/eval.yaml && printf 'loss = 0.5\\n' > metrics/eval.toml
            deps: [out/model.txt]
            outs: [out/eval.txt]
            metrics: [metrics/eval.yaml, metrics/eval.toml]
        """)


def run_json(project: Project, *args: str, code: int = 0, env: dict[str, str] | None = None) -> dict:
    """`pipetool ARGS --json` (run or branch): the parsed result; asserts the exit status."""
    import json

    res = ok(project.pt(*args, "--json", env=env), code)
    return json.loads(res.stdout)


def run_id(project: Project, *args: str, code: int = 0) -> str:
    """Run `pipetool ARGS` (run/branch) and return the id of the run it recorded."""
    rid = run_json(project, *args, code=code)["run_id"]
    assert rid, f"pipetool {' '.join(args)} recorded no run"
    return rid


def runs_json(project: Project) -> list[dict]:
    import json

    return json.loads(ok(project.pt("runs", "--json")).stdout)


def show_json(project: Project, rid: str) -> dict:
    import json

    return json.loads(ok(project.pt("show", rid, "--json")).stdout)


def actions(manifest: dict) -> dict[str, str]:
    """target -> action in a manifest."""
    return {n: t["action"] for n, t in manifest["targets"].items()}


def cache_objects(project: Project) -> dict[str, Path]:
    """digest -> path of every object under .pipetool/cache/objects."""
    base = project.root / ".pipetool" / "cache" / "objects"
    out: dict[str, Path] = {}
    if base.is_dir():
        for d in base.iterdir():
            if d.is_dir():
                for f in d.iterdir():
                    if f.is_file() and not f.name.endswith(".tmp"):
                        out[d.name + f.name] = f
    return out


# -- a run to interrupt ------------------------------------------------------------------------

FAST_THEN_SLOW = """
    targets:
      fast:
        cmd: echo fast >> runs.log && echo f > out/fast.txt
        outs: [out/fast.txt]
      slow:
        cmd: echo slow >> runs.log && echo $$ > pid && sleep $${SLEEP:-30} && cat out/fast.txt > out/slow.txt
        deps: [out/fast.txt]
        outs: [out/slow.txt]
"""


def wait_started(project: Project, proc: subprocess.Popen, rel: str = "pid") -> int:
    """The PID the target's command wrote to `rel`; fails at once if pipetool exited first."""
    path = project.root / rel

    def written() -> bool:
        return (path.exists() and path.read_text().strip() != "") or proc.poll() is not None

    project.wait_for(written, 15, f"{rel} to be written")
    if proc.poll() is not None and not (path.exists() and path.read_text().strip()):
        _out, err = proc.communicate(timeout=5)
        raise AssertionError(f"pipetool exited {proc.returncode} before the target started:\n{err}")
    return int(path.read_text())
