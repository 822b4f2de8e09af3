"""The pure parts of `pipetool sweep` (SPEC §10), each against fakes: the store's sweep
records and its format-3 upgrade, the point workspace's symlink-forest plan, the shared
executor's queue, and the registry that builds a fingerprint once for all points."""
from __future__ import annotations

import os
import sqlite3

from pipetool.store import runs as store_runs
from pipetool.store.db import FORMAT_VERSION, db_path, open_db

FORMAT_3 = """
CREATE TABLE stat (path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER,
    hashed_at_ns INTEGER, digest TEXT);
CREATE TABLE records (target TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, trace TEXT NOT NULL,
    outs TEXT NOT NULL, run_id TEXT, built_at REAL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (id TEXT PRIMARY KEY, parent TEXT, status TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, pid INTEGER, argv TEXT, params TEXT, overrides TEXT, metrics TEXT, changed TEXT, kind TEXT);
CREATE TABLE run_targets (run_id TEXT NOT NULL, target TEXT NOT NULL, action TEXT NOT NULL, fingerprint TEXT,
    reason TEXT, duration_s REAL, outs TEXT, checks TEXT, PRIMARY KEY (run_id, target));
CREATE TABLE run_cache (fingerprint TEXT PRIMARY KEY, target TEXT NOT NULL, outs TEXT NOT NULL,
    dirs TEXT NOT NULL, trace TEXT NOT NULL, run_id TEXT, created_at REAL, execs TEXT);
INSERT INTO stat VALUES (X'612e747874', 1, 2, 3, 4, 5, 'd');
INSERT INTO runs VALUES ('r1', NULL, 'succeeded', 't0', 't1', NULL, '[]', '{}', '{}', '{}', '[]', 'run');
PRAGMA user_version=3;
"""


def _format_3_store(root) -> None:
    os.makedirs(root / ".pipetool")
    old = sqlite3.connect(db_path(str(root)))
    old.executescript(FORMAT_3)
    old.close()


# -- the store ---------------------------------------------------------------------------------

def test_a_format_3_store_is_upgraded_in_place_keeping_runs_and_the_stat_cache(tmp_path):
    _format_3_store(tmp_path)
    conn = open_db(str(tmp_path))
    assert conn is not None
    assert FORMAT_VERSION == 4
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    assert conn.execute("SELECT count(*) FROM stat").fetchone()[0] == 1
    assert [(s["id"], s["sweep"]) for s in store_runs.summaries(conn)] == [("r1", None)]
    store_runs.start(conn, "r2", "r1", ["pipetool", "sweep"], "t2", {}, {"a": 1}, [], "sweep", sweep="s1")
    assert store_runs.manifest(conn, "r2")["sweep"] == "s1"
    assert [r["id"] for r in store_runs.sweep_runs(conn, "s1")] == ["r2"]
    conn.close()


def test_a_read_only_format_3_store_still_answers_runs_with_no_sweeps(tmp_path):
    """Opened read-only (`mode=ro`, as on read-only media: even root cannot write through
    it), a format-3 store is read as it is: runs without sweeps."""
    from urllib.parse import quote

    from pipetool.errors import UsageError
    from pipetool.store import db

    _format_3_store(tmp_path)
    path = db_path(str(tmp_path))
    conn = db._open(f"file:{quote(path)}?mode=ro", path, read_only=True)
    db._upgrade(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert (conn.format, conn.stat_usable) == (3, True)
    assert [(s["id"], s["sweep"]) for s in store_runs.summaries(conn)] == [("r1", None)]
    assert store_runs.manifest(conn, "r1")["sweep"] is None
    assert store_runs.sweep_runs(conn, "s1") == []
    try:
        store_runs.resolve_sweep(conn, None)
        raise AssertionError("a format-3 store has no sweeps")
    except UsageError as exc:
        assert "no recorded sweeps" in exc.message
    conn.close()


def test_sweeps_are_recorded_and_found_by_prefix_or_as_the_last(tmp_path):
    from pipetool.errors import UsageError

    conn = open_db(str(tmp_path))
    assert conn is not None
    space = {"kind": "grid", "axes": []}
    store_runs.start_sweep(conn, "0abc0001", None, "t0", ["pipetool", "sweep"], space, ["train"], {"jobs": 2})
    store_runs.start_sweep(conn, "0abd0002", "r1", "t1", ["pipetool", "sweep"], space, [], {})
    assert store_runs.resolve_sweep(conn, None) == "0abd0002"
    assert store_runs.resolve_sweep(conn, "last") == "0abd0002"
    assert store_runs.resolve_sweep(conn, "0abc") == "0abc0001"
    for ref, needle in (("0ab", "too short"), ("0abx", "no sweep matches"), ("0ab0", "no sweep matches")):
        try:
            store_runs.resolve_sweep(conn, ref)
            raise AssertionError(ref)
        except UsageError as exc:
            assert needle in exc.message
    rec = store_runs.sweep_record(conn, "0abc0001")
    assert (rec["status"], rec["targets"], rec["options"], rec["space"]) == ("running", ["train"], {"jobs": 2}, space)
    store_runs.finish_sweep(conn, "0abc0001", "failed", "t9")
    assert store_runs.sweep_record(conn, "0abc0001")["status"] == "failed"
    conn.close()


# -- the point workspace: a symlink forest of the project ---------------------------------------

def _lister(tree: dict[str, list[tuple[str, str]]]):
    from pipetool.sweeps.forest import Entry

    def listdir(rel: str):
        return [Entry(name, kind) for name, kind in tree.get(rel, [])]  # type: ignore[arg-type]
    return listdir


PROJECT = {
    "": [("pipeline.yaml", "file"), ("src", "dir"), ("data", "dir"), ("out", "dir"), (".pipetool", "dir"),
         ("pipetool.lock", "file"), ("latest", "link"), ("runs.log", "file")],
    "data": [("raw", "dir"), ("prepared", "dir"), ("big.bin", "file")],
    "out": [("a.txt", "file"), ("keep", "dir"), ("shared", "linkdir")],
    "out/shared": [("s.txt", "file")],
    "res": [],
}


def test_the_forest_makes_real_folders_above_outs_and_links_everything_else():
    from pipetool.sweeps.forest import plan_forest

    plan = plan_forest(_lister(PROJECT), ["out/a.txt", "out/shared/new.txt", "data/prepared/"])
    assert plan.dirs == ("data", "out", "out/shared")
    assert sorted(plan.links) == ["data/big.bin", "data/prepared", "data/raw", "out/a.txt", "out/keep",
                                  "out/shared/s.txt", "pipeline.yaml", "runs.log", "src"]
    assert plan.copies == ("latest",)  # the project's own symlink, made again as it is


def test_the_forest_never_links_pipetools_state_nor_the_lock():
    from pipetool.sweeps.forest import plan_forest

    plan = plan_forest(_lister(PROJECT), [])
    assert ".pipetool" not in plan.links + plan.dirs and "pipetool.lock" not in plan.links
    assert sorted(plan.links) == ["data", "out", "pipeline.yaml", "runs.log", "src"]


def test_a_foreach_folder_is_real_all_the_way_down_and_outs_a_run_provides_are_left_out():
    from pipetool.sweeps.forest import plan_forest

    tree = {**PROJECT, "data/prepared": [("x", "dir"), ("y.csv", "file")], "data/prepared/x": [("z", "file")]}
    plan = plan_forest(_lister(tree), ["out/a.txt"], deep=["data/prepared/"], leave_out=["out/a.txt"])
    assert sorted(plan.dirs) == ["data", "data/prepared", "data/prepared/x", "out"]
    assert plan.dirs.index("data/prepared") < plan.dirs.index("data/prepared/x")  # parents first
    assert "out/a.txt" not in plan.links and "out/shared" in plan.copies  # the project's symlink
    assert {"data/prepared/x/z", "data/prepared/y.csv", "out/keep"} <= set(plan.links)


def test_a_point_folder_hashes_as_the_project_does_through_its_links(tmp_path):
    from pipetool.fingerprint.hashing import Hasher
    from pipetool.store.statcache import StatCache
    from pipetool.sweeps.forest import make_forest, plan_forest, project_lister
    from pipetool.sweeps.pointfs import PointHasher, PointStats

    proj = tmp_path / "proj"
    for rel, text in (("data/raw/a.csv", "1\n"), ("data/raw/b.csv", "2\n"), ("data/prepared/p.txt", "p"),
                      ("src/m.py", "x = 1\n")):
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text(text)
    plan = plan_forest(project_lister(str(proj)), ["data/prepared/"])
    point = tmp_path / "point"
    make_forest(plan, str(proj), str(point))
    assert (point / "data").is_dir() and not (point / "data").is_symlink()
    assert os.readlink(point / "data" / "raw") == str(proj / "data" / "raw")
    base = StatCache(None)
    ph = PointHasher(str(point), PointStats(base), project_root=str(proj))
    assert ph.digest("data/") == Hasher(str(proj), base).digest("data/")
    assert ph.dir_listing("data") == Hasher(str(proj)).dir_listing("data")
    make_forest(plan, str(proj), str(point))  # made afresh: nothing of the project is touched
    assert sorted(p.name for p in (proj / "data" / "raw").iterdir()) == ["a.csv", "b.csv"]


def test_a_point_restores_from_the_cache_as_links_and_never_uses_a_corrupt_object(tmp_path):
    from pipetool.fingerprint.hashing import hash_file_contents
    from pipetool.store.cache import Cache, CacheMiss
    from pipetool.sweeps.pointfs import PointCache

    proj, point = tmp_path / "proj", tmp_path / "point"
    (proj / "out").mkdir(parents=True)
    (proj / "out" / "m.bin").write_bytes(b"model")
    digest = hash_file_contents(str(proj / "out" / "m.bin"))
    Cache(str(proj)).store_file(str(proj / "out" / "m.bin"), digest)
    (point / "out").mkdir(parents=True)
    cache = PointCache(str(point), state_root=str(proj))
    cache.restore_outs({"out/m.bin": digest}, [])
    link = point / "out" / "m.bin"
    assert link.is_symlink() and os.readlink(link) == Cache(str(proj)).path_of(digest)
    assert link.read_bytes() == b"model"
    obj = Cache(str(proj)).path_of(digest)
    os.chmod(obj, 0o644)
    with open(obj, "wb") as f:
        f.write(b"evil!")
    fresh = PointCache(str(point), state_root=str(proj))  # a new sweep checks each object once
    try:
        fresh.restore_outs({"out/m.bin": digest}, [])
        raise AssertionError("a corrupt object was linked")
    except CacheMiss as exc:
        assert "corrupt" in exc.reason
    assert not os.path.exists(obj)


# -- the shared executor ------------------------------------------------------------------------

def _job(name: str, check: int | None = None):
    from pipetool.execute.jobs import Job, JobKey

    return Job(JobKey(name, check), "/nonexistent", {}, "/nonexistent/log", cmd=f"make {name}")


def test_the_queue_starts_at_most_j_jobs_in_order_and_skips_one_whose_resources_are_taken():
    from pipetool.execute.jobs import JobKey
    from pipetool.sweeps.shared import JobQueue, PointJobKey

    q = JobQueue(2, {"gpu": 1})
    keys = [PointJobKey("a", None, 1), PointJobKey("b", None, 2), PointJobKey("c", None, 3),
            PointJobKey("d", None, 4)]
    q.push(keys[0], _job("a"), (("gpu", 1),))
    q.push(keys[1], _job("b"), (("gpu", 1), ("mem", 9)))
    q.push(keys[2], _job("c"), ())
    q.push(keys[3], _job("d"), ())
    assert [j.key.target for j in q.start()] == ["a", "c"]  # b waits for the GPU; c goes past it
    assert q.start() == []
    q.finished(keys[2])
    assert [j.key.target for j in q.start()] == ["d"]
    q.finished(keys[0])
    assert [j.key.target for j in q.start()] == ["b"]
    q.drop(2)
    assert not q.waiting and keys[0] != JobKey("a")  # a point's key is not the plain target's


class FakeReal:
    """A real executor whose jobs finish when the test says so (no sleeps)."""

    def __init__(self):
        import queue

        self.submitted: list = []
        self.done: queue.Queue = queue.Queue()
        self.cancelled = self.closed = False

    def submit(self, job) -> None:
        self.submitted.append(job.key)

    def finish(self, i: int, ok: bool = True) -> None:
        from pipetool.execute.jobs import Outcome

        self.done.put(Outcome(self.submitted[i], ok, "" if ok else "boom", 1.0))

    def wait_next(self):
        return self.done.get(timeout=60)

    def cancel_all(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        self.closed = True


def test_the_shared_executor_runs_j_jobs_of_all_points_and_routes_each_outcome_to_its_point():
    from pipetool.execute.jobs import JobKey
    from pipetool.sweeps.shared import SharedExecutor

    real = FakeReal()
    shared = SharedExecutor(lambda: real, 1, {}, lambda job: ())
    one, two = shared.lane(1), shared.lane(2)
    one.submit(_job("train"))
    two.submit(_job("train"))
    assert [(k.target, k.point) for k in real.submitted] == [("train", 1)]  # -j 1: the second waits
    real.finish(0)
    assert one.wait_next().key == JobKey("train")
    assert [(k.target, k.point) for k in real.submitted] == [("train", 1), ("train", 2)]
    real.finish(1, ok=False)
    got = two.wait_next()
    assert (got.key, got.ok, got.message) == (JobKey("train"), False, "boom")
    shared.close()
    assert real.closed


def test_a_followed_job_holds_no_slot_and_ends_as_its_point_says():
    from pipetool.execute.jobs import JobKey, Outcome
    from pipetool.sweeps.shared import SharedExecutor

    real = FakeReal()
    shared = SharedExecutor(lambda: real, 1, {}, lambda job: ())
    lane = shared.lane(7)
    lane.on_follow = lambda name: Outcome(JobKey(name), True, "", 0.0)
    lane.follow("prep")
    lane.submit(_job("prep"))
    lane.submit(_job("other"))
    assert [k.target for k in real.submitted] == ["other"]  # prep is parked: the one slot is other's
    lane.settled("prep")
    assert lane.wait_next() == Outcome(JobKey("prep"), True, "", 0.0)
    lane.submit(_job("prep", 0))  # its check passed where it was built
    assert lane.wait_next() == Outcome(JobKey("prep", 0), True, "", 0.0)
    assert [k.target for k in real.submitted] == ["other"]
    real.finish(0)
    assert lane.wait_next().key == JobKey("other")
    shared.close()


def test_an_interrupt_stops_every_lane_and_terminates_the_running_jobs():
    from pipetool.sweeps.shared import SharedExecutor

    real = FakeReal()
    shared = SharedExecutor(lambda: real, 2, {}, lambda job: ())
    lane = shared.lane(1)
    lane.submit(_job("a"))
    shared.interrupt(KeyboardInterrupt)
    assert real.cancelled
    for call in (lane.wait_next, lambda: lane.submit(_job("b"))):
        try:
            call()
            raise AssertionError("not interrupted")
        except KeyboardInterrupt:
            pass
    real.finish(0)  # the cancelled job's outcome still arrives: the routing thread ends
    shared.close()


# -- shared work once ---------------------------------------------------------------------------

def test_the_first_point_claims_a_fingerprint_and_the_others_follow_it():
    from pipetool.sweeps.dedup import Builds

    builds, woken = Builds(), []
    assert builds.claim("fp", "prep", 1, "r1", lambda: woken.append(1)) is None
    other = builds.claim("fp", "prep", 2, "r2", lambda: woken.append(2))
    assert other is not None and (other.point, other.run_id, other.ok) == (1, "r1", None)
    assert builds.owned("fp", 1) and not builds.owned("fp", 2)
    builds.settle("fp", 2, True)  # not its build: nothing happens
    assert woken == []
    builds.settle("fp", 1, True)
    assert woken == [2] and other.ok is True
    assert builds.claim("fp", "prep", 3, "r3", lambda: None) is None  # done: the next one restores it


def test_a_failed_build_fails_those_that_follow_and_is_not_run_again_while_an_abandoned_one_is():
    from pipetool.sweeps.dedup import Builds

    builds = Builds()
    assert builds.claim("bad", "t", 1, "r1", lambda: None) is None
    builds.settle("bad", 1, False, "exit 1")
    failed = builds.claim("bad", "t", 2, "r2", lambda: None)
    assert failed is not None and failed.ok is False
    assert failed.failure() == "exit 1 (built once for the sweep, by point 1: run r1)"
    assert builds.claim("gone", "t", 1, "r1", lambda: None) is None
    woken: list[int] = []
    assert builds.claim("gone", "t", 2, "r2", lambda: woken.append(2)) is not None
    builds.abandon(1)
    assert woken == [2]
    assert builds.claim("gone", "t", 2, "r2", lambda: None) is None  # claimed afresh
