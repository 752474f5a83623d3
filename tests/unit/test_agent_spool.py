"""The spool: whole files only, seq never reused across restarts, the byte cap and its policies, the
send order, ack and quarantine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yaguar.agent.metrics import AgentMetrics
from yaguar.agent.spool import Spool, read_frame_file, spool_summary
from yaguar.protocol.jpeg import inspect_jpeg

OFFSET = timezone(timedelta(hours=-5))


@pytest.fixture(scope="module")
def jpegs(images: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((images / "classic").glob("*.jpg"))]


def fields(event: str = "e1", index: int = 0, size: int = 3) -> dict:
    return {
        "device": "cam-01",
        "capture_id": f"{event}.{index}",
        "event_id": event,
        "burst_index": index,
        "burst_size": size,
        "captured_at": datetime(2026, 11, 26, 2, 14, 7, 120000, tzinfo=OFFSET),
        "trigger": "pir",
    }


def test_a_spooled_frame_is_one_whole_file(tmp_path: Path, jpegs: list[bytes]) -> None:
    spool = Spool(tmp_path, fsync=True)
    frame = spool.put(jpegs[0], **fields())
    assert frame is not None and frame.seq == 0
    meta, payload = read_frame_file(frame.path)
    assert payload == jpegs[0]
    assert meta.captured_at.utcoffset() == timedelta(hours=-5)
    inspect_jpeg(payload)
    assert list(spool.pending_dir.iterdir()) == [frame.path]
    assert (spool.depth, spool.bytes) == (1, len(jpegs[0]))


def test_seq_survives_a_restart_and_is_never_reused(tmp_path: Path, jpegs: list[bytes]) -> None:
    spool = Spool(tmp_path, seq_block=4)
    seqs = [spool.put(jpegs[0], **fields(index=i)).seq for i in range(6)]  # type: ignore[union-attr]
    assert seqs == list(range(6))
    for seq in seqs:
        assert spool.ack(seq)
    assert spool.depth == 0
    # The spool is empty now, but the lease on disk remembers: a restart continues after the block.
    reopened = Spool(tmp_path, seq_block=4)
    frame = reopened.put(jpegs[0], **fields(index=9))
    assert frame is not None and frame.seq >= 8


def test_partial_writes_and_unreadable_files_are_cleaned_at_open(tmp_path: Path, jpegs: list[bytes]) -> None:
    spool = Spool(tmp_path)
    good = spool.put(jpegs[0], **fields())
    assert good is not None
    (spool.pending_dir / ".tmp-00000000000000000001.frame.123").write_bytes(b"half a fr")
    (spool.pending_dir / "00000000000000000007.frame").write_bytes(b"YGF1garbage")
    cut = spool.put(jpegs[1], **fields(index=1))
    assert cut is not None
    cut.path.write_bytes(cut.path.read_bytes()[:-100])  # a truncated image (a disk that lied about fsync)
    reopened = Spool(tmp_path)
    assert reopened.depth == 1
    assert not list(reopened.pending_dir.glob(".tmp-*"))
    assert reopened.quarantined() == [(cut.seq, "unreadable_spool_file"), (7, "unreadable_spool_file")]
    assert reopened.next_seq >= 8  # a quarantined seq is not handed out again either


def test_drop_oldest_evicts_and_counts(tmp_path: Path, jpegs: list[bytes]) -> None:
    metrics = AgentMetrics()
    cap = len(jpegs[0]) * 2 + 10
    spool = Spool(tmp_path, max_bytes=cap, metrics=metrics)
    for index in range(4):
        assert spool.put(jpegs[0], **fields(index=index)) is not None
    assert [f.seq for f in spool.send_order()] == [2, 3]  # the two oldest went
    assert spool.bytes <= cap
    assert metrics.total("yaguar_agent_frames_evicted") == 2
    assert metrics.total("yaguar_agent_frames_captured") == 4


def test_refuse_new_keeps_the_old_frames(tmp_path: Path, jpegs: list[bytes]) -> None:
    metrics = AgentMetrics()
    spool = Spool(tmp_path, max_bytes=len(jpegs[0]) + 10, policy="refuse_new", metrics=metrics)
    first = spool.put(jpegs[0], **fields(index=0))
    assert first is not None
    assert spool.put(jpegs[0], **fields(index=1)) is None
    assert [f.seq for f in spool.send_order()] == [first.seq]
    assert metrics.total("yaguar_agent_frames_evicted") == 1


def test_a_frame_larger_than_the_cap_is_refused_under_either_policy(
    tmp_path: Path, jpegs: list[bytes]
) -> None:
    spool = Spool(tmp_path, max_bytes=64 * 1024)
    big = max(jpegs, key=len)
    assert len(big) > 64 * 1024
    assert spool.put(big, **fields()) is None
    assert spool.depth == 0


def test_newest_event_first_frame_goes_before_the_backlog(tmp_path: Path, jpegs: list[bytes]) -> None:
    spool = Spool(tmp_path, fsync=False)
    for event in ("old1", "old2", "fresh"):
        for index in range(3):
            spool.put(jpegs[index], **fields(event=event, index=index))
    order = [(f.meta.event_id, f.meta.burst_index) for f in spool.send_order()]
    assert order[0] == ("fresh", 0)
    assert order[1:] == [
        (e, i) for e in ("old1", "old2", "fresh") for i in range(3) if (e, i) != ("fresh", 0)
    ]
    assert [f.seq for f in spool.pick(2, exclude={6})] == [0, 1]


def test_ack_and_quarantine(tmp_path: Path, jpegs: list[bytes]) -> None:
    metrics = AgentMetrics()
    spool = Spool(tmp_path, metrics=metrics)
    a = spool.put(jpegs[0], **fields(index=0))
    b = spool.put(jpegs[1], **fields(index=1))
    assert a is not None and b is not None
    assert spool.ack(a.seq) and not spool.ack(a.seq)
    assert spool.quarantine(b.seq, "rejected_not_jpeg")
    assert spool.depth == 0 and not list(spool.pending_dir.iterdir())
    assert spool.quarantined() == [(b.seq, "rejected_not_jpeg")]
    assert metrics.total("yaguar_agent_frames_quarantined") == 1
    summary = spool_summary(tmp_path)
    assert summary is not None and summary["quarantined"] == 1 and summary["depth"] == 0


def test_bad_metadata_is_a_protocol_error_and_writes_nothing(tmp_path: Path, jpegs: list[bytes]) -> None:
    spool = Spool(tmp_path)
    bad = fields()
    bad["captured_at"] = datetime(2026, 11, 26, 2, 14)  # naive: the contract refuses it
    with pytest.raises(ValueError, match="frame metadata"):
        spool.put(jpegs[0], **bad)
    assert spool.depth == 0 and not list(spool.pending_dir.iterdir())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["put", "ack", "reopen"]), min_size=1, max_size=25), st.integers(1, 5))
def test_seq_is_strictly_increasing_through_any_history(tmp_path_factory, ops: list[str], block: int) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool = Spool(directory, fsync=False, seq_block=block)
    handed_out: list[int] = []
    for op in ops:
        if op == "put":
            frame = spool.put(b"\xff\xd8" + b"x" * 10 + b"\xff\xd9", **fields(index=len(handed_out)))
            assert frame is not None
            handed_out.append(frame.seq)
        elif op == "ack" and spool.depth:
            spool.ack(spool.send_order()[-1].seq)
        elif op == "reopen":
            spool = Spool(directory, fsync=False, seq_block=block)
    assert handed_out == sorted(set(handed_out))
