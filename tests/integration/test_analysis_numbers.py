"""The analysis numbers on a small fixed dataset, each checked against values worked out by hand.

Three cameras at UTC-03:00 near Asunción (sunrise about 06:15, sunset about 19:10 in early March):

* cam-a deployed 1-10 March (local midnights): 10 camera-days;
* cam-b deployed from 6 March 12:00 local, still there: 4.5 camera-days up to the end of 10 March;
* cam-c has no deployment: its detections are counted but have no effort ("no data").

Detections (local time): cam-a jaguar 1 Mar 02:00, 1 Mar 23:30, 3 Mar 12:00; tapir x2 5 Mar 21:15,
tapir 9 Mar 10:00; jaguar 28 Feb 23:00 and 11 Mar 01:00 (outside the period by local day, inside it by
UTC day for the first); cam-b jaguar 7 Mar 03:00, a jaguar 7 Mar 03:20 a reviewer corrected to puma,
a person 8 Mar 14:00 (not wildlife); cam-c jaguar 4 Mar 20:00.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.postgres import postgres_cluster
from tests.support.rows import media_row
from yaguar.server.analysis import numbers
from yaguar.server.analysis.filters import AnalysisFilter, AnalysisFilterError
from yaguar.server.analysis.heard import HeardDay
from yaguar.server.dashboard.models import Review
from yaguar.server.dashboard.users import create_user
from yaguar.server.deployments import records
from yaguar.server.schema import alembic_config, upgrade
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Device, Event, Heartbeat

LOCAL = timezone(timedelta(hours=-3))
ONCA, TAPIR, PUMA = "Panthera onca", "Tapirus terrestris", "Puma concolor"
MARCH = AnalysisFilter(date(2026, 3, 1), date(2026, 3, 10))


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=LOCAL)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same numbers from both databases: the grouping runs in SQL, which differs between them."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('analysis') / 'station.db'}"
        return
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="module")
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_db_engine(database_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as db, db.begin():
        for cam in ("cam-a", "cam-b", "cam-c"):
            db.add(Device(id=cam, name=f"Camera {cam[-1].upper()}"))
        db.flush()
        records.add(
            db,
            "cam-a",
            records.parse({"latitude": -25.3, "longitude": -57.6, "start": at(1, 0), "end": at(11, 0)}),
            "t",
        )
        records.add(
            db, "cam-b", records.parse({"latitude": -25.31, "longitude": -57.61, "start": at(6, 12)}), "t"
        )
        events = [
            ("cam-a", at(1, 2), "animal", ONCA, 1),
            ("cam-a", at(1, 23, 30), "animal", ONCA, 1),
            ("cam-a", at(3, 12), "animal", ONCA, 1),
            ("cam-a", at(5, 21, 15), "animal", TAPIR, 2),
            ("cam-a", at(9, 10), "animal", TAPIR, 1),
            ("cam-a", at(28, 23, month=2), "animal", ONCA, 1),
            ("cam-a", at(11, 1), "animal", ONCA, 1),
            ("cam-b", at(7, 3), "animal", ONCA, 1),
            ("cam-b", at(7, 3, 20), "animal", ONCA, 1),
            ("cam-b", at(8, 14), "person", None, 1),
            ("cam-c", at(4, 20), "animal", ONCA, 1),
        ]
        ids = []
        for i, (cam, when, category, species, count) in enumerate(events):
            event = Event(
                device_id=cam,
                started_at=when,
                ended_at=when + timedelta(seconds=5),
                utc_offset_min=-180,
                category=category,
                species=species,
                count=count,
                confidence=0.9,
                closed=True,
            )
            db.add(event)
            db.flush()
            ids.append(event.id)
            db.add(
                media_row(
                    cam,
                    i + 1,
                    when,
                    f"x/{i}.jpg",
                    capture_id=f"c{i}",
                    agent_event_id=f"b{i}",
                    utc_offset_min=-180,
                    width=4,
                    height=3,
                    event_id=event.id,
                )
            )
        user = create_user(db, "rev", "correct horse battery", "reviewer")
        db.add(
            Review(
                event_id=ids[8], user_id=user.id, action="correct", category="animal", species=PUMA, count=1
            )
        )
        for when in (
            datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
            datetime(2026, 3, 1, 10, 30, tzinfo=UTC),
            datetime(2026, 3, 1, 11, 0, tzinfo=UTC),
            datetime(2026, 3, 2, 5, 0, tzinfo=UTC),
        ):
            db.add(Heartbeat(device_id="cam-a", sent_at=when, received_at=when, payload={}))
    yield factory
    engine.dispose()


def test_species_counts_per_camera(sessions: sessionmaker[Session]) -> None:
    with sessions() as db:
        rows = numbers.species_counts(db, MARCH)
    assert [(r.device_id, r.species, r.events, r.individuals) for r in rows] == [
        ("cam-a", ONCA, 3, 3),
        ("cam-a", TAPIR, 2, 3),
        ("cam-b", ONCA, 1, 1),
        ("cam-b", PUMA, 1, 1),
        ("cam-c", ONCA, 1, 1),
    ]


def test_relative_abundance_index_with_its_effort(sessions: sessionmaker[Session]) -> None:
    with sessions() as db:
        per_camera, overall, cams = numbers.abundance(db, MARCH)
    assert {c: round(e.camera_days, 6) for c, e in cams.items()} == {
        "cam-a": 10.0,
        "cam-b": 4.5,
        "cam-c": 0.0,
    }
    rai = {
        (a.device_id, a.species): (a.events, None if a.rai is None else round(a.rai, 3)) for a in per_camera
    }
    assert rai == {
        ("cam-a", ONCA): (3, 30.0),
        ("cam-a", TAPIR): (2, 20.0),
        ("cam-a", PUMA): (0, 0.0),
        ("cam-b", ONCA): (1, 22.222),
        ("cam-b", PUMA): (1, 22.222),
        ("cam-b", TAPIR): (0, 0.0),
        ("cam-c", ONCA): (1, None),  # detected, but no deployment: no effort, no data
    }
    # over all cameras: detections made with effort (4 jaguars, not cam-c's) per 14.5 camera-days
    assert {a.species: (a.events, round(a.rai or -1, 3)) for a in overall} == {
        ONCA: (4, 27.586),
        TAPIR: (2, 13.793),
        PUMA: (1, 6.897),
    }


def test_a_period_without_effort_is_no_data_not_a_division_by_zero(sessions: sessionmaker[Session]) -> None:
    empty = AnalysisFilter(date(2027, 1, 1), date(2027, 1, 5))
    with sessions() as db:
        per_camera, overall, cams = numbers.abundance(db, empty)
        times = numbers.uptime(db, empty)
        history = numbers.detection_history(db, empty, ONCA)
        diel = numbers.diel(db, empty, ONCA)
    assert per_camera == [] and overall == [] and all(c.camera_days == 0 for c in cams.values())
    assert all(u.fraction is None for u in times)
    assert history.rows == {}
    assert diel.events == 0 and sum(diel.density_y) == 0
    # one species asked for by name over no effort: a row with no RAI, not an error
    with sessions() as db:
        _per, overall, _cams = numbers.abundance(db, AnalysisFilter(empty.start, empty.end, species=ONCA))
    assert [(a.species, a.events, a.rai) for a in overall] == [(ONCA, 0, None)]


def test_diel_activity_bins_and_day_night_split(sessions: sessionmaker[Session]) -> None:
    with sessions() as db:
        diel = numbers.diel(db, MARCH, ONCA)
    expected = [0] * 24
    for hour in (2, 23, 12, 3, 20):
        expected[hour] += 1
    assert diel.hourly == expected and diel.events == 5
    # 12:00 is day; 02:00, 23:30 and 03:00 are night at the cameras' positions; cam-c has no position
    assert (diel.day, diel.night, diel.unplaced) == (1, 3, 1)
    assert abs(sum(diel.density_y) * 24 / len(diel.density_y) - 1.0) < 1e-9  # a density over 24 h
    peak_hour = diel.density_x[max(range(len(diel.density_y)), key=diel.density_y.__getitem__)]
    assert peak_hour < 4 or peak_hour > 22, "the jaguars' peak is at night"


def test_detection_history_per_camera_and_day(sessions: sessionmaker[Session]) -> None:
    with sessions() as db:
        history = numbers.detection_history(db, MARCH, ONCA)
    assert history.days[0] == date(2026, 3, 1) and len(history.days) == 10
    n = None
    assert history.rows == {
        "cam-a": [1, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        "cam-b": [n, n, n, n, n, 0, 1, 0, 0, 0],
        "cam-c": [n, n, n, 1, n, n, n, n, n, n],
    }


def test_camera_uptime(sessions: sessionmaker[Session]) -> None:
    with sessions() as db:
        rows = {u.device_id: u for u in numbers.uptime(db, MARCH)}
    # cam-a: heartbeats in the hours 1 Mar 10 and 11 UTC and 2 Mar 05 UTC, frames in five more hours
    a = rows["cam-a"]
    assert (a.hours_heard, a.camera_days) == (3 + 5, 10.0)
    assert a.fraction == pytest.approx(8 / 240)
    assert rows["cam-c"].fraction is None


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"from": "2026-03-10", "to": "2026-03-01"}, "The period ends before it starts."),
        ({"from": "March"}, "from must be a date like 2026-11-26"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "The period is longer than 1098 days."),
        ({"camera": "../etc"}, "../etc is not a camera id."),
        ({"species": "<script>"}, "the species must be a scientific name"),
    ],
)
def test_bad_filters_are_refused(query: dict[str, str], reason: str) -> None:
    with pytest.raises(AnalysisFilterError) as refused:
        AnalysisFilter.from_query(query, today=date(2026, 3, 20))
    assert str(refused.value).startswith(reason)


def test_the_hours_heard_are_summed_up_from_rows_stored_before_the_migration(tmp_path: Path) -> None:
    """Migration e004 fills its day-by-day summary from the heartbeats and frames already stored; the
    triggers keep it up to date from then on (test_camera_uptime reads it on both databases)."""
    engine = make_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, str(ScriptDirectory.from_config(cfg).get_revision("e004").down_revision))
    utc = [datetime(2026, 3, 1, h, m, tzinfo=UTC) for h, m in ((0, 5), (0, 50), (7, 0), (23, 59))]
    with make_session_factory(engine).begin() as db:
        db.add(Device(id="cam-a"))
        for when in utc[:3]:
            db.add(Heartbeat(device_id="cam-a", sent_at=when, received_at=when, payload={}))
        db.add(
            Heartbeat(
                device_id="cam-a", sent_at=utc[3], received_at=utc[3] + timedelta(minutes=2), payload={}
            )
        )
    upgrade(engine)
    with make_session_factory(engine)() as db:
        rows = [(r.device_id, r.day, r.hours) for r in db.scalars(select(HeardDay))]
    engine.dispose()
    assert sorted(rows) == [
        ("cam-a", date(2026, 3, 1), (1 << 0) | (1 << 7)),
        ("cam-a", date(2026, 3, 2), 1 << 0),
    ]


def test_results_are_kept_per_database(tmp_path: Path) -> None:
    """One process may serve two stations whose data look alike to the change probes (the same newest
    ids and counts). Each must get its own numbers, not the other's kept ones."""
    from yaguar.server.analysis import pages

    def station(name: str, start: datetime) -> sessionmaker[Session]:
        engine = make_db_engine(f"sqlite:///{tmp_path / name}.db")
        upgrade(engine)
        factory = make_session_factory(engine)
        with factory() as db, db.begin():
            db.add(Device(id="cam-a", name="Camera A"))
            db.flush()
            records.add(
                db, "cam-a", records.parse({"latitude": -25.3, "longitude": -57.6, "start": start}), "t"
            )
        return factory

    in_march, in_april = station("march", at(1, 0)), station("april", at(1, 0, month=4))
    days = []
    for factory in (in_march, in_april):
        with factory() as db:
            days.append(pages.compute(db, "abundance", MARCH, "en", False).summary["camera_days"])
    assert days[0] > 9 and days[1] == 0, days
