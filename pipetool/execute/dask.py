"""The Dask executor (`--executor dask`): each job is one Dask task, submitted the moment
the scheduler in scheduler.py launches it, so that scheduler stays the only one deciding
order, early cutoff and resource slots; Dask only places tasks on workers.

Workers must see the project directory at the same path (a shared filesystem): that is
checked on every worker before the first target runs. Workers run jobs, nothing more:
records, manifests and the lock are written by the pipetool process alone.
`distributed` is imported only here, and only when this executor is chosen.
"""
from __future__ import annotations

import logging
import os
import queue
import secrets
import signal
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..errors import PipetoolError, UsageError
from .daskworker import probe, run_job, stop_run
from .jobs import Job, JobKey, Outcome

TERM_GRACE_S = 3.0
CONNECT_TIMEOUT_S = 10


class ClusterError(PipetoolError):
    """The Dask cluster cannot run this project: unreachable, no workers, or a worker
    that does not see the project directory (exit 2, nothing has run)."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise UsageError('--executor dask needs Dask\'s distributed scheduler: pip install "pipetool[dask]"') from None
    return distributed


def connect(address: str):
    distributed = _distributed()
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def workers_of(client, address: str) -> dict[str, dict[str, Any]]:
    """The cluster's workers (address -> info); an error when there are none."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if not workers:
        raise ClusterError(f"the Dask cluster at {address} has no workers: start some "
                           f"(`dask worker {address}`) and run again")
    return workers


def preflight(address: str | None, root: str) -> int | None:
    """Before a run is recorded: Dask is installed and, for an external cluster, it is
    reachable, has workers and each sees `root`; its worker threads (-j by default)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("distributed") is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        found = False
    if not found:
        _distributed()  # the error that says what to install
    if address is None:
        return None
    client = connect(address)
    try:
        workers = workers_of(client, address)
        check_workers_see(client, root, workers)
        return sum(int(w.get("nthreads", 1)) for w in workers.values())
    finally:
        client.close()


def check_workers_see(client, root: str, workers: Mapping[str, Any]) -> None:
    """Every worker must read a token written here under `root`, and write one back that
    we read: then they share the project directory with us at the same path."""
    tmp = os.path.join(root, ".pipetool", "tmp")
    os.makedirs(tmp, exist_ok=True)
    token = secrets.token_hex(16)
    path = os.path.join(tmp, f"probe-{token[:12]}")
    with open(path, "w") as f:
        f.write(token)
    replies: dict[str, Any] = {}
    try:
        replies = client.run(probe, path, token, workers=list(workers), on_error="return")
        for addr in sorted(workers):
            reply = replies.get(addr)
            name = workers[addr].get("name", addr)
            who = addr if str(name) == addr else f"{addr} ({name})"
            if not isinstance(reply, str):  # it could not even run the probe
                raise ClusterError(f"Dask worker {who} cannot run pipetool's probe ({reply!r}): "
                                   "workers need pipetool installed, in this version")
            why = reply[1:] if reply.startswith("!") else _read_back(reply, token)
            if why:
                raise ClusterError(
                    f"Dask worker {who} does not see the project directory {root} ({why}); "
                    "workers must share the project's filesystem at the same path")
    finally:
        for p in [path] + [r for r in replies.values() if isinstance(r, str) and not r.startswith("!")]:
            try:
                os.unlink(p)
            except OSError:
                pass


def _read_back(reply: str, token: str) -> str:
    try:
        with open(reply, "rb") as f:
            ok = f.read() == token.encode()
    except OSError:
        ok = False
    return "" if ok else f"what it wrote at {reply} is not seen here"


def _local_cluster(distributed, jobs: int):
    """A cluster of `jobs` one-thread worker processes on this machine. Its workers ignore
    SIGINT: a terminal's ^C goes to the whole process group, and a worker that died of it
    could no longer stop the commands it started; pipetool stops them itself."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        # No dashboard; the scheduler's HTTP server (health, metrics) on a free loopback
        # port, not on 8787, which another cluster may hold.
        return distributed.LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR,
                                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    finally:
        if main:
            signal.signal(signal.SIGINT, old)


class DaskExecutor:
    def __init__(self, root: str, jobs: int, scheduler: str | None,
                 needs: Mapping[str, tuple[tuple[str, float], ...]]):
        distributed = _distributed()
        self._cluster = None
        if scheduler:
            self.client = connect(scheduler)
        else:
            self._cluster = _local_cluster(distributed, max(1, jobs))
            self.client = distributed.Client(self._cluster, set_as_default=False)
            scheduler = self._cluster.scheduler_address
        try:
            workers = workers_of(self.client, scheduler)
            check_workers_see(self.client, root, workers)
        except BaseException:
            self.close()
            raise
        # The most of each resource one worker declares: Dask would wait forever for more.
        self._most: dict[str, float] = {}
        for w in workers.values():
            for name, amount in (w.get("resources") or {}).items():
                self._most[name] = max(self._most.get(name, 0.0), float(amount))
        self._needs = needs
        self._token = secrets.token_hex(8)  # this run's children on the workers
        self._done: queue.Queue[Outcome] = queue.Queue()
        self._futures: dict[JobKey, Any] = {}
        self._lock = threading.Lock()

    def submit(self, job: Job) -> None:
        # A check asks for what its target holds: it runs on what the target ran on.
        need = self._needs.get(job.key.target, ())
        resources = {name: amount for name, amount in need if name in self._most}
        for name, amount in resources.items():
            if amount > self._most[name]:
                self._done.put(Outcome(job.key, False, f"needs {name}={amount:g}, more than any "
                                                          f"Dask worker has ({name}={self._most[name]:g})"))
                return
        key = f"pipetool-{job.key}-{self._token}"
        fut = self.client.submit(run_job, job, self._token, key=key, pure=False,
                                 resources=resources or None)
        with self._lock:
            self._futures[job.key] = fut
        fut.add_done_callback(lambda f, key=job.key: self._collect(key, f))

    def _collect(self, key: JobKey, fut) -> None:
        """Runs on Dask's callback thread: the outcome into the queue wait_next reads."""
        with self._lock:
            self._futures.pop(key, None)
        try:
            outcome = fut.result()
        except BaseException as exc:  # cancelled, or the task died with its worker
            outcome = Outcome(key, False, f"the Dask task failed: {type(exc).__name__}: {exc}")
        self._done.put(outcome)

    def wait_next(self) -> Outcome:
        while True:  # a timeout keeps the main thread responsive to SIGINT
            try:
                return self._done.get(timeout=0.2)
            except queue.Empty:
                continue

    def cancel_all(self) -> None:
        """Cancel the tasks not started, then stop this run's children on every worker:
        SIGTERM to their process groups, SIGKILL to those alive after the grace time."""
        with self._lock:
            futures = list(self._futures.values())
        if futures:
            self.client.cancel(futures)
        alive = self._signal(signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = self._signal(0)
        if alive:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> int:
        replies = self.client.run(stop_run, self._token, int(sig), on_error="return")
        return sum(r for r in replies.values() if isinstance(r, int))

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
