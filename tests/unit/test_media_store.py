"""The station's content-addressed frame store: layout, atomic durable writes, no escapes from the root."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from yaguar.server.ingest.media_store import MediaStore


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("drop_from_cache", [True, False])
def test_a_frame_lands_whole_under_its_hash(tmp_path, drop_from_cache: bool) -> None:
    store = MediaStore(tmp_path / "media", drop_from_cache=drop_from_cache)
    data = b"\xff\xd8" + bytes(range(256)) * 5000 + b"\xff\xd9"
    relative = store.write(sha(data), data)
    assert relative == f"{sha(data)[:2]}/{sha(data)}.jpg"
    assert (tmp_path / "media" / relative).read_bytes() == data
    assert store.resolve(relative) == tmp_path / "media" / relative
    assert not list((tmp_path / "media").glob("*/.*.tmp"))


def test_the_256_directories_are_made_up_front(tmp_path) -> None:
    MediaStore(tmp_path / "media")
    tops = sorted(p.name for p in (tmp_path / "media").iterdir())
    assert tops == [f"{i:02x}" for i in range(256)]


def test_a_directory_removed_by_hand_is_made_again(tmp_path) -> None:
    store = MediaStore(tmp_path / "media")
    data = b"frame after a clean-up"
    (tmp_path / "media" / sha(data)[:2]).rmdir()
    relative = store.write(sha(data), data)
    assert (tmp_path / "media" / relative).read_bytes() == data


def test_the_same_content_is_written_once(tmp_path) -> None:
    store = MediaStore(tmp_path / "media")
    data = b"frame bytes"
    first = store.write(sha(data), data)
    inode = (tmp_path / "media" / first).stat().st_ino
    assert store.write(sha(data), data) == first
    assert (tmp_path / "media" / first).stat().st_ino == inode  # not replaced


def test_many_threads_writing_the_same_and_other_frames(tmp_path) -> None:
    store = MediaStore(tmp_path / "media")
    frames = [f"frame {i % 10}".encode() * 1000 for i in range(60)]
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda data: store.write(sha(data), data), frames))
    for data, relative in zip(frames, paths, strict=True):
        assert (tmp_path / "media" / relative).read_bytes() == data
    assert len(set(paths)) == 10
    assert not list((tmp_path / "media").glob("*/.*.tmp"))


def test_resolve_never_leaves_the_root(tmp_path) -> None:
    store = MediaStore(tmp_path / "media")
    (tmp_path / "secret.txt").write_text("not a frame")
    assert store.resolve("../secret.txt") is None
    assert store.resolve("/etc/passwd") is None
    assert store.resolve("ab/cd/missing.jpg") is None


def test_temp_files_of_a_crash_are_removed(tmp_path) -> None:
    store = MediaStore(tmp_path / "media")
    leftovers = [
        tmp_path / "media" / "ab" / ".abcd.1234.tmp",
        tmp_path / "media" / "ab" / "cd" / ".abcd.5.tmp",
    ]
    for leftover in leftovers:  # this layout, and the older two-level one
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(b"half a frame")
    kept = tmp_path / "media" / "ab" / "cd" / "abcd.jpg"
    kept.write_bytes(b"a whole frame")
    assert store.remove_temp_files() == 2
    assert not any(p.exists() for p in leftovers) and kept.exists()
