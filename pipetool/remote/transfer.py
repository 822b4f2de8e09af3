"""Moving objects and run-cache entries between the local cache and a remote: in
parallel, skipping what the other side has, and safe to kill at any moment.

- A download is written to a temporary file, checked against its name, and only then
  moved into the local cache; a corrupt or partial one is never used (and remembered, so
  a later upload replaces the remote copy).
- An upload to a local-filesystem remote goes through a temporary name and a rename;
  object stores (S3, GCS, Azure) make an object visible only once it is whole.
- A run-cache entry is uploaded only after every object it names is there
  (`push_builds`), so a killed upload never leaves an entry that points at missing data.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..jsontext import dumps
from ..store.cache import Cache, CacheMiss
from ..store.records import Record
from ..store.runcache import CachedBuild
from .backend import Remote, RemoteError

ENTRY_FORMAT = 1
TRANSFER_JOBS = 16  # requests in flight: object stores answer each in milliseconds
LIST_THRESHOLD = 256  # more objects to check than this: one listing instead of one request each


@dataclass
class Stats:
    """What a transfer did, for the closing line and `--json`."""

    objects_down: int = 0
    bytes_down: int = 0
    objects_up: int = 0
    bytes_up: int = 0
    objects_present: int = 0  # already on the receiving side: skipped
    entries_up: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


class Progress:
    """The progress interface the transfers report through (a no-op unless a terminal):
    `add` objects to move, `advance` by one moved object of `nbytes`."""

    def add(self, objects: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def close(self) -> None: ...


@dataclass
class Transfers:
    remote: Remote
    cache: Cache
    jobs: int = TRANSFER_JOBS
    progress: Progress = field(default_factory=Progress)
    stats: Stats = field(default_factory=Stats)
    corrupt: set[str] = field(default_factory=set)  # remote objects found not to match their name
    sink: Any = None  # where downloads land: a Staging area (default: the local cache)

    def __post_init__(self) -> None:
        if self.sink is None:
            self.sink = self.cache
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._n = 0

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="pipetool-transfer")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.progress.close()

    def _tag(self) -> str:
        with self._lock:
            self._n += 1
            return str(self._n)

    def _call(self, what: str, fn: Callable, *args):
        """One filesystem call; anything but a missing file becomes a RemoteError."""
        try:
            return fn(*args)
        except FileNotFoundError:
            raise
        except RemoteError:
            raise
        except Exception as exc:  # network, credentials, permissions: all backend-specific
            raise RemoteError(f"remote {self.remote.url}: {what}: {type(exc).__name__}: {exc}") from None

    def _map(self, fn: Callable, items: Iterable) -> list:
        """fn over items in the pool; the first RemoteError is raised once all are done."""
        futures: list[Future] = [self.pool.submit(fn, item) for item in items]
        results, error = [], None
        for f in futures:
            try:
                results.append(f.result())
            except RemoteError as exc:
                error = error or exc
                results.append(None)
        if error is not None:
            raise error
        return results

    # -- run-cache entries -----------------------------------------------------------
    def get_entries(self, fingerprints: Iterable[str]) -> dict[str, CachedBuild]:
        """The remote entries among `fingerprints`; an entry that is unreadable or not for
        its fingerprint counts as absent."""
        def one(fp: str):
            try:
                data = self._call("reading a run-cache entry", self.remote.fs.cat_file, self.remote.entry_path(fp))
            except FileNotFoundError:
                return None
            return parse_entry(data, fp)

        fps = list(dict.fromkeys(fingerprints))
        return {fp: e for fp, e in zip(fps, self._map(one, fps)) if e is not None}

    def put_entries(self, entries: list[CachedBuild]) -> None:
        def one(build: CachedBuild) -> None:
            self._write(self.remote.entry_path(build.fingerprint), data=entry_bytes(build))
            with self._lock:
                self.stats.entries_up += 1

        self._map(one, entries)

    # -- objects ---------------------------------------------------------------------
    def download(self, wanted: dict[str, bool]) -> dict[str, str]:
        """Fetch the objects (digest -> is a folder listing) the local cache lacks; returns
        digest -> why, for those that could not be had."""
        todo = [d for d in wanted if not self.sink.has(d)]
        self.stats.objects_present += len(wanted) - len(todo)
        self.progress.add(len(todo))

        def one(digest: str) -> str:
            tmp = self.sink.temp_path(digest, self._tag())
            try:
                self._call("downloading", self.remote.fs.get_file, self.remote.object_path(digest), tmp)
            except FileNotFoundError:
                _unlink(tmp)
                return "missing on the remote"
            except BaseException:
                _unlink(tmp)
                raise
            size = os.path.getsize(tmp)
            if not self.sink.admit(tmp, digest, wanted[digest]):
                with self._lock:
                    self.corrupt.add(digest)
                return "corrupt on the remote (does not match its hash)"
            with self._lock:
                self.stats.objects_down += 1
                self.stats.bytes_down += size
            self.progress.advance(size)
            return ""

        return {d: why for d, why in zip(todo, self._map(one, todo)) if why}

    def remote_sizes(self, digests: list[str]) -> dict[str, int]:
        """Size of each of `digests` the remote has."""
        fs = self.remote.fs
        if len(digests) > LIST_THRESHOLD:
            try:
                found = self._call("listing objects", fs.find, self.remote.objects_dir, None, False, True)
            except FileNotFoundError:
                return {}
            prefix = self.remote.objects_dir.rstrip("/") + "/"
            sizes = {}
            for path, info in found.items():
                rel = path[path.find(prefix) + len(prefix):] if prefix in path else ""
                if len(rel) > 3 and rel[2] == "/":
                    sizes[rel[:2] + rel[3:]] = int(info.get("size") or 0)
            return {d: sizes[d] for d in digests if d in sizes}

        def one(digest: str):
            try:
                return int(self._call("checking objects", fs.info, self.remote.object_path(digest)).get("size") or 0)
            except FileNotFoundError:
                return None

        return {d: s for d, s in zip(digests, self._map(one, digests)) if s is not None}

    def upload(self, digests: Iterable[str]) -> None:
        """Upload the objects the remote lacks (or holds at another size, or corrupt)."""
        digests = list(dict.fromkeys(digests))
        local = {d: self.cache.size_of(d) for d in digests}
        there = self.remote_sizes(digests)
        todo = [d for d in digests if there.get(d) != local[d] or d in self.corrupt]
        self.stats.objects_present += len(digests) - len(todo)
        self.progress.add(len(todo))

        def one(digest: str) -> None:
            self._write(self.remote.object_path(digest), src=self.cache.path_of(digest))
            with self._lock:
                self.stats.objects_up += 1
                self.stats.bytes_up += local[digest]
                self.corrupt.discard(digest)
            self.progress.advance(local[digest])

        self._map(one, todo)

    def _write(self, path: str, src: str | None = None, data: bytes | None = None) -> None:
        fs = self.remote.fs
        final = path
        if self.remote.is_local:  # a temporary name, then a rename: never a partial file
            self._call("creating folders", fs.makedirs, path.rsplit("/", 1)[0], True)
            path = f"{path}.{os.getpid()}-{self._tag()}.tmp"
        try:
            if src is not None:
                self._call("uploading", fs.put_file, src, path)
            else:
                self._call("uploading", fs.pipe_file, path, data)
            if path != final:
                self._call("uploading", fs.mv, path, final)
        except BaseException:
            if path != final:
                try:
                    fs.rm_file(path)
                except Exception:
                    pass
            raise

    # -- whole builds ----------------------------------------------------------------
    def objects_of(self, build: CachedBuild) -> list[str]:
        """Every object a local build needs: its files, its folders' listings and their files."""
        digests = []
        for out, digest in build.outs.items():
            digests.append(digest)
            if out in build.dirs:
                digests.extend(self.cache.listing(digest).values())
        return digests

    def push_builds(self, builds: list[CachedBuild]) -> list[CachedBuild]:
        """Upload builds: all their objects first, then their entries. Returns the builds
        left out because their objects are gone from the local cache (gc)."""
        ready, objects, gone = [], [], []
        for b in builds:
            try:
                digests = self.objects_of(b)
            except CacheMiss:
                digests = None
            if digests is None or not all(self.cache.has(d) for d in digests):
                gone.append(b)
                continue
            ready.append(b)
            objects.extend(digests)
        self.upload(objects)
        self.put_entries(ready)
        return gone

    def fetch_builds(self, builds: dict[str, CachedBuild]) -> dict[str, str]:
        """Download the objects `builds` (by fingerprint) are made of; fingerprint -> why,
        for the builds that could not be had whole."""
        failed: dict[str, str] = {}
        bad = self.download({b.outs[o]: True for b in builds.values() for o in b.dirs})
        files: dict[str, list[str]] = {}  # fingerprint -> the file objects its outs are made of
        for fp, b in builds.items():
            try:
                files[fp] = []
                for out, digest in b.outs.items():
                    if out in b.dirs:
                        if digest in bad:
                            raise CacheMiss(f"object {digest[:12]} {bad[digest]}")
                        files[fp].extend(self.sink.listing(digest).values())
                    else:
                        files[fp].append(digest)
            except CacheMiss as exc:
                failed[fp] = exc.reason
                del files[fp]
        bad.update(self.download({d: False for fs in files.values() for d in fs}))
        for fp, digests in files.items():
            missing = [d for d in digests if d in bad]
            if missing:
                failed[fp] = f"object {missing[0][:12]} {bad[missing[0]]}"
            elif hasattr(self.sink, "uses"):
                self.sink.uses.update(digests)
        return failed


def entry_bytes(build: CachedBuild) -> bytes:
    doc = {"format": ENTRY_FORMAT, "fingerprint": build.fingerprint, "target": build.target,
           "outs": build.outs, "dirs": sorted(build.dirs), "execs": sorted(build.execs),
           "trace": build.trace, "run_id": build.run_id}
    return dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def parse_entry(data: bytes, fingerprint: str) -> CachedBuild | None:
    """A remote entry, or None when it is not a whole, well-formed entry for `fingerprint`."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != ENTRY_FORMAT or doc.get("fingerprint") != fingerprint:
        return None
    outs, dirs, execs = doc.get("outs"), doc.get("dirs"), doc.get("execs")
    if not (isinstance(outs, dict) and all(isinstance(k, str) and isinstance(v, str) and _is_digest(v)
                                           for k, v in outs.items())):
        return None
    if not (isinstance(dirs, list) and set(dirs) <= set(outs) and isinstance(execs, list)
            and all(isinstance(x, str) for x in execs)):
        return None
    trace = doc["trace"] if isinstance(doc.get("trace"), dict) else {}
    run_id = doc.get("run_id") if isinstance(doc.get("run_id"), str) else None
    return CachedBuild(fingerprint, str(doc.get("target", "")), outs, tuple(dirs), trace, run_id, tuple(execs))


def lock_build(target: str, record: Record) -> CachedBuild:
    """The build a lock entry (or record) describes: its outs by digest, folders by their
    trailing "/", modes from its `execs`. Enough to fetch its objects without asking the
    remote for an entry (the outs are checked against their digests as they arrive)."""
    trace = record.trace_dict() or {}
    outs = {o: d for o, d in record.outs.items() if d}
    return CachedBuild(record.fingerprint, target, outs, tuple(o for o in outs if o.endswith("/")), {},
                       None, tuple(trace.get("execs") or ()))


def _is_digest(value: str) -> bool:
    """Object names become paths: only plain hex digests are accepted from a remote."""
    return 16 <= len(value) <= 128 and all(c in "0123456789abcdef" for c in value)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
