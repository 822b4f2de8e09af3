"""The remote cache's pure parts and its transfers against a real local-folder remote."""
from __future__ import annotations

import json
import os

import pytest
import xxhash

from pipetool.digests import listing_digest
from pipetool.errors import StateError, UsageError
from pipetool.remote.backend import REMOTE_ENV, open_remote, remote_url
from pipetool.remote.staging import Staging
from pipetool.remote.transfer import Transfers, entry_bytes, lock_build, parse_entry
from pipetool.store.cache import Cache, admit_verified
from pipetool.store.lockfile import read_lock
from pipetool.store.records import Record
from pipetool.store.runcache import CachedBuild

FP = "0123456789abcdef0123456789abcdef"
D1 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


def _build(**kw) -> CachedBuild:
    base = {"fingerprint": FP, "target": "t", "outs": {"out/a.txt": D1}, "dirs": (), "trace": {"code": "cmd:x"},
            "run_id": "r1", "execs": ()}
    base.update(kw)
    return CachedBuild(**base)


# -- entries -----------------------------------------------------------------------------

def test_an_entry_survives_the_round_trip():
    b = _build(outs={"out/a.txt": D1, "out/d/": D1.replace("a", "b")}, dirs=("out/d/",), execs=("out/d/x",))
    assert parse_entry(entry_bytes(b), FP) == b


@pytest.mark.parametrize("doc", [
    b"not json", b"[]", b'{"format": 2}',
    json.dumps({"format": 1, "fingerprint": "other", "outs": {}, "dirs": [], "execs": []}).encode(),
    json.dumps({"format": 1, "fingerprint": FP, "outs": {"a": "../../etc/passwd"}, "dirs": [], "execs": []}).encode(),
    json.dumps({"format": 1, "fingerprint": FP, "outs": {"a": D1}, "dirs": ["b"], "execs": []}).encode(),
    json.dumps({"format": 1, "fingerprint": FP, "outs": {"a": D1}, "dirs": [], "execs": "a"}).encode(),
    json.dumps({"format": 1, "fingerprint": FP, "outs": {"a": 5}, "dirs": [], "execs": []}).encode(),
])
def test_a_malformed_or_foreign_entry_counts_as_absent(doc):
    assert parse_entry(doc, FP) is None


def test_a_lock_entry_describes_its_build_folders_by_their_slash_and_modes_by_execs():
    rec = Record(FP, {"out/a.txt": D1, "out/d/": D1}, {"code": "cmd:x", "execs": ["out/d/run.sh"]})
    b = lock_build("t", rec)
    assert b.dirs == ("out/d/",) and b.execs == ("out/d/run.sh",) and b.outs == rec.outs


def test_a_lock_with_malformed_execs_is_refused(tmp_path):
    (tmp_path / "pipetool.lock").write_text(json.dumps(
        {"version": 1, "targets": {"t": {"fingerprint": FP, "outs": {}, "execs": "x"}}}))
    with pytest.raises(StateError, match="execs"):
        read_lock(str(tmp_path))


# -- which remote ------------------------------------------------------------------------

def test_the_flag_wins_over_the_environment_which_wins_over_the_pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(REMOTE_ENV, "s3://env/cache")
    assert remote_url("s3://file/cache", "/proj", "s3://flag/cache") == "s3://flag/cache"
    assert remote_url("s3://file/cache", "/proj") == "s3://env/cache"
    monkeypatch.delenv(REMOTE_ENV)
    assert remote_url("s3://file/cache", "/proj") == "s3://file/cache"
    assert remote_url(None, "/proj") is None


def test_a_plain_path_is_relative_to_the_root_in_the_pipeline_and_to_the_cwd_on_the_command_line(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(REMOTE_ENV, raising=False)
    assert remote_url("../shared", "/proj/sub") == "/proj/shared"
    assert remote_url(None, "/proj", "cache") == str(tmp_path / "cache")


def test_an_unknown_protocol_or_a_missing_backend_is_a_usage_error():
    with pytest.raises(UsageError, match="nosuch://x"):
        open_remote("nosuch://x")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match=r'pip install "pipetool\[gcs\]"'):
            open_remote("gs://bucket/cache")


# -- verified admission ------------------------------------------------------------------

def test_a_listing_that_reaches_outside_its_folder_is_refused_even_with_a_matching_digest(tmp_path):
    listing = {"../escape.txt": D1}
    data = json.dumps(listing).encode()
    tmp, dst = tmp_path / "x.tmp", tmp_path / "x"
    tmp.write_bytes(data)
    assert not admit_verified(str(tmp), str(dst), listing_digest(listing), True)
    assert not tmp.exists() and not dst.exists()


def test_a_download_that_does_not_match_its_name_is_deleted(tmp_path):
    tmp, dst = tmp_path / "x.tmp", tmp_path / "x"
    tmp.write_bytes(b"hello")
    assert not admit_verified(str(tmp), str(dst), D1, False)
    assert not tmp.exists() and not dst.exists()
    tmp.write_bytes(b"hello")
    assert admit_verified(str(tmp), str(dst), xxhash.xxh3_128_hexdigest(b"hello"), False)
    assert dst.read_bytes() == b"hello"
    assert dst.stat().st_mode & 0o777 == 0o444


# -- transfers against a file:// remote ----------------------------------------------------

def _project_with_object(root, data: bytes) -> tuple[Cache, str]:
    cache = Cache(str(root))
    src = root / "out.bin"
    src.write_bytes(data)
    digest = xxhash.xxh3_128_hexdigest(data)
    cache.store_file(str(src), digest)
    return cache, digest


def test_objects_go_up_before_entries_and_come_back_verified(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    cache, digest = _project_with_object(a, b"payload" * 1000)
    remote = open_remote(f"file://{tmp_path / 'remote'}")
    build = _build(outs={"out.bin": digest})
    up = Transfers(remote, cache)
    assert up.push_builds([build]) == []
    up.close()
    assert up.stats.objects_up == 1 and up.stats.entries_up == 1
    assert not list((tmp_path / "remote").rglob("*.tmp"))
    again = Transfers(remote, cache)
    again.push_builds([build])
    assert again.stats.objects_up == 0 and again.stats.objects_present == 1

    down = Transfers(remote, Cache(str(b)))
    entries = down.get_entries([FP, "f" * 32])
    assert set(entries) == {FP}
    assert down.fetch_builds(entries) == {}
    assert Cache(str(b)).has(digest)


def test_a_corrupt_remote_object_is_reported_remembered_and_replaced_by_the_next_upload(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    cache, digest = _project_with_object(a, b"good bytes")
    remote = open_remote(f"file://{tmp_path / 'remote'}")
    build = _build(outs={"out.bin": digest})
    Transfers(remote, cache).push_builds([build])
    obj = tmp_path / "remote" / "objects" / digest[:2] / digest[2:]
    obj.write_bytes(b"bad bytes!")  # the same size
    down = Transfers(remote, Cache(str(b)))
    failed = down.fetch_builds({FP: build})
    assert "corrupt" in failed[FP]
    assert not Cache(str(b)).has(digest)
    down.cache = cache  # the same session pushes from a cache holding the good bytes
    down.push_builds([build])
    assert obj.read_bytes() == b"good bytes"


def test_staging_copies_an_object_used_twice_and_moves_it_on_its_last_use(tmp_path):
    cache = Cache(str(tmp_path))
    staging = Staging(str(tmp_path), cache)
    digest = xxhash.xxh3_128_hexdigest(b"x")
    tmp = staging.temp_path(digest, "1")
    with open(tmp, "wb") as f:
        f.write(b"x")
    assert staging.admit(tmp, digest, False)
    staging.uses[digest] = 2
    staging.stage(digest, str(tmp_path / "one"), False, 0o022)
    assert os.path.exists(staging.path_of(digest))
    staging.stage(digest, str(tmp_path / "two"), True, 0o022)
    assert not os.path.exists(staging.path_of(digest))
    assert (tmp_path / "one").read_bytes() == (tmp_path / "two").read_bytes() == b"x"
    assert os.access(tmp_path / "two", os.X_OK)
    staging.close()
    assert not os.path.exists(staging.dir)


def test_many_objects_are_checked_with_one_listing_instead_of_one_request_each(tmp_path, monkeypatch):
    import pipetool.remote.transfer as transfer

    a = tmp_path / "a"
    a.mkdir()
    cache, digest = _project_with_object(a, b"listed")
    remote = open_remote(f"file://{tmp_path / 'remote'}")
    Transfers(remote, cache).push_builds([_build(outs={"out.bin": digest})])
    monkeypatch.setattr(transfer, "LIST_THRESHOLD", 0)
    tr = Transfers(remote, cache)
    assert tr.remote_sizes([digest, "b" * 32]) == {digest: len(b"listed")}
    tr.push_builds([_build(outs={"out.bin": digest})])
    assert tr.stats.objects_up == 0 and tr.stats.objects_present == 1


def test_progress_is_drawn_only_on_a_terminal():
    import io

    from pipetool.remote.progress import TerminalProgress, progress_for

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not isinstance(progress_for("pull", io.StringIO()), TerminalProgress)
    stream = Tty()
    bar = progress_for("pull", stream)
    assert isinstance(bar, TerminalProgress)
    bar.add(2)
    bar.advance(1024)
    bar.advance(2048)
    bar.close()
    assert "2/2" in stream.getvalue() and "KiB" in stream.getvalue()
