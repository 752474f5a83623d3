"""Deployments on a real SQLite file: a first position opens one, a moved camera starts a new one, and
each bad input (position out of range, an end before the start, two deployments of one camera at the
same time) is refused with a clear reason and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from yaguar.server.deployments import records
from yaguar.server.deployments.records import DeploymentError
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Device

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_db_engine(db_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as db, db.begin():
        db.add(Device(id="cam-01", name="Sendero Norte"))
    yield factory
    engine.dispose()


def _values(**over: object) -> dict[str, object]:
    return {"latitude": -25.3, "longitude": -57.6, "start": T0, **over}


def test_first_position_opens_a_deployment_and_a_move_starts_a_new_one(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as db, db.begin():
        first = records.place(db, "cam-01", -25.3, -57.6, T0, "ana")
        first.site, first.habitat, first.camera_model, first.bait = "Norte", "bosque", "Browning", True
    with sessions() as db, db.begin():
        same = records.place(db, "cam-01", -25.3, -57.6, T0 + timedelta(days=1), "ana")
        assert same.id == first.id, "the same position changes nothing"
        moved = records.place(db, "cam-01", -25.31, -57.62, T0 + timedelta(days=10), "ana")
    with sessions() as db:
        deps = records.deployments_of(db, "cam-01")
        assert [(d.id, d.start, d.end) for d in deps] == [
            (first.id, T0, T0 + timedelta(days=10)),
            (moved.id, T0 + timedelta(days=10), None),
        ]
        assert (deps[1].site, deps[1].habitat, deps[1].camera_model, deps[1].bait) == (
            "Norte",
            "bosque",
            "Browning",
            True,
        ), "the new deployment keeps the set-up"
        device = db.get(Device, "cam-01")
        assert device is not None and (device.latitude, device.longitude) == (-25.31, -57.62)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (_values(latitude=91.0), "Latitude 91.0 is out of range"),
        (_values(latitude=-90.5), "Latitude -90.5 is out of range"),
        (_values(longitude=181.0), "Longitude 181.0 is out of range"),
        (_values(end=T0 - timedelta(hours=1)), "The end of a deployment must come after its start"),
        (_values(end=T0), "The end of a deployment must come after its start"),
        (_values(start=datetime(2026, 3, 1, 12, 0)), "Times need their UTC offset"),
        (_values(camera_height_m=-1.0), "The camera's height must be between 0 and 30 metres"),
        (_values(latitude="north"), "latitude: Input should be a valid number"),
    ],
)
def test_bad_deployment_is_refused_with_its_reason(
    sessions: sessionmaker[Session], values: dict[str, object], reason: str
) -> None:
    with pytest.raises(DeploymentError) as refused:
        records.parse(values)
    assert str(refused.value).startswith(reason)


def test_overlapping_deployments_of_one_camera_are_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as db, db.begin():
        closed = records.add(db, "cam-01", records.parse(_values(end=T0 + timedelta(days=30))), "ana")
    overlapping = [
        _values(start=T0 + timedelta(days=29)),  # open-ended, starts inside
        _values(start=T0 - timedelta(days=1), end=T0 + timedelta(hours=1)),  # ends inside
        _values(start=T0 - timedelta(days=1), end=T0 + timedelta(days=40)),  # covers it
    ]
    for values in overlapping:
        with sessions() as db, db.begin(), pytest.raises(DeploymentError) as refused:
            records.add(db, "cam-01", records.parse(values), "ana")
        assert f"overlaps deployment {closed.id} of the same camera" in str(refused.value)
    with sessions() as db, db.begin():
        after = records.add(db, "cam-01", records.parse(_values(start=T0 + timedelta(days=30))), "ana")
        # changing the later one to start earlier is an overlap too
        with pytest.raises(DeploymentError):
            records.update(db, after.id, records.parse(_values(start=T0 + timedelta(days=20))), "ana")
    with sessions() as db:
        assert len(records.deployments_of(db, "cam-01")) == 2


def test_unknown_camera_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as db, db.begin(), pytest.raises(DeploymentError, match="There is no camera cam-99"):
        records.add(db, "cam-99", records.parse(_values()), "ana")
