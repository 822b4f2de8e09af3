"""One executor for every point of a sweep (SPEC §10: one `-j` for all points).

Each point's run loop is the ordinary scheduler over its own workspace; what it sees as
its executor is a `Lane` of one `SharedExecutor`. Jobs wait in one queue (`JobQueue`, first
come first served, the first whose `--resources` fit) and at most `-j` run at once on the
real executor (local or Dask), made when the first job is submitted. Outcomes are routed
back to the lane of the point that submitted the job.

One thread waits on the real executor and routes each outcome to its lane, and only while
jobs run (so a point is never kept from its own inbox by another's long job). A job a
point *follows* (its fingerprint is being built by
another point, `dedup.py`) is parked in its lane, holding no slot, until that build is
settled; the lane then asks its point what became of it (`Lane.on_follow`).
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from ..errors import EXIT_FAILED, PipetoolError
from ..execute.jobs import Executor, Job, JobKey, Outcome
from ..execute.slots import Slots

Need = tuple[tuple[str, float], ...]
POLL_S = 0.2  # how often a waiting lane looks at the sweep's stop flag


@dataclass(frozen=True)
class PointJobKey(JobKey):
    """A job's key on the shared executor: its target (and check) in point `point`."""

    point: int = 0

    def __str__(self) -> str:
        return f"point{self.point}-{JobKey.__str__(self)}"


class JobQueue:
    """Pure: which waiting jobs start now. At most `jobs` run; in order of submission, the
    first whose declared resources are free goes first (one waiting for a GPU does not hold
    up those behind it that need none)."""

    def __init__(self, jobs: int, capacity: Mapping[str, float]):
        self.jobs = max(1, jobs)
        self.slots = Slots(capacity)
        self.waiting: deque[tuple[JobKey, Job, Need]] = deque()
        self.running: dict[JobKey, Need] = {}

    def push(self, key: JobKey, job: Job, need: Need) -> None:
        self.waiting.append((key, job, tuple((r, a) for r, a in need if r in self.slots.capacity)))

    def start(self) -> list[Job]:
        """The jobs to start now, taken off the queue and counted as running."""
        out: list[Job] = []
        i = 0
        while len(self.running) < self.jobs and i < len(self.waiting):
            key, job, need = self.waiting[i]
            if self.slots.fits(need):
                del self.waiting[i]
                self.slots.take(need)
                self.running[key] = need
                out.append(job)
            else:
                i += 1
        return out

    def finished(self, key: JobKey) -> None:
        self.slots.give(self.running.pop(key, ()))

    def drop(self, point: int) -> None:
        """Forget the waiting jobs of a point that stopped."""
        self.waiting = deque(w for w in self.waiting if getattr(w[0], "point", None) != point)


@dataclass(frozen=True)
class Follow:
    """In a lane's inbox: the build the point's target `name` follows was settled."""

    name: str


# What a point answers when its followed build is settled: delivered as this outcome;
# "build": the lane submits the parked job after all; "wait": it follows another build now.
FollowAnswer = Outcome | Literal["build", "wait"]


class SharedExecutorError(PipetoolError):
    """The sweep's executor failed: every point stops (exit 1)."""

    exit_code = EXIT_FAILED


class SharedExecutor:
    """The real executor (made on first use by `make`) behind a queue, shared by lanes."""

    def __init__(self, make: Callable[[], Executor], jobs: int, capacity: Mapping[str, float],
                 needs: Callable[[Job], Need]):
        self._make, self._needs = make, needs
        self.cond = threading.Condition()
        self.queue = JobQueue(jobs, capacity)
        self.real: Executor | None = None
        self.lanes: dict[int, Lane] = {}
        self.failure: PipetoolError | None = None  # the executor failed: every lane stops
        self.stop: Callable[[], BaseException] | None = None  # set on Ctrl-C/SIGTERM: what lanes raise
        self._closing = False
        self._thread: threading.Thread | None = None

    def lane(self, point: int) -> Lane:
        with self.cond:
            lane = self.lanes[point] = Lane(self, point)
            return lane

    def interrupt(self, make_exc: Callable[[], BaseException]) -> None:
        """Ctrl-C or SIGTERM: no job starts any more, running ones are terminated, every
        waiting lane raises `make_exc()` in its point's run loop."""
        with self.cond:
            self.stop = make_exc
            self.queue.waiting.clear()
            real = self.real
            self.cond.notify_all()
        if real is not None:
            real.cancel_all()

    def close(self, timeout: float = 10.0) -> None:
        """Stop routing (once the jobs still running are done) and close the real executor."""
        with self.cond:
            self._closing = True
            self.cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self.cond:
            real, self.real = self.real, None
        if real is not None:
            real.close()

    # -- the routing thread ---------------------------------------------------------------
    def _dispatch(self) -> None:
        real = self.real
        assert real is not None
        while True:
            with self.cond:
                while not self.queue.running and not self._closing:
                    self.cond.wait()
                if not self.queue.running:
                    return
            try:
                outcome = real.wait_next()
            except BaseException as exc:  # told to every lane, which raise it
                with self.cond:
                    self.failure = exc if isinstance(exc, PipetoolError) else SharedExecutorError(
                        f"the sweep's executor failed: {type(exc).__name__}: {exc}")
                    self.cond.notify_all()
                return
            with self.cond:
                self._route(outcome)

    # -- under self.cond ------------------------------------------------------------------
    def _check(self) -> None:
        if self.stop is not None:
            raise self.stop()
        if self.failure is not None:
            raise self.failure

    def _submit(self, point: int, job: Job) -> None:
        self._check()
        if self.real is None:
            try:
                self.real = self._make()
            except PipetoolError as exc:  # a cluster that would not start: every point stops
                self.failure = exc
                self.cond.notify_all()
                raise
            self._thread = threading.Thread(target=self._dispatch, name="pipetool-sweep-executor", daemon=True)
            self._thread.start()
        key = PointJobKey(job.key.target, job.key.check, point)
        self.queue.push(key, replace(job, key=key), self._needs(job))
        self._pump()

    def _pump(self) -> None:
        assert self.real is not None
        started = self.queue.start()
        for job in started:
            self.real.submit(job)
        if started:
            self.cond.notify_all()

    def _route(self, outcome: Outcome) -> None:
        key = outcome.key
        self.queue.finished(key)
        point = getattr(key, "point", None)
        lane = self.lanes.get(point) if point is not None else None
        if lane is not None and not lane.closed:
            lane.inbox.append(replace(outcome, key=JobKey(key.target, key.check)))
        if self.stop is None and self.failure is None:
            self._pump()
        self.cond.notify_all()


class Lane:
    """The executor one point's run loop sees (the `Executor` protocol)."""

    def __init__(self, shared: SharedExecutor, point: int):
        self.shared, self.point = shared, point
        self.inbox: deque[Outcome | Follow] = deque()
        self.parked: dict[str, Job] = {}  # followed targets' jobs, holding no slot
        self.following: set[str] = set()  # targets whose job is parked when submitted
        self.followed: set[str] = set()  # targets restored after a followed build: checks passed there
        self.on_follow: Callable[[str], FollowAnswer] | None = None
        self.closed = False

    def follow(self, name: str) -> None:
        """The next job of `name` waits for another point's build instead of running."""
        self.following.add(name)

    def settled(self, name: str) -> None:
        """The build `name` follows was settled (called from any point's thread)."""
        with self.shared.cond:
            if not self.closed:
                self.inbox.append(Follow(name))
                self.shared.cond.notify_all()

    def submit(self, job: Job) -> None:
        s = self.shared
        with s.cond:
            s._check()
            name = job.key.target
            if job.key.check is None and name in self.following:
                self.following.discard(name)
                self.parked[name] = job
                return
            if job.key.check is not None and name in self.followed:  # it passed in the point that built it
                self.inbox.append(Outcome(job.key, True, "", 0.0))
                return
            s._submit(self.point, job)

    def wait_next(self) -> Outcome:
        s = self.shared
        while True:
            with s.cond:
                while not self.inbox:
                    s._check()
                    s.cond.wait(POLL_S)
                item = self.inbox.popleft()
            if isinstance(item, Outcome):
                return item
            answer = self._answer(item.name)
            if isinstance(answer, Outcome):
                return answer

    def _answer(self, name: str) -> FollowAnswer:
        assert self.on_follow is not None
        answer = self.on_follow(name)
        job = self.parked.pop(name, None)
        if answer == "wait":
            if job is not None:
                self.parked[name] = job
            return answer
        if answer == "build" and job is not None:
            with self.shared.cond:
                self.shared._submit(self.point, job)
            return answer
        if isinstance(answer, Outcome) and answer.ok:
            self.followed.add(name)
        return answer

    def cancel_all(self) -> None:
        """This point stops: its waiting jobs are dropped; its running ones finish unheard
        (on an interrupt the sweep has already terminated them all)."""
        with self.shared.cond:
            self.closed = True
            self.shared.queue.drop(self.point)
            self.parked.clear()

    def close(self) -> None:
        self.cancel_all()
