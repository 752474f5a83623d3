"""The publisher's in-flight window (strikes when a connection dies mid-upload, resends that back off)
and its reconnect backoff."""

from __future__ import annotations

import random
import time

from yaguar.agent.inflight import STRIKES_ALONE, STRIKES_QUARANTINE, InFlightWindow
from yaguar.agent.publisher import backoff


def test_a_frame_that_keeps_dying_with_the_connection_is_suspected() -> None:
    window = InFlightWindow(size=4, ack_timeout_s=60)
    for generation in range(1, STRIKES_QUARANTINE + 1):
        window.sent(7, mid=generation, generation=generation)
        window.sent(8, mid=100 + generation, generation=generation)
        assert window.puback(100 + generation, failed=False) is None  # 8 reached the broker
        assert window.connection_ended(generation, blame=True) == [7]
        assert len(window) == 0
    assert window.strikes(7) == STRIKES_QUARANTINE and window.strikes(8) == 0
    window.sent(7, mid=50, generation=9)
    assert window.strikes(7) >= STRIKES_ALONE and window.suspect_in_flight()
    window.done(7)
    assert window.strikes(7) == 0 and not window.suspect_in_flight()


def test_a_slow_uplink_is_not_the_frames_fault() -> None:
    window = InFlightWindow(size=4, ack_timeout_s=60)
    window.sent(3, mid=1, generation=1)
    assert window.uploading(1)
    assert window.connection_ended(1, blame=False) == []
    assert window.strikes(3) == 0


def test_a_refusing_puback_takes_the_frame_out() -> None:
    window = InFlightWindow(size=4, ack_timeout_s=60)
    window.sent(5, mid=9, generation=1)
    assert window.puback(9, failed=True) == 5
    assert window.seqs() == set()
    assert window.puback(12345, failed=True) is None  # a heartbeat's mid: not ours


def test_resends_back_off() -> None:
    window = InFlightWindow(size=4, ack_timeout_s=0.05)
    waits = []
    for _ in range(3):
        window.sent(1, mid=1, generation=1)
        started = time.monotonic()
        while not window.expire():
            time.sleep(0.005)
        waits.append(time.monotonic() - started)
    assert waits[0] >= 0.05 and waits[1] >= 0.1 and waits[2] >= 0.2  # doubling: few copies when it is down
    window.done(1)
    window.sent(1, mid=2, generation=1)
    time.sleep(0.06)
    assert window.expire()  # an answer resets the back-off


def test_reconnect_backoff_doubles_with_jitter_up_to_its_ceiling() -> None:
    rng = random.Random(1)
    delay, pauses = 1.0, []
    for _ in range(10):
        pause, delay = backoff(delay, 30.0, rng)
        pauses.append(pause)
    assert pauses[0] <= 1.0 and delay == 30.0
    assert all(p <= 30.0 for p in pauses) and max(pauses) >= 15.0
    spread = [backoff(8.0, 30.0, rng)[0] for _ in range(100)]
    assert min(spread) >= 4.0 and max(spread) <= 8.0 and len(set(spread)) > 90  # cameras do not sync up
