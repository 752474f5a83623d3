"""An event is closed when its camera went quiet, not when the station is only behind: frames of the same
burst still waiting to be analysed (a backlog, or a killed worker's leased frames waiting for the lease to
run out) keep it open, or the burst would be split in two events. Found by the three-worker kill test
on a loaded machine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.support.rows import media_row
from yaguar.server.pipeline.store import close_idle
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Device, Event, Media

T0 = datetime(2026, 3, 14, 23, 5, tzinfo=UTC)
GAP_S = 60.0


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_db_engine(f"sqlite:///{tmp_path / 'station.db'}")
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def add_frame(session: Session, device: str, seq: int, burst: str, at: datetime, state: str) -> Media:
    if session.get(Device, device) is None:
        session.add(Device(id=device))
        session.flush()
    media = media_row(
        device,
        seq,
        at,
        f"{device}/{seq}.jpg",
        agent_event_id=burst,
        burst_index=seq,
        burst_size=5,
        process_state=state,
    )
    session.add(media)
    session.flush()
    return media


def idle_event(session: Session, device: str, analysed: list[Media]) -> Event:
    """An open event over ``analysed`` that no frame has changed for twice the gap."""
    event = Event(device_id=device, started_at=T0, ended_at=T0, closed=False)
    session.add(event)
    session.flush()
    for media in analysed:
        media.event_id = event.id
    session.flush()
    stale = datetime.now(UTC) - timedelta(seconds=2 * GAP_S)
    session.execute(update(Event).where(Event.id == event.id).values(updated_at=stale))
    return event


def test_an_event_with_frames_of_its_burst_still_pending_stays_open(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = add_frame(session, "cam-01", 1, "b1", T0, "done")
        waiting = add_frame(session, "cam-01", 2, "b1", T0 + timedelta(seconds=2), "pending")
        event_id = idle_event(session, "cam-01", [first]).id
        waiting_id = waiting.id
    with sessions.begin() as session:
        assert close_idle(session, GAP_S, []) == [], "closed while a frame of its burst was still pending"
    with sessions.begin() as session:
        session.execute(update(Media).where(Media.id == waiting_id).values(process_state="failed"))
    with sessions.begin() as session:
        assert close_idle(session, GAP_S, []) == [event_id], "not closed once nothing was left to join"


def test_pending_frames_elsewhere_do_not_keep_an_event_open(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = add_frame(session, "cam-01", 1, "b1", T0, "done")
        add_frame(session, "cam-02", 1, "b1", T0, "pending")  # another camera, the same burst name
        add_frame(session, "cam-01", 2, "b2", T0 + timedelta(hours=1), "pending")  # a later burst
        event_id = idle_event(session, "cam-01", [first]).id
    with sessions.begin() as session:
        assert close_idle(session, GAP_S, []) == [event_id]
