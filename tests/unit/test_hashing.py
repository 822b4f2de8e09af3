"""hashing: content digests of files, folders and globs, gated by a persistent stat cache that
follows git's racily-clean rule."""
from __future__ import annotations

import os
import time

import pytest
import xxhash

from pipetool.fingerprint import hashing
from pipetool.fingerprint.hashing import RACY_WINDOW_NS, Hasher, hash_file_contents
from pipetool.spec.paths import is_glob
from pipetool.store.db import open_db
from pipetool.store.statcache import StatCache, StatEntry

OLD_NS = 1_500_000_000 * 10**9  # 2017: safely older than any hashing moment


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "proj"
    r.mkdir()
    return r


@pytest.fixture
def conn(root):
    c = open_db(str(root))
    yield c
    c.close()


@pytest.fixture
def hashed(monkeypatch):
    """Spy: the list of paths whose contents were read and hashed."""
    calls: list[str] = []
    real = hashing.hash_file_contents

    def spy(path, *args, **kwargs):
        calls.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(hashing, "hash_file_contents", spy)
    return calls


def write(root, rel: str, data: bytes | str, mtime_ns: int | None = None) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime_ns is not None:
        os.utime(p, ns=(mtime_ns, mtime_ns))


def fresh_hasher(root, conn=None) -> Hasher:
    """A new invocation: a new Hasher over the stat cache as persisted in the store."""
    return Hasher(str(root), StatCache(conn) if conn is not None else None)


# --- files ------------------------------------------------------------------------

def test_a_file_digest_is_the_xxh3_128_of_its_bytes(root):
    write(root, "a.txt", b"hello\n")
    assert fresh_hasher(root).file_digest("a.txt") == xxhash.xxh3_128_hexdigest(b"hello\n")


def test_large_files_hash_the_same_streamed_as_in_one_piece(root):
    data = os.urandom(3 * 1024 * 1024 + 17)
    write(root, "big.bin", data)
    expected = xxhash.xxh3_128_hexdigest(data)
    assert hash_file_contents(str(root / "big.bin")) == expected
    assert fresh_hasher(root).file_digest("big.bin") == expected


def test_an_empty_file_has_a_digest(root):
    write(root, "empty", b"")
    assert fresh_hasher(root).file_digest("empty") == xxhash.xxh3_128_hexdigest(b"")


def test_a_missing_path_has_no_digest(root):
    h = fresh_hasher(root)
    assert h.file_digest("nope.txt") is None
    assert h.path_digest("nope/") is None
    assert h.digest("nope/x.txt") is None


def test_file_digests_depend_on_content_not_on_name(root):
    write(root, "a.txt", "same")
    write(root, "b.txt", "same")
    write(root, "c.txt", "different")
    h = fresh_hasher(root)
    assert h.digest("a.txt") == h.digest("b.txt") != h.digest("c.txt")


def test_a_file_is_hashed_at_most_once_per_invocation(root, hashed):
    write(root, "a.txt", "x")
    h = fresh_hasher(root)
    first = h.digest("a.txt")
    assert h.digest("a.txt") == h.file_digest("a.txt") == first
    assert hashed == ["a.txt"]


def test_forget_makes_the_next_digest_look_again(root):
    write(root, "out/a.txt", "one")
    h = fresh_hasher(root)
    before_file, before_dir = h.digest("out/a.txt"), h.digest("out/")
    write(root, "out/a.txt", "two!")
    assert h.digest("out/a.txt") == before_file  # memoized for this invocation
    h.forget("out/")
    assert h.digest("out/a.txt") != before_file
    assert h.digest("out/") != before_dir


# --- directories --------------------------------------------------------------------

@pytest.fixture
def data_dir(root):
    write(root, "data/a.csv", "1,2\n")
    write(root, "data/b.csv", "3,4\n")
    write(root, "data/sub/c.csv", "5,6\n")
    return root


def dir_digest(root, rel="data/"):
    return fresh_hasher(root).digest(rel)


def test_a_directory_digest_is_stable(data_dir):
    assert dir_digest(data_dir) == dir_digest(data_dir)
    assert dir_digest(data_dir, "data/") == dir_digest(data_dir, "data")


def test_a_directory_digest_changes_when_a_file_below_changes(data_dir):
    before = dir_digest(data_dir)
    write(data_dir, "data/sub/c.csv", "5,7\n")
    assert dir_digest(data_dir) != before


def test_a_directory_digest_changes_when_a_file_is_added(data_dir):
    before = dir_digest(data_dir)
    write(data_dir, "data/sub/deeper/d.csv", "")
    assert dir_digest(data_dir) != before


def test_a_directory_digest_changes_when_a_file_is_removed(data_dir):
    before = dir_digest(data_dir)
    (data_dir / "data" / "b.csv").unlink()
    assert dir_digest(data_dir) != before


def test_a_directory_digest_changes_when_a_file_is_renamed(data_dir):
    before = dir_digest(data_dir)
    os.rename(data_dir / "data" / "b.csv", data_dir / "data" / "b2.csv")
    assert dir_digest(data_dir) != before


def test_a_directory_digest_changes_when_a_file_moves_to_a_subfolder(data_dir):
    before = dir_digest(data_dir)
    os.rename(data_dir / "data" / "b.csv", data_dir / "data" / "sub" / "b.csv")
    assert dir_digest(data_dir) != before


def test_a_directory_digest_does_not_depend_on_the_folders_own_name(root):
    for d in ("x", "y"):
        write(root, f"{d}/a.txt", "a")
        write(root, f"{d}/s/b.txt", "b")
    h = fresh_hasher(root)
    assert h.digest("x/") == h.digest("y/")


def test_a_directory_digest_distinguishes_moving_content_between_names(root):
    write(root, "x/a", "1")
    write(root, "x/b", "2")
    write(root, "y/a", "2")
    write(root, "y/b", "1")
    h = fresh_hasher(root)
    assert h.digest("x/") != h.digest("y/")


def test_an_empty_directory_has_a_digest_unlike_a_missing_one(root):
    (root / "empty").mkdir()
    assert fresh_hasher(root).digest("empty/") is not None


# --- globs ----------------------------------------------------------------------------

def test_is_glob():
    assert is_glob("data/*.csv") and is_glob("a?.txt") and is_glob("x[0-9]")
    assert not is_glob("data/a.csv") and not is_glob("data/")


def test_a_glob_digest_changes_when_a_matched_file_changes(data_dir):
    before = dir_digest(data_dir, "data/*.csv")
    write(data_dir, "data/a.csv", "changed\n")
    assert dir_digest(data_dir, "data/*.csv") != before


def test_a_glob_digest_changes_when_a_match_is_added_or_renamed(data_dir):
    before = dir_digest(data_dir, "data/*.csv")
    write(data_dir, "data/new.csv", "")
    added = dir_digest(data_dir, "data/*.csv")
    assert added != before
    os.rename(data_dir / "data" / "new.csv", data_dir / "data" / "renamed.csv")
    assert dir_digest(data_dir, "data/*.csv") not in (before, added)


def test_a_glob_digest_ignores_files_it_does_not_match(data_dir):
    before = dir_digest(data_dir, "data/*.csv")
    write(data_dir, "data/notes.txt", "x")
    write(data_dir, "data/sub/d.csv", "x")  # `*` does not cross folders
    assert dir_digest(data_dir, "data/*.csv") == before


def test_a_recursive_glob_covers_subfolders(data_dir):
    before = dir_digest(data_dir, "data/**/*.csv")
    write(data_dir, "data/sub/d.csv", "x")
    assert dir_digest(data_dir, "data/**/*.csv") != before


def test_a_glob_digest_covers_the_matched_names_not_only_the_contents(root):
    write(root, "a/x.csv", "same")
    write(root, "b/y.csv", "same")
    h = fresh_hasher(root)
    assert h.digest("a/*.csv") != h.digest("b/*.csv")


def test_a_glob_matching_nothing_has_no_digest(root):
    assert fresh_hasher(root).digest("data/*.csv") is None


def test_glob_paths_are_sorted_posix_paths(data_dir):
    assert fresh_hasher(data_dir).glob_paths("data/**/*.csv") == ["data/a.csv", "data/b.csv", "data/sub/c.csv"]


# --- the stat cache ---------------------------------------------------------------------
# An entry is trusted only when the file's last change is safely older than the moment it
# was hashed (git's racily-clean rule). `last_change` is the newest of mtime and ctime (ctime
# follows every write, even one that restores an old mtime).

def last_change(path) -> int:
    st = os.stat(path)
    return max(st.st_mtime_ns, st.st_ctime_ns)


def window_for(t_ns: int) -> int:
    fn = getattr(hashing, "racy_window_ns", None)
    return fn(t_ns) if fn else RACY_WINDOW_NS


def settle(*paths) -> None:
    """Wait until the files are safely older than the racy window (a real clock, no fakes)."""
    t = max(last_change(p) for p in paths)
    while time.time_ns() <= t + window_for(t) + 1_000_000:
        time.sleep(0.01)


def freeze_clock(monkeypatch, now_ns: int) -> None:
    """The clock reads `now_ns` (the hashing moment is made explicit), and any sleep fails
    the test: the racy rule must never wait for the clock."""
    def no_sleep(seconds):
        raise AssertionError(f"slept {seconds}s")

    monkeypatch.setattr(time, "time_ns", lambda: now_ns)
    monkeypatch.setattr(time, "sleep", no_sleep)
    for name, fake in (("time_ns", lambda: now_ns), ("sleep", no_sleep)):
        if hasattr(hashing, name):  # in case the module imported the function by name
            monkeypatch.setattr(hashing, name, fake)


def make_entry(root, rel: str, hashed_at_ns: int, digest: str) -> StatEntry:
    """A StatEntry for the file as it stands, whatever fields this version keys on."""
    st = os.stat(root / rel)
    values = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
              "inode": st.st_ino, "hashed_at_ns": hashed_at_ns, "digest": digest}
    return StatEntry(**{f: values[f] for f in StatEntry._fields})


def test_an_unchanged_file_is_not_rehashed_by_the_next_invocation(root, conn, hashed):
    write(root, "a.txt", "content")
    write(root, "d/b.txt", "more")
    settle(root / "a.txt", root / "d/b.txt")
    h1 = fresh_hasher(root, conn)
    first = (h1.digest("a.txt"), h1.digest("d/"))
    h1.cache.flush()
    assert sorted(hashed) == ["a.txt", "b.txt"]
    hashed.clear()
    h2 = fresh_hasher(root, conn)
    assert (h2.digest("a.txt"), h2.digest("d/")) == first
    assert hashed == []


def test_the_stat_cache_persists_in_the_sqlite_store(root, conn):
    write(root, "a.txt", "content", mtime_ns=OLD_NS)
    h = fresh_hasher(root, conn)
    digest = h.digest("a.txt")
    h.cache.flush()
    conn.close()
    conn2 = open_db(str(root))
    try:
        rows = conn2.execute("SELECT path, size, mtime_ns, digest FROM stat").fetchall()
        assert rows == [(b"a.txt", 7, OLD_NS, digest)]  # keyed by the path's bytes
        entry = StatCache(conn2).get("a.txt")
        assert entry is not None and entry.digest == digest and entry.hashed_at_ns > OLD_NS
    finally:
        conn2.close()


def test_a_file_name_that_is_not_utf8_is_stat_cached_by_its_bytes(root, conn, hashed, monkeypatch):
    name = os.fsdecode(b"caf\xe9.txt")  # as os.scandir gives it: with a lone surrogate
    (root / "d").mkdir()
    path = os.path.join(os.fsencode(root), b"d", b"caf\xe9.txt")
    with open(path, "wb") as f:
        f.write(b"bytes")
    t = last_change(path)
    freeze_clock(monkeypatch, t + 10 * window_for(t))  # hashed safely after its change: trusted later
    h1 = fresh_hasher(root, conn)
    first = h1.digest("d/")
    assert h1.dir_listing("d") == {name: xxhash.xxh3_128_hexdigest(b"bytes")}
    h1.cache.flush()
    assert conn.execute("SELECT path FROM stat").fetchall() == [(b"d/caf\xe9.txt",)]
    hashed.clear()
    h2 = fresh_hasher(root, conn)
    assert h2.digest("d/") == first
    assert hashed == []  # trusted from the stat cache: the name came back exactly


def test_a_file_hashed_within_the_racy_window_of_its_change_is_rehashed(root, conn, hashed, monkeypatch):
    write(root, "a.txt", "content")
    t = last_change(root / "a.txt")
    with monkeypatch.context() as m:
        freeze_clock(m, t)  # hashed at the very moment of its change, however slow the machine
        h1 = fresh_hasher(root, conn)
        h1.digest("a.txt")
        h1.cache.flush()
    assert StatCache(conn).get("a.txt").hashed_at_ns == t
    hashed.clear()
    assert fresh_hasher(root, conn).digest("a.txt") == xxhash.xxh3_128_hexdigest(b"content")
    assert hashed == ["a.txt"]


@pytest.mark.parametrize(
    "offset, trusted",
    [("window+1", True), ("10*window", True), ("window", False), ("window-1", False), ("0", False), ("-5", False)],
)
def test_an_entry_is_trusted_only_when_the_file_is_safely_older_than_its_hashing(root, hashed, offset, trusted):
    write(root, "a.txt", "content")
    t = last_change(root / "a.txt")
    w = window_for(t)
    hashed_at = t + eval(offset, {"window": w})
    cache = StatCache(None)
    cache.put("a.txt", make_entry(root, "a.txt", hashed_at, "cached-digest"))
    digest = Hasher(str(root), cache).digest("a.txt")
    if trusted:
        assert digest == "cached-digest" and hashed == []
    else:
        assert digest == xxhash.xxh3_128_hexdigest(b"content") and hashed == ["a.txt"]


def test_a_same_size_rewrite_within_one_timestamp_tick_is_detected(root, conn):
    write(root, "a.txt", "aaaa")
    tick = os.stat(root / "a.txt").st_mtime_ns
    h1 = fresh_hasher(root, conn)
    old = h1.digest("a.txt")
    h1.cache.flush()
    write(root, "a.txt", "bbbb", mtime_ns=tick)  # same size, same inode, same mtime
    st = os.stat(root / "a.txt")
    assert (st.st_size, st.st_mtime_ns) == (4, tick)
    new = fresh_hasher(root, conn).digest("a.txt")
    assert new == xxhash.xxh3_128_hexdigest(b"bbbb") != old


def test_a_same_size_rewrite_that_restores_an_old_mtime_is_detected(root, conn):
    write(root, "a.txt", "aaaa", mtime_ns=OLD_NS)
    settle(root / "a.txt")
    h1 = fresh_hasher(root, conn)
    h1.digest("a.txt")
    h1.cache.flush()
    write(root, "a.txt", "bbbb", mtime_ns=OLD_NS)  # like `touch -r` or a sync tool
    assert fresh_hasher(root, conn).digest("a.txt") == xxhash.xxh3_128_hexdigest(b"bbbb")


def test_a_changed_mtime_triggers_a_rehash_and_identical_bytes_keep_the_digest(root, conn, hashed):
    write(root, "a.txt", "content", mtime_ns=OLD_NS)
    settle(root / "a.txt")
    h1 = fresh_hasher(root, conn)
    d = h1.digest("a.txt")
    h1.cache.flush()
    hashed.clear()
    os.utime(root / "a.txt", ns=(OLD_NS + 10**9, OLD_NS + 10**9))
    assert fresh_hasher(root, conn).digest("a.txt") == d
    assert hashed == ["a.txt"]


def test_a_size_change_is_detected_even_with_the_old_mtime(root, conn):
    write(root, "a.txt", "short", mtime_ns=OLD_NS)
    settle(root / "a.txt")
    h1 = fresh_hasher(root, conn)
    h1.digest("a.txt")
    h1.cache.flush()
    write(root, "a.txt", "much longer", mtime_ns=OLD_NS)
    assert fresh_hasher(root, conn).digest("a.txt") == xxhash.xxh3_128_hexdigest(b"much longer")


def test_a_file_replaced_by_another_inode_is_rehashed(root, conn):
    write(root, "a.txt", "aaaa", mtime_ns=OLD_NS)
    write(root, "tmp", "bbbb", mtime_ns=OLD_NS)  # created while a.txt exists: another inode
    settle(root / "a.txt", root / "tmp")
    h1 = fresh_hasher(root, conn)
    h1.digest("a.txt")
    h1.cache.flush()
    os.replace(root / "tmp", root / "a.txt")
    assert fresh_hasher(root, conn).digest("a.txt") == xxhash.xxh3_128_hexdigest(b"bbbb")


def test_flush_writes_nothing_when_nothing_was_hashed(root, conn):
    cache = StatCache(conn)
    cache.flush()
    assert conn.execute("SELECT count(*) FROM stat").fetchone()[0] == 0


def test_a_stat_cache_without_a_store_still_hashes(root):
    write(root, "a.txt", "x")
    h = Hasher(str(root), StatCache(None))
    assert h.digest("a.txt") == xxhash.xxh3_128_hexdigest(b"x")
    h.cache.flush()  # no store: nothing to write, no error


def test_the_racy_rule_costs_a_rehash_never_a_sleep(root, conn, hashed, monkeypatch):
    write(root, "a.txt", "x")
    freeze_clock(monkeypatch, last_change(root / "a.txt"))  # every invocation hashes it racily
    for _ in range(3):
        h = fresh_hasher(root, conn)
        assert h.digest("a.txt") == xxhash.xxh3_128_hexdigest(b"x")
        h.cache.flush()
    assert hashed == ["a.txt"] * 3
