"""The publisher's bookkeeping of frames published and not yet acknowledged by the station.

Each entry remembers the connection ("generation") it went out on and whether the broker PUBACKed it.
When a connection ends, its entries go back to the spool's queue; a frame that was still uploading
gets a *strike*. Mosquitto answers a PUBLISH over its ``message_size_limit`` by closing the connection,
not with a PUBACK, so a frame with ``STRIKES_ALONE`` strikes is sent alone, and one that reaches
``STRIKES_QUARANTINE`` (the connection died again while it was alone) is set aside: one bad frame must
not block the queue forever. An entry without an ``Ack`` after the ack timeout is sent again, the
timeout doubling with each resend, so a station that is down for hours gets a handful of copies.

All methods take the window's own lock and call nothing outside it, so they are safe from any thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

STRIKES_ALONE = 2
STRIKES_QUARANTINE = 3
MAX_ACK_TIMEOUT_S = 3600.0


@dataclass
class _Entry:
    seq: int
    mid: int
    sent_at: float
    generation: int
    puback: bool = False


class InFlightWindow:
    def __init__(self, size: int, ack_timeout_s: float) -> None:
        self.size = size
        self.ack_timeout_s = ack_timeout_s
        self._entries: dict[int, _Entry] = {}
        self._mids: dict[int, int] = {}
        self._strikes: dict[int, int] = {}
        self._resends: dict[int, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def seqs(self) -> set[int]:
        with self._lock:
            return set(self._entries)

    def strikes(self, seq: int) -> int:
        return self._strikes.get(seq, 0)

    def suspect_in_flight(self) -> bool:
        """A frame under suspicion is out: nothing else may go until it is confirmed or fails."""
        with self._lock:
            return any(self._strikes.get(seq, 0) >= STRIKES_ALONE for seq in self._entries)

    def sent(self, seq: int, mid: int, generation: int) -> None:
        with self._lock:
            self._entries[seq] = _Entry(seq, mid, time.monotonic(), generation)
            self._mids[mid] = seq

    def puback(self, mid: int, failed: bool) -> int | None:
        """Record the broker's PUBACK; the frame's seq when the broker refused it (it left the window)."""
        with self._lock:
            seq = self._mids.pop(mid, None)
            entry = self._entries.get(seq) if seq is not None else None
            if entry is None:
                return None  # a status or heartbeat, or a frame from before a reconnect
            if not failed:
                entry.puback = True
                self._strikes.pop(entry.seq, None)
                return None
            del self._entries[entry.seq]
            return entry.seq

    def done(self, seq: int) -> None:
        """The station answered (stored, duplicate or rejected), or the frame was set aside."""
        with self._lock:
            entry = self._entries.pop(seq, None)
            if entry is not None:
                self._mids.pop(entry.mid, None)
            self._resends.pop(seq, None)
            self._strikes.pop(seq, None)

    def uploading(self, generation: int) -> bool:
        with self._lock:
            return any(e.generation == generation and not e.puback for e in self._entries.values())

    def connection_ended(self, generation: int, blame: bool) -> list[int]:
        """Everything sent on that connection goes again; with ``blame``, the frames the broker had not
        confirmed get a strike. Returns the struck seqs."""
        with self._lock:
            struck = []
            for seq, entry in list(self._entries.items()):
                if entry.generation != generation:
                    continue
                del self._entries[seq]
                self._mids.pop(entry.mid, None)
                if blame and not entry.puback:
                    self._strikes[seq] = self._strikes.get(seq, 0) + 1
                    struck.append(seq)
            return struck

    def expire(self) -> list[tuple[int, float]]:
        """Take out the frames whose Ack is overdue, as (seq, seconds waited), to be sent again."""
        now = time.monotonic()
        expired = []
        with self._lock:
            for seq, entry in list(self._entries.items()):
                resends = self._resends.get(seq, 0)
                if now - entry.sent_at > min(MAX_ACK_TIMEOUT_S, self.ack_timeout_s * 2**resends):
                    del self._entries[seq]
                    self._mids.pop(entry.mid, None)
                    self._resends[seq] = resends + 1
                    expired.append((seq, now - entry.sent_at))
        return expired
