"""The content-addressed cache (pipetool/store/cache.py): store, restore, verify."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipetool.digests import listing_digest
from pipetool.store.cache import Cache, CacheMiss, copy_file, file_hash


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(str(tmp_path))


def _store(cache: Cache, rel: str, data: bytes) -> str:
    path = _write(Path(cache.root) / rel, data)
    digest = file_hash(str(path))
    cache.store_out(rel, digest, None)
    return digest


def _store_dir(cache: Cache, rel: str, files: dict[str, bytes]) -> tuple[str, dict[str, str]]:
    root = Path(cache.root) / rel
    for sub, data in files.items():
        _write(root / sub, data)
    listing = {sub: file_hash(str(root / sub)) for sub in files}
    digest = listing_digest(listing)
    cache.store_out(rel + "/", digest, listing)
    return digest, listing


def _read_only(path: str) -> bool:
    return not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_store_and_restore_a_file(cache, tmp_path):
    digest = _store(cache, "out/model.bin", b"weights\x00\x01" * 1000)
    assert cache.has(digest)
    (tmp_path / "out/model.bin").unlink()
    cache.restore_outs({"out/model.bin": digest}, [])
    assert (tmp_path / "out/model.bin").read_bytes() == b"weights\x00\x01" * 1000


def test_restore_creates_missing_parent_folders_and_replaces_a_changed_file(cache, tmp_path):
    digest = _store(cache, "a/b/c.txt", b"original\n")
    (tmp_path / "a/b/c.txt").write_bytes(b"changed\n")
    cache.restore_outs({"a/b/c.txt": digest}, [])
    assert (tmp_path / "a/b/c.txt").read_bytes() == b"original\n"
    import shutil

    shutil.rmtree(tmp_path / "a")
    cache.restore_outs({"a/b/c.txt": digest}, [])
    assert (tmp_path / "a/b/c.txt").read_bytes() == b"original\n"


def test_restore_leaves_no_temporary_files(cache, tmp_path):
    digest = _store(cache, "out/x.txt", b"x\n")
    (tmp_path / "out/x.txt").unlink()
    cache.restore_outs({"out/x.txt": digest}, [])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.txt"]


def test_storing_the_same_content_twice_is_deduplicated(cache, tmp_path):
    d1 = _store(cache, "one.txt", b"same bytes\n")
    d2 = _store(cache, "two.txt", b"same bytes\n")
    assert d1 == d2
    assert cache.store_file(str(tmp_path / "two.txt"), d2) == 0
    assert list(cache.all_objects()) == [d1]


def test_store_and_restore_a_folder(cache, tmp_path):
    files = {"a.txt": b"A\n", "sub/b.txt": b"B\n", "sub/deeper/c.bin": bytes(range(256))}
    digest, listing = _store_dir(cache, "data/dir", files)
    assert cache.listing(digest) == listing
    import shutil

    shutil.rmtree(tmp_path / "data/dir")
    cache.restore_outs({"data/dir/": digest}, ["data/dir/"])
    got = {str(p.relative_to(tmp_path / "data/dir")): p.read_bytes()
           for p in (tmp_path / "data/dir").rglob("*") if p.is_file()}
    assert got == files
    assert not (tmp_path / "data/dir.pipetool-tmp").exists()


def test_restoring_a_folder_removes_files_it_did_not_hold(cache, tmp_path):
    files = {"a.txt": b"A\n"}
    digest, _ = _store_dir(cache, "data/dir", files)
    _write(tmp_path / "data/dir/extra.txt", b"junk")
    (tmp_path / "data/dir/a.txt").write_bytes(b"changed")
    cache.restore_outs({"data/dir": digest}, ["data/dir"])
    assert sorted(p.name for p in (tmp_path / "data/dir").iterdir()) == ["a.txt"]
    assert (tmp_path / "data/dir/a.txt").read_bytes() == b"A\n"


def test_a_folder_with_a_missing_file_object_is_restored_all_or_nothing(cache, tmp_path):
    files = {"a.txt": b"A\n", "b.txt": b"B\n"}
    digest, listing = _store_dir(cache, "data/dir", files)
    (tmp_path / "data/dir/a.txt").write_bytes(b"workspace")
    cache.remove(listing["b.txt"])
    with pytest.raises(CacheMiss) as exc:
        cache.restore_outs({"data/dir": digest}, ["data/dir"])
    assert "missing" in exc.value.reason
    assert (tmp_path / "data/dir/a.txt").read_bytes() == b"workspace"  # untouched
    assert not (tmp_path / "data/dir.pipetool-tmp").exists()


def test_a_corrupt_file_object_is_detected_removed_and_never_used(cache, tmp_path):
    digest = _store(cache, "out/model.txt", b"the real model\n")
    obj = cache.path_of(digest)
    os.chmod(obj, 0o644)
    Path(obj).write_bytes(b"the fake model\n")  # same size, other bytes
    (tmp_path / "out/model.txt").write_bytes(b"workspace copy\n")
    with pytest.raises(CacheMiss) as exc:
        cache.restore_outs({"out/model.txt": digest}, [])
    assert "corrupt" in exc.value.reason
    assert not cache.has(digest), "a corrupt object was kept"
    assert (tmp_path / "out/model.txt").read_bytes() == b"workspace copy\n"  # not overwritten
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.txt"]


def test_a_corrupt_file_inside_a_folder_is_detected(cache, tmp_path):
    files = {"a.txt": b"A\n", "b.txt": b"B\n"}
    digest, listing = _store_dir(cache, "data/dir", files)
    obj = cache.path_of(listing["b.txt"])
    os.chmod(obj, 0o644)
    Path(obj).write_bytes(b"X\n")
    import shutil

    shutil.rmtree(tmp_path / "data/dir")
    with pytest.raises(CacheMiss) as exc:
        cache.restore_outs({"data/dir": digest}, ["data/dir"])
    assert "corrupt" in exc.value.reason
    assert not (tmp_path / "data/dir").exists()
    assert not (tmp_path / "data/dir.pipetool-tmp").exists()


def test_a_corrupt_folder_listing_is_detected(cache, tmp_path):
    digest, _ = _store_dir(cache, "data/dir", {"a.txt": b"A\n"})
    obj = cache.path_of(digest)
    os.chmod(obj, 0o644)
    Path(obj).write_text('{"a.txt": "0000"}')
    with pytest.raises(CacheMiss) as exc:
        cache.restore_outs({"data/dir": digest}, ["data/dir"])
    assert "corrupt" in exc.value.reason


def test_a_missing_object_is_a_cache_miss(cache, tmp_path):
    with pytest.raises(CacheMiss) as exc:
        cache.restore_outs({"out/x.txt": "ab" * 16}, [])
    assert "missing" in exc.value.reason
    with pytest.raises(CacheMiss):
        cache.restore_outs({"out/d": "cd" * 16}, ["out/d"])


def test_an_object_stored_under_the_wrong_digest_is_never_restored(cache, tmp_path):
    # A file changed between its hashing and its storing: refused when stored, or
    # (if stored) caught as corrupt on restore; never handed out under that name.
    path = _write(tmp_path / "out/x.txt", b"content\n")
    wrong = "00" * 16
    try:
        cache.store_file(str(path), wrong)
    except CacheMiss:
        assert not cache.has(wrong)
        return
    path.unlink()
    with pytest.raises(CacheMiss) as exc:
        cache.restore_outs({"out/x.txt": wrong}, [])
    assert "corrupt" in exc.value.reason
    assert not path.exists()
    assert not cache.has(wrong)


def test_objects_are_read_only(cache, tmp_path):
    digest = _store(cache, "out/x.txt", b"x\n")
    fdigest, listing = _store_dir(cache, "data/dir", {"a.txt": b"A\n"})
    for d in (digest, fdigest, *listing.values()):
        assert _read_only(cache.path_of(d)), oct(os.stat(cache.path_of(d)).st_mode)


def test_a_restored_file_is_writable_and_not_linked_to_its_object(cache, tmp_path):
    digest = _store(cache, "out/x.txt", b"original\n")
    (tmp_path / "out/x.txt").unlink()
    cache.restore_outs({"out/x.txt": digest}, [])
    ws, obj = tmp_path / "out/x.txt", Path(cache.path_of(digest))
    assert os.access(ws, os.W_OK)
    assert os.stat(ws).st_ino != os.stat(obj).st_ino
    assert os.stat(ws).st_nlink == 1 and os.stat(obj).st_nlink == 1
    with open(ws, "r+b") as f:  # edit in place: same inode
        f.write(b"EDITED")
    assert obj.read_bytes() == b"original\n"
    assert file_hash(str(obj)) == digest


def test_editing_the_stored_source_in_place_leaves_the_object_intact(cache, tmp_path):
    digest = _store(cache, "out/x.txt", b"original\n")
    with open(tmp_path / "out/x.txt", "r+b") as f:
        f.write(b"EDITED")
    assert Path(cache.path_of(digest)).read_bytes() == b"original\n"
    assert os.stat(cache.path_of(digest)).st_nlink == 1


def test_editing_a_restored_folder_file_leaves_the_object_intact(cache, tmp_path):
    digest, listing = _store_dir(cache, "data/dir", {"a.txt": b"A\n"})
    cache.restore_outs({"data/dir": digest}, ["data/dir"])
    with open(tmp_path / "data/dir/a.txt", "ab") as f:
        f.write(b"more")
    assert Path(cache.path_of(listing["a.txt"])).read_bytes() == b"A\n"


def test_copy_file_copies_large_files_exactly(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = _write(tmp_path / "src.bin", data)
    copy_file(str(src), str(tmp_path / "dst.bin"))
    assert (tmp_path / "dst.bin").read_bytes() == data
    assert os.stat(tmp_path / "dst.bin").st_ino != os.stat(src).st_ino


def test_empty_file_round_trips(cache, tmp_path):
    digest = _store(cache, "out/empty", b"")
    (tmp_path / "out/empty").unlink()
    cache.restore_outs({"out/empty": digest}, [])
    assert (tmp_path / "out/empty").read_bytes() == b""


def test_all_objects_and_remove(cache, tmp_path):
    d1 = _store(cache, "x", b"1")
    d2 = _store(cache, "y", b"22")
    assert cache.all_objects() == {d1: 1, d2: 2}
    cache.remove(d1)
    assert cache.all_objects() == {d2: 2}
    assert not cache.has(d1)


def test_peek_listing_tells_folder_listings_from_json_files(cache, tmp_path):
    digest, listing = _store_dir(cache, "data/dir", {"a.txt": b"A\n"})
    jd = _store(cache, "m.json", b'{"a.txt": "x"}')
    objs = cache.all_objects()
    assert cache.peek_listing(digest, objs[digest]) == listing
    assert cache.peek_listing(jd, objs[jd]) is None


# -- a target's outs together (restore_outs) --------------------------------------------------

def test_restore_outs_is_all_or_nothing_across_a_targets_outs(cache, tmp_path):
    good = _store(cache, "out/metrics.json", b'{"acc": 0.1}')
    bad = _store(cache, "out/model.bin", b"model A")
    obj = cache.path_of(bad)
    os.chmod(obj, 0o644)
    Path(obj).write_bytes(b"model X")
    (tmp_path / "out/metrics.json").write_bytes(b'{"acc": 0.2}')
    (tmp_path / "out/model.bin").write_bytes(b"model B")
    with pytest.raises(CacheMiss):
        cache.restore_outs({"out/metrics.json": good, "out/model.bin": bad}, [])
    assert (tmp_path / "out/metrics.json").read_bytes() == b'{"acc": 0.2}'  # untouched
    assert (tmp_path / "out/model.bin").read_bytes() == b"model B"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json", "model.bin"]


def test_restore_outs_puts_a_file_and_a_folder_back(cache, tmp_path):
    fd = _store(cache, "out/model.bin", b"model")
    dd, _ = _store_dir(cache, "data/dir", {"a.txt": b"A\n", "s/b.txt": b"B\n"})
    import shutil

    shutil.rmtree(tmp_path / "data")
    (tmp_path / "out/model.bin").unlink()
    cache.restore_outs({"out/model.bin": fd, "data/dir/": dd}, ["data/dir/"])
    assert (tmp_path / "out/model.bin").read_bytes() == b"model"
    assert (tmp_path / "data/dir/s/b.txt").read_bytes() == b"B\n"
    leftovers = list(tmp_path.rglob("*pipetool-tmp*"))
    assert leftovers == []


def test_restore_outs_keeps_the_execute_bit_and_honours_the_umask(cache, tmp_path):
    tool = _store(cache, "bin/tool", b"#!/bin/sh\necho hi\n")
    plain = _store(cache, "bin/data", b"data")
    dd, _ = _store_dir(cache, "pkg", {"run.sh": b"#!/bin/sh\n", "README": b"r"})
    for rel in ("bin/tool", "bin/data"):
        (tmp_path / rel).unlink()
    old = os.umask(0o027)
    try:
        cache.restore_outs({"bin/tool": tool, "bin/data": plain, "pkg/": dd}, ["pkg/"],
                           ["bin/tool", "pkg/run.sh"])
    finally:
        os.umask(old)
    mode = lambda rel: stat.S_IMODE(os.stat(tmp_path / rel).st_mode)  # noqa: E731
    assert mode("bin/tool") == 0o750
    assert mode("bin/data") == 0o640
    assert mode("pkg/run.sh") == 0o750
    assert mode("pkg/README") == 0o640


# -- file names that are not UTF-8, and a full disk (hardening items 6 and 8) -------------------

def test_a_folder_holding_a_file_name_that_is_not_utf8_is_restored_with_the_same_bytes_name(cache, tmp_path):
    name = os.fsdecode(b"caf\xe9.txt")  # with a lone surrogate, as os.scandir gives it
    digest, listing = _store_dir(cache, "out", {name: b"bytes\n", "a.txt": b"A\n"})
    assert cache.listing(digest) == listing  # the listing object round-trips the name
    import shutil

    shutil.rmtree(tmp_path / "out")
    cache.restore_outs({"out/": digest}, ["out/"], execs=[f"out/{name}"])
    raw = os.path.join(os.fsencode(tmp_path), b"out", b"caf\xe9.txt")
    assert sorted(os.listdir(os.path.join(os.fsencode(tmp_path), b"out"))) == [b"a.txt", b"caf\xe9.txt"]
    with open(raw, "rb") as f:
        assert f.read() == b"bytes\n"
    assert os.stat(raw).st_mode & stat.S_IXUSR


def _disk_fills_after_writing(monkeypatch, nbytes: int) -> None:
    """copy_file writes `nbytes` of the copy, then the disk is full (ENOSPC), as a real
    full disk leaves a partial file behind."""
    import errno

    from pipetool.store import cache as cache_module

    def partial_copy(src: str, dst: str) -> None:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            fout.write(fin.read(nbytes))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache_module, "copy_file", partial_copy)


def test_a_full_disk_while_storing_is_a_store_write_error_and_leaves_no_temporary_file(cache, tmp_path, monkeypatch):
    from pipetool.store.failures import StoreWriteError

    path = _write(tmp_path / "out/big.bin", b"x" * 10_000)
    digest = file_hash(str(path))
    _disk_fills_after_writing(monkeypatch, 4096)
    with pytest.raises(StoreWriteError, match=r"^the disk is full: .*not recorded: the cache copy of out/big.bin"):
        cache.store_out("out/big.bin", digest, None)
    assert cache.all_objects() == {}
    assert [p.name for p in Path(cache.objects).rglob("*") if p.is_file()] == []


def test_a_full_disk_while_restoring_keeps_the_workspace_and_leaves_no_staging_file(cache, tmp_path, monkeypatch):
    from pipetool.store.failures import StoreWriteError

    digest = _store(cache, "out/model.bin", b"new weights" * 1000)
    (tmp_path / "out/model.bin").write_bytes(b"old")
    _disk_fills_after_writing(monkeypatch, 100)
    with pytest.raises(StoreWriteError, match=r"not recorded: out/model\.bin put back from the cache"):
        cache.restore_outs({"out/model.bin": digest}, [])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.bin"]
    assert (tmp_path / "out/model.bin").read_bytes() == b"old"
